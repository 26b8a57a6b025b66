"""The JSON Schema of a schedule file, generated from the pydantic model.

`python -m reconciler.schema` rewrites schema/schedules.schema.json; a test fails when the committed
file is stale, so editors (yaml-language-server) and the model never disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from reconciler.spec import ScheduleFile

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "schedules.schema.json"


def schedule_file_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a schedules.d file."""
    schema = ScheduleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def schema_text() -> str:
    """The schema as the committed file holds it."""
    return json.dumps(schedule_file_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_PATH
    target.write_text(schema_text())
    print(f"wrote {target}")
