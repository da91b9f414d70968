"""Importing mailboxes into a real database (SQLite and PostgreSQL)."""

import io
from datetime import date

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from warmup_dagster.db.models import Mailbox, MailboxOAuth, MailboxState, Plan, User
from warmup_dagster.mailboxes.importer import ImportRejected, import_mailboxes
from warmup_dagster.mailboxes.service import set_state
from warmup_dagster.progress import StageLine
from warmup_dagster_tests.mailboxes.csvdata import COLUMNS, csv_text, row
from warmup_dagster_tests.secrets.snapshot import database_rows


@pytest.fixture
def run_import(engine, cipher, clock):
    def run(rows, columns=None, **kwargs):
        return import_mailboxes(
            engine, io.StringIO(csv_text(rows, columns)), cipher=cipher, clock=clock, **kwargs
        )

    return run


def _snapshot(engine) -> list[tuple]:
    with engine.connect() as conn:
        return (
            conn.execute(text("SELECT * FROM mailboxes ORDER BY email")).all()
            + conn.execute(text("SELECT * FROM users ORDER BY name")).all()
        )


def test_import_creates_users_and_mailboxes_with_encrypted_passwords(engine, cipher, run_import):
    summary = run_import(
        [row("a1@ann.example"), row("a2@ann.example", timezone=""), row("b1@bob.example", "bob")]
    )
    assert (summary.rows_read, summary.created, summary.updated, summary.rejected) == (3, 3, 0, 0)
    assert summary.users_created == ["ann", "bob"]
    with Session(engine) as s:
        users = {u.name: u for u in s.scalars(select(User))}
        default_plan = s.scalar(select(Plan).where(Plan.name == "default"))
        assert {u.plan_id for u in users.values()} == {default_plan.id}
        box = s.scalar(select(Mailbox).where(Mailbox.email == "a1@ann.example"))
        assert box.user_id == users["ann"].id and box.domain == "ann.example"
        assert box.state is MailboxState.ACTIVE
        assert (box.daily_limit, box.ramp_start, box.ramp_step, box.reply_rate) == (40, 2, 3, 0.25)
        # 05:00 UTC on Monday 2 March is 06:00 in Berlin: the warmup starts that local day
        assert box.warmup_start_date == date(2026, 3, 2)
        assert "smtp-secret" not in box.smtp_password_enc
        assert cipher.decrypt(box.smtp_password_enc) == "smtp-secret-a1@ann.example"
        assert cipher.decrypt(box.imap_password_enc) == "imap-secret-a1@ann.example"
        assert s.scalar(select(Mailbox.timezone).where(Mailbox.email == "a2@ann.example")) is None
    with engine.connect() as conn:  # no plaintext anywhere in the table
        dump = " ".join(str(v) for r in conn.execute(text("SELECT * FROM mailboxes")) for v in r)
    assert "secret" not in dump


def test_reimport_updates_by_address_and_keeps_state_and_start(engine, clock, run_import):
    run_import([row("a1@ann.example"), row("a2@ann.example")])
    set_state(engine, "a1@ann.example", MailboxState.PAUSED, "bounces", clock)
    clock.advance(days=3)
    summary = run_import([row("a1@ann.example", daily_limit=80), row("a3@ann.example")])
    assert (summary.created, summary.updated) == (1, 1)
    with Session(engine) as s:
        box = s.scalar(select(Mailbox).where(Mailbox.email == "a1@ann.example"))
        assert box.daily_limit == 80
        assert box.state is MailboxState.PAUSED and box.state_reason == "bounces"
        assert box.warmup_start_date == date(2026, 3, 2)
        assert s.scalar(select(func.count()).select_from(Mailbox)) == 3


def test_one_bad_row_imports_nothing_and_changes_nothing(engine, run_import):
    run_import([row("a1@ann.example"), row("a2@ann.example")])
    before = _snapshot(engine)
    bad = [
        row("a1@ann.example", daily_limit=99),
        row("new@carl.example", "carl"),
        row("broken@x.example", smtp_port=70000),
        row("a2@ann.example", imap_security="tls"),
    ]
    with pytest.raises(ImportRejected) as excinfo:
        run_import(bad)
    message = str(excinfo.value)
    assert "2 of 4 rows rejected" in message
    assert "line 4, smtp_port: 70000 is outside 1-65535" in message
    assert "line 5, imap_security: 'tls' is not one of starttls, ssl, none" in message
    assert "secret" not in message
    assert _snapshot(engine) == before


