"""The task life cycle and task editing: the rules exist here once.

HTML routes, the JSON API and the CLI all call these functions.
"""
