"""A schedules directory of hourly `task_clean_up_tasks` schedules, one per key, named as given."""

from __future__ import annotations

import json
from pathlib import Path


def write_dir(directory: Path, names: dict[str, str]) -> Path:
    """Write `main.yaml` with one hourly interval schedule per key → name; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    specs = [
        {
            "key": k,
            "name": n,
            "workflow_name": "task_clean_up_tasks",
            "trigger": "interval",
            "trigger_kwargs": {"hours": 1},
        }
        for k, n in names.items()
    ]
    (directory / "main.yaml").write_text("schedules:\n" + "".join(f"  - {json.dumps(s)}\n" for s in specs))
    return directory
