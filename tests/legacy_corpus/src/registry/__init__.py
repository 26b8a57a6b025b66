"""4.x style: a schedules package that lists what it registers."""

from .jobs import listed_job, other_listed

ALL_SCHEDULERS = [listed_job]
ALL_SCHEDULERS.append(other_listed)
