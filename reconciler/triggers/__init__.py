"""Schedule triggers: spec ↔ APScheduler 3.11 trigger, semantic checks, next fire times, canonical form.

A schedule's ``trigger`` / ``trigger_kwargs`` / ``timezone`` become a real APScheduler 3.11 trigger object
(the object that is pickled into ``apscheduler_jobs``), always with an explicit ``ZoneInfo`` so nothing
depends on the host's zone. Around that:

* :func:`trigger_problems` finds what builds but does not do what the author thinks: ``and`` triggers that
  hang APScheduler 3.11, ``or`` triggers that silently drop runs, dates in the past, APScheduler's
  Monday-is-0 weekday numbers, and cron times that a DST change skips, shifts or repeats;
* :func:`next_fire_times` predicts runs without ever hanging; :func:`fire_times_between` lists a window's runs;
* :func:`canonical_form` says whether two triggers are the same schedule (pickles and ``str()`` do not);
* :func:`describe` and :func:`spec_from_trigger` go back from a trigger to words and to a spec.

Facts about APScheduler used here are in ``reference/apscheduler.md`` (§2 triggers, §2.6 combining-trigger
defects, §2.7 canonicalisation, §3.3 DST) and were checked against the installed 3.11.3.

One concept per module: ``building`` (spec → trigger, :class:`TriggerError`, time zones), ``fire_times``,
``problems`` (with its DST notes in ``dst``), ``canonical``, ``words`` (:func:`describe`) and ``back_to_spec``
(:func:`spec_from_trigger`); ``moments`` and ``cron_fields`` hold the small helpers they share.
"""

from reconciler.triggers.back_to_spec import spec_from_trigger
from reconciler.triggers.building import TriggerError, build_trigger, zone_from_name
from reconciler.triggers.canonical import canonical_form
from reconciler.triggers.fire_times import fire_times_between, next_fire_times
from reconciler.triggers.problems import trigger_problems
from reconciler.triggers.words import describe

__all__ = [
    "TriggerError",
    "build_trigger",
    "canonical_form",
    "describe",
    "fire_times_between",
    "next_fire_times",
    "spec_from_trigger",
    "trigger_problems",
    "zone_from_name",
]
