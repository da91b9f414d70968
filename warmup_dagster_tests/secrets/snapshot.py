"""Every row of every table of the application database, for before/after comparisons and
for looking through everything a run stored."""

from __future__ import annotations

from sqlalchemy import column, inspect, select, table
from sqlalchemy.engine import Engine


def database_rows(engine: Engine) -> dict[str, list[tuple]]:
    """Table name -> its rows (every column, as the database returns them), sorted."""
    with engine.connect() as conn:
        schema = inspect(conn)
        rows = {}
        for name in sorted(schema.get_table_names()):
            t = table(name, *(column(c["name"]) for c in schema.get_columns(name)))
            rows[name] = sorted((tuple(r) for r in conn.execute(select(*t.c))), key=repr)
        return rows
