"""A module without schedules: no file is written for it."""


def helper() -> int:
    return 1
