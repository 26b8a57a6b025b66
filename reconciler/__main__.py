"""`python -m reconciler` is the `schedules` command."""

from reconciler.cli import main

main()
