"""`python -m app` is the `sprintboard` command."""

from app.cli import main

main()