def test_display_names_are_stored_updated_and_a_bad_one_loses_nothing(engine, run_import):
    run_import([row("a1@ann.example", display_name="José García"), row("a2@ann.example")])
    with Session(engine) as s:
        names = dict(s.execute(select(Mailbox.email, Mailbox.display_name)).tuples().all())
    assert names == {"a1@ann.example": "José García", "a2@ann.example": None}
    run_import([row("a1@ann.example", display_name=""), row("a2@ann.example", display_name="Ann")])
    with Session(engine) as s:
        names = dict(s.execute(select(Mailbox.email, Mailbox.display_name)).tuples().all())
    # The file owns the column: an empty name goes back to the one derived from the address.
    assert names == {"a1@ann.example": None, "a2@ann.example": "Ann"}
    before = _snapshot(engine)
    with pytest.raises(ImportRejected) as excinfo:
        run_import(
            [
                row("a1@ann.example", display_name="Ann"),
                row("a2@ann.example", display_name="Ann <boss@ann.example>"),
            ]
        )
    assert "line 3, display_name: contains < > @" in str(excinfo.value)
    assert _snapshot(engine) == before


SEEDED_PLANS = "default (25 / 2,000), pro (500 / 50,000), enterprise (100,000 / 2,000,000)"


def test_plan_mailbox_limit_is_enforced_across_existing_and_new(engine, run_import):
    run_import([row(f"m{i}@ann.example") for i in range(20)])  # default plan: 25 per user
    with pytest.raises(ImportRejected) as excinfo:
        run_import([row(f"n{i}@ann.example") for i in range(6)])
    errors = excinfo.value.errors
    # every row of the owner is rejected (none can be imported as it is), each on the column
    # that fixes it; the first says how, with the plans to choose from, the others point to it
    assert [(e.line, e.field) for e in errors] == [(line, "plan") for line in range(2, 8)]
    assert errors[0].message == (
        "user 'ann' would have 26 mailboxes, more than plan 'default' (25 mailboxes, 2,000 "
        f"sends a day) allows; set the plan column to one of: {SEEDED_PLANS}"
    )
    assert {e.message for e in errors[1:]} == {
        "user 'ann' would have 26 mailboxes, more than plan 'default' allows (see line 2)"
    }
    assert str(excinfo.value).startswith("nothing imported: 6 of 6 rows rejected\n")
    # the same rows fit once the user moves to a bigger plan in the same file
    summary = run_import([row(f"n{i}@ann.example", plan="pro") for i in range(6)])
    assert summary.created == 6
    with Session(engine) as s:
        plan = s.scalar(select(Plan.name).join(User, User.plan_id == Plan.id))
        assert plan == "pro"


def test_plan_errors_name_the_row_the_column_and_the_plans(engine, clock, run_import):
    with Session(engine) as s, s.begin():
        s.add(Plan(name="tiny", max_mailboxes=5, daily_send_limit=30, created_at=clock.now()))
    with pytest.raises(ImportRejected) as excinfo:
        run_import(
            [
                row("a@ann.example", plan="gold"),
                row("b@bob.example", "bob", plan="pro"),
                row("c@bob.example", "bob", plan="enterprise"),
                row("d@dan.example", "dan", daily_limit=31, plan="tiny"),
            ]
        )
    found = {(e.line, e.field): e.message for e in excinfo.value.errors}
    plans = f"tiny (5 / 30), {SEEDED_PLANS}"  # read from the table: the new plan is listed
    assert found[(2, "plan")] == (
        f"unknown plan 'gold'; set the plan column to one of (mailboxes / sends a day): {plans}"
    )
    assert "given plan 'pro' on line 3 and 'enterprise' here" in found[(4, "plan")]
    assert found[(5, "daily_limit")] == (
        "31 is above plan 'tiny' (5 mailboxes, 30 sends a day); lower daily_limit or set the "
        f"plan column to one of: {plans}"
    )


