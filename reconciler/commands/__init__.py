"""One module per `schedules` command, each a function from options to one result.

`reconciler.cli` declares the options and hands each result to `reconciler.exit_codes`.
"""
