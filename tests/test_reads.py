"""The read edge's SQL that stands in for Python: PostgreSQL spelling a next_run_time as `repr()` does.

A no-op plan on PostgreSQL takes each row's `row_hash` from the server (reads.PG_ROW_HASHES). That is only
safe if the server's spelling of the column never equals `repr()` of a *different* float; it is only fast if
it equals `repr()` for every next_run_time a scheduler writes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler import reads
from reconciler.state import LiveJob, row_hash


@pytest.fixture
def pg(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        yield connection


def spelled(connection: psycopg.Connection, values: list[float | None]) -> list[str | None]:
    sql = f"SELECT {reads.PG_FLOAT_REPR} FROM unnest(%s::float8[]) WITH ORDINALITY AS t(next_run_time, n) ORDER BY n"
    return [row[0] for row in connection.execute(sql, (values,)).fetchall()]


def is_repr_of_a_float(text: str) -> bool:
    try:
        return repr(float(text)) == text
    except ValueError:
        return False


timestamps = st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False)  # 1970 to 2100
# One connection for all examples: the queries only read, so nothing carries over between them.
one_connection = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@one_connection
@given(st.lists(timestamps, min_size=1, max_size=40))
@example([0.0, 1.0, 1733097600.0, 1733097600.5, 1733097600.123456, 0.1, 1e-05, 123456.789])
def test_every_timestamp_is_spelled_as_python_spells_it(pg: psycopg.Connection, values: list[float]) -> None:
    assert spelled(pg, list(values)) == [repr(v) for v in values]


@one_connection
@given(st.lists(st.floats() | st.none(), min_size=1, max_size=40))
@example([-0.0, math.inf, -math.inf, math.nan, 1e15, 1e16, 1e300, 5e-324, -1.5, 2.0**53, None])
def test_no_spelling_is_that_of_another_float(pg: psycopg.Connection, values: list[float | None]) -> None:
    """Where the spellings differ the hash misses (the row is read whole); never the spelling of another value."""
    for value, text in zip(values, spelled(pg, list(values)), strict=True):
        if value is None:
            assert text == "None"
        elif text is not None and is_repr_of_a_float(text):
            assert float(text) == value or (math.isnan(value) and math.isnan(float(text)))
            assert math.copysign(1, float(text)) == math.copysign(1, value) or math.isnan(value)


def test_lossy_float_output_gives_no_hash(pg: psycopg.Connection) -> None:
    """With extra_float_digits below 1 the server's text may round: no hash, so every row is read whole."""
    pg.execute("SET extra_float_digits = 0")
    assert spelled(pg, [1733097600.123456, 2.5, None]) == [None, None, "None"]


def test_the_server_computes_the_row_hash_python_does(pg: psycopg.Connection) -> None:
    pg.execute("CREATE TABLE apscheduler_jobs (id varchar PRIMARY KEY, next_run_time float8, job_state bytea)")
    rows = [("a", 1733097600.25, b"\x80\x05state a"), ("b", None, b"state b"), ("c", 1733097600.0, b"")]
    with pg.cursor() as cursor:
        cursor.executemany("INSERT INTO apscheduler_jobs VALUES (%s, %s, %s)", rows)
    found = {i: (n, d, h) for i, n, d, h in pg.execute(reads.PG_ROW_HASHES).fetchall()}
    for i, n, blob in rows:
        digest = hashlib.sha256(blob).hexdigest()
        assert found[i] == (n, digest, row_hash(digest, n))


@given(
    next_run_time=st.one_of(st.none(), st.floats(allow_nan=False)),
    workflow_ids=st.lists(st.uuids().map(str), max_size=2).map(tuple),
)
def test_a_row_read_as_its_hashes_is_the_row_its_init_makes(
    next_run_time: float | None, workflow_ids: tuple[str, ...]
) -> None:
    """`LiveJob.hashed` fills the record without the generated __init__: the same record, its row hash given."""
    digest = hashlib.sha256(b"job_state").hexdigest()
    made = LiveJob("id", next_run_time, workflow_ids, digest)
    hashed = LiveJob.hashed("id", next_run_time, workflow_ids, digest, "given")
    assert hashed == made and vars(hashed).keys() - {"row_hash"} == vars(made).keys()
    assert hashed.row_hash == "given" and hashed.digest_only
    assert made.row_hash == row_hash(digest, next_run_time)