def test_rejection_counts_every_bad_row_and_says_how_many_are_not_listed(engine, run_import):
    # 1,200 rows of 12 owners, 100 each, all on the default plan of 25: every row is rejected
    rows = [row(f"m{i}@x{i % 7}.example", f"owner{i // 100:02d}") for i in range(1200)]
    with pytest.raises(ImportRejected) as excinfo:
        run_import(rows)
    rejected = excinfo.value
    assert rejected.bad_rows == list(range(2, 1202)) and len(rejected.errors) == 1200
    lines = str(rejected).split("\n  ")
    assert lines[0] == "nothing imported: 1,200 of 1,200 rows rejected"
    assert [line.split(",")[0] for line in lines[1:-1]] == [f"line {n}" for n in range(2, 102)]
    assert lines[-1] == "... and 1,100 more rows"
    assert lines[1] == (
        "line 2, plan: user 'owner00' would have 100 mailboxes, more than plan 'default' (25 "
        f"mailboxes, 2,000 sends a day) allows; set the plan column to one of: {SEEDED_PLANS}"
    )
    assert lines[2] == (
        "line 3, plan: user 'owner00' would have 100 mailboxes, more than plan 'default' "
        "allows (see line 2)"
    )
    assert _snapshot(engine) == []


def test_a_short_list_has_no_more_line_and_a_bad_header_no_row_count(run_import):
    with pytest.raises(ImportRejected) as excinfo:
        run_import([row("a@ann.example", smtp_port=0), row("b@ann.example")])
    assert str(excinfo.value) == (
        "nothing imported: 1 of 2 rows rejected\n  line 2, smtp_port: 0 is outside 1-65535"
    )
    with pytest.raises(ImportRejected) as excinfo:
        run_import([row("a@ann.example")], columns=["email", "user"])
    message = str(excinfo.value)
    assert message.startswith("nothing imported: the header row is wrong\n")
    assert "line 1, smtp_host: required column is missing" in message
    assert "rows rejected" not in message and "more rows" not in message


def test_moving_a_mailbox_to_another_user_counts_for_the_new_owner(engine, run_import):
    run_import([row("a@ann.example"), row("b@bob.example", "bob")])
    run_import([row("a@ann.example", "bob")])
    with Session(engine) as s:
        owner = s.scalar(
            select(User.name)
            .join(Mailbox, Mailbox.user_id == User.id)
            .where(Mailbox.email == "a@ann.example")
        )
    assert owner == "bob"


def test_dry_run_reports_and_writes_nothing(engine, run_import):
    summary = run_import([row("a@ann.example"), row("b@bob.example", "bob")], dry_run=True)
    assert (summary.created, summary.dry_run) == (2, True)
    assert "would be created: 2" in str(summary)
    assert _snapshot(engine) == []


def test_progress_reports_each_stage(engine, run_import):
    out = io.StringIO()
    run_import(
        [row(f"x{i}@ann.example") for i in range(5)],
        progress=lambda stage, total: StageLine(stage, total, out),
    )
    lines = out.getvalue().splitlines()
    assert [line.split(" in ")[0] for line in lines] == [
        "read and validate: 5",
        "write mailboxes: 5",
    ]


def test_oauth2_rows_store_the_provider_and_the_refresh_token_encrypted(engine, cipher, run_import):
    run_import(
        [
            row("a1@ann.example", auth="oauth2", oauth_provider="google", smtp_password="",
                imap_password="", oauth_refresh_token="rt-secret-a1"),
            row("a2@ann.example", auth="oauth2", oauth_provider="microsoft"),
            row("a3@ann.example"),
        ]
    )  # fmt: skip
    with Session(engine) as session:
        boxes = {b.email: b for b in session.scalars(select(Mailbox))}
        stored = {o.mailbox_id: o for o in session.scalars(select(MailboxOAuth))}
    a1, a2 = (boxes[f"a{i}@ann.example"] for i in (1, 2))
    assert set(stored) == {a1.id, a2.id}
    assert stored[a1.id].provider == "google"
    assert stored[a1.id].refresh_token_enc != "rt-secret-a1"
    assert cipher.decrypt(stored[a1.id].refresh_token_enc) == "rt-secret-a1"
    assert cipher.decrypt(a1.smtp_password_enc) == ""
    assert a1.state is MailboxState.ACTIVE
    # Imported without its token: paused until connected, saying how.
    assert stored[a2.id].refresh_token_enc is None
    assert a2.state is MailboxState.PAUSED
    assert "warmup mailboxes connect a2@ann.example --provider microsoft" in a2.state_reason

    # A re-import without the token keeps it; one with `auth` password goes back to passwords.
    run_import(
        [
            row("a1@ann.example", auth="oauth2", oauth_provider="google"),
            row("a2@ann.example"),
            row("a3@ann.example"),
        ]
    )
    with Session(engine) as session:
        stored = {o.mailbox_id: o for o in session.scalars(select(MailboxOAuth))}
    assert set(stored) == {a1.id}
    assert cipher.decrypt(stored[a1.id].refresh_token_enc) == "rt-secret-a1"


