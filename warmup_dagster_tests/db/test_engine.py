"""The engine helpers against both databases."""

from sqlalchemy import Integer, column, select, table, text

from warmup_dagster.db.dialect import among
from warmup_dagster.db.engine import IN_LIST_CHUNK

numbers = table("numbers", column("n", Integer))


def test_among_selects_exactly_the_values_also_past_one_in_list(engine):
    wanted = set(range(0, 3 * IN_LIST_CHUNK, 2))  # more values than one IN list holds
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE numbers (n INTEGER PRIMARY KEY)"))
        conn.execute(numbers.insert(), [{"n": n} for n in range(3 * IN_LIST_CHUNK)])
        found = []
        for condition in among(conn, numbers.c.n, sorted(wanted)):
            found += conn.execute(select(numbers.c.n).where(condition)).scalars().all()
        assert sorted(found) == sorted(wanted)
        assert list(among(conn, numbers.c.n, [])) == []
