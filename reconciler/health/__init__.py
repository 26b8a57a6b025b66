"""`schedules health`: did each schedule fire, did its runs start and succeed, is any scheduler processing?

``core`` (pure: expected fires, attribution of starts to fires, the verdict), ``reading`` (the database edge,
read-only), ``render`` (text / JSON / Markdown) and ``metrics`` (Prometheus exposition and ``/metrics``).
The command itself is ``reconciler.commands.health``.
"""