def test_a_bad_sign_in_row_loses_nothing_already_stored(engine, run_import):
    run_import([row("a1@ann.example", auth="oauth2", oauth_provider="google",
                    oauth_refresh_token="rt-1")])  # fmt: skip
    before = _snapshot(engine)
    with pytest.raises(ImportRejected, match="line 2, oauth_provider: 'aol' is not one of"):
        run_import([row("a1@ann.example", auth="oauth2", oauth_provider="aol")])
    assert _snapshot(engine) == before
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(MailboxOAuth)) == 1


def test_hostile_files_are_rejected_whole_and_the_pool_is_unchanged(engine, cipher, clock):
    """Bytes that are not UTF-8, a header with no rows, a huge field, a bad IP host: each
    rejected with its line, and the pool already stored is exactly as it was."""

    def run(data: bytes):
        return import_mailboxes(engine, io.BytesIO(data), cipher=cipher, clock=clock)

    run(("\ufeff" + csv_text([row("a1@bücher.example"), row("a2@ann.example")])).encode())
    before = _snapshot(engine)
    with Session(engine) as session:
        assert sorted(session.scalars(select(Mailbox.email))) == [
            "a1@xn--bcher-kva.example",
            "a2@ann.example",
        ]
    update = [row("a1@bücher.example", daily_limit=99), row("new@carl.example", "carl")]
    hostile = {
        "line 2, email: is not UTF-8 on line 2 at column 5": csv_text(
            [*update, row("b@x.example", display_name="José")]
        ).encode("latin-1"),
        "line 1, file: has a header row but no mailbox rows": csv_text([]).encode(),
        "line 3, display_name: is longer than 65,536 characters": csv_text(
            [*update[:1], row("b@x.example", display_name="x" * 70_000)]
        ).encode(),
        "line 3, smtp_host: '999.1.1.1' is not an IPv4 address": csv_text(
            [*update[:1], row("b@x.example", smtp_host="999.1.1.1")]
        ).encode(),
    }
    for expected, data in hostile.items():
        with pytest.raises(ImportRejected) as refused:
            run(data)
        assert expected in str(refused.value)
        assert _snapshot(engine) == before


def test_secrets_are_stored_exactly_as_given(engine, cipher, run_import):
    run_import(
        [
            row("a@x.example", smtp_password="  spaced pw\u00a0", imap_password=" "),
            row("b@x.example", auth="oauth2", oauth_provider="google", smtp_password="",
                imap_password="", oauth_refresh_token=" 1//0g-token \u3000"),
        ]
    )  # fmt: skip
    with Session(engine) as session:
        boxes = {b.email: b for b in session.scalars(select(Mailbox))}
        token = session.scalars(select(MailboxOAuth.refresh_token_enc)).one()
    assert cipher.decrypt(boxes["a@x.example"].smtp_password_enc) == "  spaced pw\u00a0"
    assert cipher.decrypt(boxes["a@x.example"].imap_password_enc) == " "
    # A refresh token is a secret too: its spaces are not stripped (before, they were).
    assert cipher.decrypt(token) == " 1//0g-token \u3000"


# What SQL, LIKE patterns and escapes are made of, in every column that takes free text.
SQL_HOSTILE = {
    "email": "o'brien%_x`{}@ann.example",
    "user": "'; DROP TABLE mailboxes; --",
    "display_name": "Robert'); DROP TABLE users;--",
    "smtp_username": "x' OR '1'='1' -- %s %(p)s ? :p $1",
    "smtp_password": "'; DROP TABLE mailboxes; --\\' \" % _ \\x00",
    "imap_username": "\\'\\\"\\\\ \\n \\%",
    "imap_password": "%_%\\_%' UNION SELECT smtp_password_enc FROM mailboxes --",
}


