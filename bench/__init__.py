"""Benchmarks: live fan-out, connections, memory and mutation throughput, each beside a
floor (the bare framework doing the same job) measured in the same run.

`python -m bench` (make bench) writes docs/benchmarks.md and its plot; `--quick` is a
one-minute version; `--smoke` is the small run CI uses to catch errors and lost events.
"""
