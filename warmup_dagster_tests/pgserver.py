"""The PostgreSQL server of the tests and benchmarks (WARMUP_TEST_POSTGRES_URL)."""

import os

import psycopg2
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get(
    "WARMUP_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def admin_connection() -> psycopg2.extensions.connection:
    """An autocommit connection to the server's admin database, to create and drop databases."""
    url = make_url(PG_ADMIN_URL)
    conn = psycopg2.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database,
        connect_timeout=5,
    )
    conn.autocommit = True
    return conn


def database_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