def test_sql_metacharacters_are_stored_verbatim_and_touch_nothing_else(engine, cipher, run_import):
    """Quotes, comments, LIKE wildcards and backslashes go in as values; the pool's other
    rows (an owner named `%`'s neighbours, an address matching `%` as a pattern) are not
    touched, and a re-import of the same rows updates exactly them."""
    run_import([row("a1@ann.example"), row("b1@bob.example", "bob"), row("c1@cn.example", "a_n")])
    with engine.connect() as conn:
        tables = set(database_rows(engine))
        untouched = conn.execute(
            text("SELECT * FROM mailboxes WHERE email <> :e ORDER BY id"),
            {"e": SQL_HOSTILE["email"]},
        ).all()
    hostile = [
        row(SQL_HOSTILE["email"], SQL_HOSTILE["user"], **{k: v for k, v in SQL_HOSTILE.items()
            if k not in ("email", "user")}),
        row("%@ann.example", "%", smtp_password="%", imap_password="_"),
        row("_@ann.example", "_", smtp_password="\\", imap_password="'"),
    ]  # fmt: skip
    for attempt in (1, 2):  # the second time, an update of the same rows
        summary = run_import(hostile)
        assert (summary.created, summary.updated) == ((3, 0) if attempt == 1 else (0, 3))
        assert set(database_rows(engine)) == tables
        with Session(engine) as session:
            boxes = {b.email: b for b in session.scalars(select(Mailbox))}
            users = {u.id: u.name for u in session.scalars(select(User))}
        box = boxes[SQL_HOSTILE["email"]]
        assert users[box.user_id] == SQL_HOSTILE["user"]
        assert box.display_name == SQL_HOSTILE["display_name"]
        assert (box.smtp_username, box.imap_username) == (
            SQL_HOSTILE["smtp_username"],
            SQL_HOSTILE["imap_username"],
        )
        assert cipher.decrypt(box.smtp_password_enc) == SQL_HOSTILE["smtp_password"]
        assert cipher.decrypt(box.imap_password_enc) == SQL_HOSTILE["imap_password"]
        assert users[boxes["%@ann.example"].user_id] == "%"
        assert cipher.decrypt(boxes["%@ann.example"].smtp_password_enc) == "%"
        assert cipher.decrypt(boxes["_@ann.example"].smtp_password_enc) == "\\"
        assert cipher.decrypt(boxes["_@ann.example"].imap_password_enc) == "'"
        assert sorted(users.values()) == sorted(
            ["ann", "bob", "a_n", SQL_HOSTILE["user"], "%", "_"]
        )
        with engine.connect() as conn:
            rows_now = conn.execute(
                text("SELECT * FROM mailboxes WHERE email IN (:a, :b, :c) ORDER BY id"),
                {"a": "a1@ann.example", "b": "b1@bob.example", "c": "c1@cn.example"},
            ).all()
        assert rows_now == untouched  # the pool as it was, every column


def test_cr_lf_and_nul_in_any_column_import_nothing(engine, run_import):
    """One file, one hostile row per column (CR LF, LF, CR or NUL at the end or inside): every
    row named with its column, nothing imported, the pool as it was."""
    run_import([row("a1@ann.example"), row("a2@ann.example")])
    before = database_rows(engine)
    base = {**row("z@x.example"), "display_name": "Ann", "plan": "default", "weekdays_only": "1"}
    oauth = {"auth": "oauth2", "oauth_provider": "google", "oauth_refresh_token": "rt"}
    chars = ["\r\n", "\n", "\r", "\0"]
    rows, expected, line = [], set(), 2
    for n, column in enumerate(COLUMNS):
        given = {**base, **(oauth if column in oauth else {}), "email": f"m{n}@x.example"}
        value, char = str(given[column]), chars[n % len(chars)]
        given[column] = value + char if n % 2 else value[:1] + char + value[1:]
        rows.append(given)
        expected.add((line, column))
        line += csv_text([given]).count("\n") - 1  # the lines this record takes
    with pytest.raises(ImportRejected) as refused:
        run_import(rows)
    assert {(e.line, e.field) for e in refused.value.errors} == expected
    assert f"{len(COLUMNS)} of {len(COLUMNS)} rows rejected" in str(refused.value)
    assert database_rows(engine) == before
