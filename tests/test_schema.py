"""The committed JSON Schema is what the model generates, and the bundled files satisfy it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from reconciler.schema import SCHEMA_PATH, schema_text
from reconciler.spec import KEY_PATTERN

REPO = Path(__file__).resolve().parent.parent


def test_committed_schema_is_fresh() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), "schema is stale: run `python -m reconciler.schema`"


def test_bundled_files_start_with_the_modeline_and_match_the_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    files = sorted((REPO / "schedules.d").rglob("*.y*ml"))
    assert files
    for path in files:
        text = path.read_text()
        assert text.startswith("# yaml-language-server: $schema=../schema/schedules.schema.json\n"), path
        jsonschema.validate(yaml.safe_load(text), schema)


def test_schema_rejects_what_the_validator_rejects() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    good = {"schedules": [{"key": "a", "workflow_name": "w", "trigger": "cron", "trigger_kwargs": {"hour": 1}}]}
    jsonschema.validate(good, schema)
    for bad in (
        {"schedules": [{"key": "a", "workflow_name": "w"}]},  # missing trigger
        {"schedules": [{"key": "A B", "workflow_name": "w", "trigger": "cron"}]},  # key pattern
        {"schedules": [{"key": "a", "workflow_name": "w", "trigger": "weekly"}]},  # unknown trigger
        {"schedules": [], "colour": "blue"},  # unknown top-level key
    ):
        validator = jsonschema.Draft202012Validator(schema)
        assert list(validator.iter_errors(bad)), bad
    assert schema["$defs"]["ScheduleSpec"]["properties"]["key"]["pattern"] == KEY_PATTERN
