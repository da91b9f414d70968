"""A hypothesis property of the whole import, on both databases.

For any file of one to three rows, in any column order, each row with up to three columns
given anything at all (any unicode, CR/LF/NUL, quotes, commas, SQL metacharacters, LIKE
wildcards, backslashes) and the rest good values that themselves carry SQL and arbitrary
text where the column takes free text (names, user names, passwords, tokens), either

- the import succeeds, every stored field is what the file said (normalised only as the
  import documents: surrounding spaces, the address's case; secrets exactly, decrypted), and
  the pool's other mailboxes are as they were; or
- it is rejected, each error naming the line its record starts on and a column that was
  given a hostile value in that record (or `email`, for an address the file already had),
  every CR, LF and NUL among them, no secret quoted, and every table exactly as it was.

Each example starts from the same pool of two mailboxes, which the file may update.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from warmup_dagster.db.models import Mailbox, MailboxOAuth, Plan, Security, User
from warmup_dagster.mailboxes.addresses import normal_host
from warmup_dagster.mailboxes.importer import ImportRejected, import_mailboxes
from warmup_dagster_tests.mailboxes.csvdata import COLUMNS, csv_text, row
from warmup_dagster_tests.secrets.snapshot import database_rows

POOL = [row("a1@ann.example"), row("b1@bob.example", "bob")]
# What SQL, LIKE patterns and CSV are made of, and characters a value must not hold.
SQL = [
    "'", '"', '""', ",", ";", "--", "/*", "*/", "%", "_", "\\", "\\'",
    "'; DROP TABLE mailboxes; --", "' OR '1'='1", "%s", "%(p)s", "?", ":p", "$1", " ", "é",
    "\U0001f600", "NULL", "\ufeff",
]  # fmt: skip
BREAKS = ["\r", "\n", "\r\n", "\0", "\t", "\x85", "\u2028", "\u202e", "\x1b"]
# A mark that no error message contains by chance: secrets that carry it are looked for in
# the errors.
MARK = "Sx9!q"
TRUE = {"true", "yes", "y", "1"}


def _texts(pieces: list[str], characters: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    parts = st.one_of(st.sampled_from(pieces), st.text(characters, max_size=3))
    return st.lists(parts, max_size=5).map("".join)


# Anything at all: a value that may well be refused.
hostile = st.one_of(st.text(max_size=10), _texts(SQL + BREAKS, st.characters()))
# Free text a column takes (SQL and all): no control characters, line or paragraph separators.
_PLAIN = st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"))
plain = _texts(SQL, _PLAIN).filter(lambda s: s.strip())
# A display name: besides, no invisible characters and none of < > @ " \ (`core.names`).
_NAME = st.characters(
    exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"), exclude_characters='<>@"\\'
)
name = _texts([p for p in SQL if not set(p) & set('"\\\ufeff')], _NAME)
# A password or token that is good: anything without control characters, spaces and SQL kept.
secret = st.one_of(plain, plain.map(lambda s: MARK + s))
local_part = st.text(alphabet="abcXYZ019'%_`{}!#$&*+/=?^|~-", min_size=1, max_size=8)


@dataclass(frozen=True)
class Value:
    text: str
    hostile: bool  # may be refused; a good value never is


def _good(column: str, draw) -> str:
    if column == "email":
        if draw(st.booleans()):  # an update of the pool, its address in any case
            address = draw(st.sampled_from([r["email"] for r in POOL]))
            return "".join(draw(st.sampled_from([c, c.upper()])) for c in address)
        return f"{draw(local_part)}@{draw(st.sampled_from(['ann.example', 'Bob.EXAMPLE']))}"
    choices = {
        "user": st.one_of(st.sampled_from(["ann", "bob"]), plain),
        "display_name": name,
        "smtp_host": st.sampled_from(["smtp.example.com", "MX.Example.COM", "10.0.0.7", "[::1]"]),
        "imap_host": st.sampled_from(["imap.example.com", "Bücher.example", "2001:DB8::1"]),
        "smtp_port": st.sampled_from(["587", "25", " 465 "]),
        "imap_port": st.sampled_from(["993", "143"]),
        "smtp_security": st.sampled_from(["starttls", "SSL", "none"]),
        "imap_security": st.sampled_from(["ssl", "STARTTLS"]),
        "smtp_username": st.one_of(st.just(""), plain),
        "imap_username": st.one_of(st.just(""), plain),
        "smtp_password": secret,
        "imap_password": secret,
        "timezone": st.sampled_from(["", "UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires"]),
        "daily_limit": st.sampled_from(["", "1", "40", "2000"]),
        "ramp_start": st.sampled_from(["", "1"]),
        "ramp_step": st.sampled_from(["", "0", "3"]),
        "reply_rate": st.sampled_from(["", "0.3", "30%", "1"]),
        "weekdays_only": st.sampled_from(["", "true", "No"]),
        "plan": st.sampled_from(["", "pro"]),
        "auth": st.sampled_from(["", "password"]),
        "oauth_provider": st.just(""),
        "oauth_refresh_token": st.just(""),
    }
    return draw(choices[column])


@st.composite
def records(draw) -> dict[str, Value]:
    bad = draw(st.sets(st.sampled_from(COLUMNS), max_size=3))
    values = {column: Value(_good(column, draw), False) for column in COLUMNS}
    if draw(st.booleans()):  # OAuth2: a provider, maybe a token, the passwords may be empty
        values["auth"] = Value(draw(st.sampled_from(["oauth2", "OAuth2"])), False)
        values["oauth_provider"] = Value(draw(st.sampled_from(["google", "Microsoft"])), False)
        values["oauth_refresh_token"] = Value(draw(st.one_of(st.just(""), secret)), False)
        for side in ("smtp", "imap"):
            values[f"{side}_password"] = Value(draw(st.one_of(st.just(""), secret)), False)
    for column in bad:
        local = draw(hostile)
        given = f"{local}@x.example" if column == "email" else local
        values[column] = Value(given, True)
    return values


def _reset(engine, cipher, clock) -> None:
    with engine.begin() as conn:
        for table in ("mailbox_oauth", "mailboxes", "users"):
            conn.execute(text(f"DELETE FROM {table}"))
    import_mailboxes(engine, io.StringIO(csv_text(POOL)), cipher=cipher, clock=clock)


def _start_lines(columns: list[str], given: list[dict[str, str]]) -> list[int]:
    """The line each record starts on, from the file as written (a quoted field may hold
    line breaks; only LF ends a line for the reader)."""
    lines, line = [], 2
    for record in given:
        lines.append(line)
        line += csv_text([record], columns).split("\r\n", 1)[1].count("\n")
    return lines


@pytest.mark.slow(5)
def test_an_import_stores_exactly_what_it_was_given_or_nothing(engine, cipher, clock):
    outcomes: Counter[str] = Counter()

    @settings(max_examples=60, deadline=None)
    @given(columns=st.permutations(COLUMNS), records_=st.lists(records(), min_size=1, max_size=3))
    def check(columns, records_):
        given = [{column: v.text for column, v in r.items()} for r in records_]
        data = csv_text(given, list(columns)).encode()
        _reset(engine, cipher, clock)
        before = database_rows(engine)
        pool_before = _pool_rows(engine, {r["email"] for r in POOL})
        try:
            summary = import_mailboxes(engine, io.BytesIO(data), cipher=cipher, clock=clock)
        except ImportRejected as refused:
            outcomes["refused"] += 1
            _check_refusal(refused, records_, given, _start_lines(list(columns), given))
            assert database_rows(engine) == before
            return
        outcomes["imported"] += 1
        assert summary.rows_read == len(given)
        _check_stored(engine, cipher, given, pool_before)

    check()
    # Both sides of the property were seen (no vacuous pass on either).
    assert outcomes["imported"] >= 5 and outcomes["refused"] >= 5, outcomes


def _check_refusal(refused: ImportRejected, records_, given, starts) -> None:
    assert refused.errors
    named = {(e.line, e.field) for e in refused.errors}
    seen: dict[str, int] = {}
    allowed: dict[int, set[str]] = {}
    for start, record, values in zip(starts, records_, given, strict=True):
        fields = {column for column, v in record.items() if v.hostile}
        if "auth" in fields:  # another sign-in: the columns of the one given may be wrong
            fields |= {"smtp_password", "imap_password", "oauth_provider", "oauth_refresh_token"}
        address = values["email"].strip().lower()
        if seen.setdefault(address, start) != start:
            fields.add("email")  # the same address as an earlier row
        allowed[start] = fields
        for column, value in values.items():  # every line break and NUL is named
            if any(c in value for c in "\r\n\0"):
                assert (start, column) in named, (column, value)
    for error in refused.errors:
        assert error.line in allowed, error
        assert error.field in allowed[error.line], error
    message = str(refused)
    for values in given:
        for column in ("smtp_password", "imap_password", "oauth_refresh_token"):
            if values[column].startswith(MARK):
                assert values[column] not in message


def _host(value: str) -> str:
    """The stored form of a host the import took: an address's canonical form, a name
    lowercased in its IDNA form."""
    value = value.strip()
    if value.isascii() and ":" not in value:
        return value.lower()
    return normal_host(value)[0]


def _rate(value: str) -> float:
    value = value.strip()
    if not value:
        return 0.3
    return float(value[:-1]) / 100 if value.endswith("%") else float(value)


def _check_stored(engine, cipher, given, pool_before) -> None:
    with Session(engine) as session:
        boxes = {b.email: b for b in session.scalars(select(Mailbox))}
        users = {u.id: u for u in session.scalars(select(User))}
        plans = {p.id: p.name for p in session.scalars(select(Plan))}
        oauth = {o.mailbox_id: o for o in session.scalars(select(MailboxOAuth))}
    addresses = [v["email"].strip().lower() for v in given]
    assert set(boxes) == {r["email"] for r in POOL} | set(addresses)
    for address, v in zip(addresses, given, strict=True):
        box = boxes[address]
        user = users[box.user_id]
        assert user.name == v["user"].strip()
        if v["plan"].strip():
            assert plans[user.plan_id] == v["plan"].strip()
        assert box.display_name == (" ".join(v["display_name"].split()) or None)
        assert box.timezone == (v["timezone"].strip() or None)
        daily = int(v["daily_limit"].strip() or 40)
        assert box.daily_limit == daily
        assert box.ramp_start == int(v["ramp_start"].strip() or min(2, daily))
        assert box.ramp_step == int(v["ramp_step"].strip() or 2)
        assert box.reply_rate == _rate(v["reply_rate"])
        assert box.weekdays_only == (v["weekdays_only"].strip().lower() in TRUE)
        for side in ("smtp", "imap"):
            assert getattr(box, f"{side}_host") == _host(v[f"{side}_host"])
            assert getattr(box, f"{side}_port") == int(v[f"{side}_port"].strip())
            security = Security(v[f"{side}_security"].strip().lower())
            assert getattr(box, f"{side}_security") is security
            username = v[f"{side}_username"].strip() or address
            assert getattr(box, f"{side}_username") == username
            # exactly as given, every space, quote and backslash its own
            assert cipher.decrypt(getattr(box, f"{side}_password_enc")) == v[f"{side}_password"]
        if v["auth"].strip().lower() == "oauth2":
            stored = oauth[box.id]
            assert stored.provider == v["oauth_provider"].strip().lower()
            if token := v["oauth_refresh_token"]:
                assert cipher.decrypt(stored.refresh_token_enc) == token
            else:
                assert stored.refresh_token_enc is None
        else:
            assert box.id not in oauth
    # The pool's mailboxes the file did not name are exactly as they were.
    assert _pool_rows(engine, set(pool_before) - set(addresses)) == {
        address: pool_before[address] for address in set(pool_before) - set(addresses)
    }


def _pool_rows(engine, addresses) -> dict[str, tuple]:
    with engine.connect() as conn:
        return {
            address: tuple(
                conn.execute(text("SELECT * FROM mailboxes WHERE email = :e"), {"e": address}).one()
            )
            for address in addresses
        }
