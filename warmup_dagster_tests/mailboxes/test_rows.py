"""CSV parsing and validation without a database."""

import io

import pytest

from warmup_dagster.db.models import Security
from warmup_dagster.mailboxes.csvsource import MAX_CSV_FIELD, MAX_LINE_BYTES, read_rows
from warmup_dagster.mailboxes.rows import MailboxRow, RowError
from warmup_dagster_tests.mailboxes.csvdata import COLUMNS, csv_text, row


def _parse(text: str) -> tuple[list[MailboxRow], list[RowError]]:
    rows, errors = [], []
    for parsed in read_rows(io.StringIO(text)):
        if isinstance(parsed, MailboxRow):
            rows.append(parsed)
        else:
            errors.extend(parsed)
    return rows, errors


def test_a_good_row_is_parsed_and_normalized():
    rows, errors = _parse(
        csv_text([row("Ann.Smith@Example.COM", smtp_security="STARTTLS", reply_rate="30%")])
    )
    assert errors == []
    (parsed,) = rows
    assert parsed.email == "ann.smith@example.com"
    assert parsed.domain == "example.com"
    assert parsed.smtp_security is Security.STARTTLS
    assert parsed.imap_security is Security.SSL
    assert parsed.reply_rate == pytest.approx(0.3)
    assert parsed.timezone == "Europe/Berlin"
    assert parsed.line == 2


def test_optional_columns_may_be_absent():
    columns = [c for c in COLUMNS if c not in ("timezone", "daily_limit", "plan", "reply_rate")]
    rows, errors = _parse(csv_text([row("a@x.example", smtp_username="")], columns))
    assert errors == []
    assert rows[0].daily_limit == 40 and rows[0].timezone is None and rows[0].plan is None
    assert rows[0].smtp_username == "a@x.example"  # empty username: the address


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"email": "not-an-address"}, "email", "is not an email address"),
        ({"email": "a@b"}, "email", "is not an email address"),
        ({"smtp_port": "0"}, "smtp_port", "outside 1-65535"),
        ({"imap_port": "99999"}, "imap_port", "outside 1-65535"),
        ({"smtp_port": "smtp"}, "smtp_port", "not a whole number"),
        ({"smtp_security": "tls"}, "smtp_security", "not one of starttls, ssl, none"),
        ({"timezone": "Europe/Berlinn"}, "timezone", "not an IANA timezone"),
        ({"daily_limit": "0"}, "daily_limit", "outside 1-2000"),
        ({"ramp_start": "50", "daily_limit": "40"}, "ramp_start", "above daily_limit 40"),
        ({"ramp_step": "-1"}, "ramp_step", "not a whole number"),
        ({"ramp_step": "2001"}, "ramp_step", "outside 0-2000"),
        ({"reply_rate": "1.5"}, "reply_rate", "outside 0-1"),
        ({"weekdays_only": "sometimes"}, "weekdays_only", "not true or false"),
        ({"user": ""}, "user", "is empty"),
        ({"smtp_password": ""}, "smtp_password", "is empty"),
        ({"smtp_host": "bad host!"}, "smtp_host", "not a host name"),
        ({"user": "ann\x07"}, "user", "control characters"),
        ({"display_name": "Ann\r\nBcc: all@x.example"}, "display_name", "a line break"),
        ({"display_name": "Ann\x00"}, "display_name", "NUL character"),
        ({"display_name": "A" * 201}, "display_name", "longer than 200 characters"),
        ({"display_name": "ceo@bank.example"}, "display_name", "contains @"),
        ({"display_name": '"CEO" <ceo@bank.example>'}, "display_name", 'contains " < > @'),
        ({"display_name": "Ann\u202eeeL"}, "display_name", "invisible character (U+202E)"),
    ],
)
def test_each_bad_field_is_named_with_its_line(overrides, field, fragment):
    text = csv_text([row("ok@x.example"), {**row("bad@y.example"), **overrides}])
    rows, errors = _parse(text)
    assert [r.line for r in rows] == [2]
    assert len(errors) == 1
    assert (errors[0].line, errors[0].field) == (3, field)
    assert fragment in errors[0].message


def test_all_errors_of_a_row_are_reported_together():
    _, errors = _parse(csv_text([row("x", smtp_port="0", timezone="Nowhere")]))
    assert {e.field for e in errors} == {"email", "smtp_port", "timezone"}


def test_duplicate_addresses_in_the_file_are_rejected_with_both_lines():
    _, errors = _parse(csv_text([row("a@x.example"), row("b@x.example"), row("A@X.example")]))
    assert [(e.line, e.field) for e in errors] == [(4, "email")]
    assert "already appears on line 2" in errors[0].message


def test_header_problems_stop_before_any_row():
    columns = [c for c in COLUMNS if c != "imap_password"] + ["dayly_limit"]
    _, errors = _parse(csv_text([row("a@x.example")], columns))
    assert {(e.line, e.field, e.message) for e in errors} == {
        (1, "imap_password", "required column is missing"),
        (1, "dayly_limit", "unknown column"),
    }


def test_ragged_rows_and_empty_files():
    text = csv_text([row("a@x.example")]) + "b@x.example,bob\r\n"
    rows, errors = _parse(text)
    assert [r.email for r in rows] == ["a@x.example"]
    assert errors == [RowError(3, "row", "has fewer fields than the header")]
    rows, errors = _parse(text.replace("b@x.example,bob", "b@x.example" + ",x" * len(COLUMNS)))
    assert errors == [RowError(3, "row", "has more fields than the header")]
    _, errors = _parse("")
    assert errors == [RowError(1, "header", "the file is empty or has no header row")]


def test_passwords_never_appear_in_repr():
    rows, _ = _parse(csv_text([row("a@x.example")]))
    assert "secret" not in repr(rows[0])


def test_display_name_is_optional_and_kept_as_given_with_whitespace_collapsed():
    text = csv_text(
        [
            row("a@x.example", display_name="  José   García "),
            row("b@x.example", display_name=""),
            row("c@x.example", display_name="Lee, Ann"),
        ]
    )
    rows, errors = _parse(text)
    assert errors == []
    assert [r.display_name for r in rows] == ["José García", None, "Lee, Ann"]
    columns = [c for c in COLUMNS if c != "display_name"]
    rows, errors = _parse(csv_text([row("a@x.example")], columns))
    assert errors == [] and rows[0].display_name is None


def test_an_oauth2_row_needs_a_provider_and_no_passwords():
    rows, errors = _parse(
        csv_text(
            [
                row("a@x.example", auth="OAuth2", oauth_provider="Google", smtp_password=""),
                row("b@x.example", auth="oauth2", oauth_provider="microsoft", imap_password="",
                    oauth_refresh_token="rt-" + "x" * 1500),
            ]
        )
    )  # fmt: skip
    assert errors == []
    google, microsoft = rows
    assert (google.oauth_provider, google.oauth_refresh_token) == ("google", None)
    assert google.smtp_password == ""
    assert microsoft.oauth_provider == "microsoft"
    assert microsoft.oauth_refresh_token == "rt-" + "x" * 1500  # long, as Microsoft's are
    assert "rt-" not in repr(microsoft)


def test_sign_in_errors_are_named_by_column():
    _, errors = _parse(
        csv_text(
            [
                row("a@x.example", auth="oauth2"),
                row("b@x.example", auth="oauth2", oauth_provider="yahoo"),
                row("c@x.example", auth="kerberos"),
                row("d@x.example", oauth_provider="google", oauth_refresh_token="rt"),
                row("e@x.example", smtp_password=""),  # password mailboxes still need them
            ]
        )
    )
    assert [str(e) for e in errors] == [
        "line 2, oauth_provider: is empty (auth oauth2 needs one of google, microsoft, generic)",
        "line 3, oauth_provider: 'yahoo' is not one of google, microsoft, generic",
        "line 4, auth: 'kerberos' is not password or oauth2",
        "line 5, oauth_provider: is only for auth oauth2 (auth is password)",
        "line 5, oauth_refresh_token: is only for auth oauth2 (auth is password)",
        "line 6, smtp_password: is empty",
    ]


# Hostile input: bytes, numbers, hosts and sizes a file should not get past.


def _parse_bytes(data: bytes) -> tuple[list[MailboxRow], list[RowError]]:
    rows, errors = [], []
    for parsed in read_rows(io.BytesIO(data)):
        (rows.append if isinstance(parsed, MailboxRow) else errors.extend)(parsed)
    return rows, errors


def test_utf8_bytes_are_read_with_or_without_a_byte_order_mark():
    data = csv_text([row("a@x.example", display_name="José García")]).encode()
    for given in (data, b"\xef\xbb\xbf" + data):
        rows, errors = _parse_bytes(given)
        assert errors == [] and rows[0].display_name == "José García"


def test_bytes_that_are_not_utf8_are_refused_with_line_column_and_offset():
    text = csv_text([row("a@x.example"), row("b@x.example", display_name="José García")])
    latin1 = text.encode("latin-1")  # é as the single byte 0xE9
    line_3 = latin1.split(b"\r\n")[2]
    offset = latin1.index(b"\xe9")
    column = line_3.index(b"\xe9") + 1

    rows, errors = _parse_bytes(latin1)

    assert [r.email for r in rows] == ["a@x.example"]
    [error] = errors
    assert (error.line, error.field) == (3, "display_name")  # the column the byte is in
    assert f"is not UTF-8 on line 3 at column {column} (byte offset {offset}:" in error.message
    # Column counts characters: the UTF-8 'ü' before the bad byte is one, not two.
    good = csv_text([row("a@x.example", display_name="Müller")]).encode()
    bad = good.replace("Müller".encode(), "Mü".encode() + b"\xff" + b"ller")
    line_2 = good.split(b"\r\n")[1].decode()
    _, errors = _parse_bytes(bad)
    assert errors[0].line == 2
    column, offset = line_2.index("Müller") + 3, bad.index(b"\xff")
    assert f"column {column} (byte offset {offset}" in errors[0].message
    rows, errors = _parse_bytes("email,user\r\n".encode("utf-16"))
    assert [(e.line, e.field) for e in errors] == [(1, "encoding")]


def test_a_header_with_no_rows_is_refused():
    header = csv_text([])
    for text in (header, header + "\r\n\r\n"):
        rows, errors = _parse(text)
        assert rows == []
        assert errors == [RowError(1, "file", "has a header row but no mailbox rows under it")]


@pytest.mark.parametrize("number", ["١٢", "1_000", "+5", " 5 ", "5.0", "²", "0x10", "-0"])
def test_integers_are_ascii_digits_only(number):
    rows, errors = _parse(csv_text([row("a@x.example", daily_limit=number)]))
    if number == " 5 ":  # surrounding spaces are stripped, as in every text field
        assert errors == [] and rows[0].daily_limit == 5
        return
    assert [(e.line, e.field) for e in errors] == [(2, "daily_limit")]
    assert "not a whole number (digits 0-9 only)" in errors[0].message


def test_international_domains_are_stored_as_idna_and_ip_hosts_are_checked():
    rows, errors = _parse(
        csv_text(
            [
                row("Ann@Bücher.example", smtp_host="SMTP.Bücher.example", imap_host="[::1]"),
                row("bob@пример.рф", smtp_host="10.0.0.7", imap_host="2001:DB8::1"),
                row("carl@xn--bcher-kva.example"),
            ]
        )
    )
    assert errors == []
    assert [(r.email, r.smtp_host, r.imap_host) for r in rows][:2] == [
        ("ann@xn--bcher-kva.example", "smtp.xn--bcher-kva.example", "::1"),
        ("bob@xn--e1afmkfd.xn--p1ai", "10.0.0.7", "2001:db8::1"),
    ]
    assert rows[0].domain == rows[2].domain == "xn--bcher-kva.example"
    # The same address written both ways is one mailbox: a duplicate.
    _, errors = _parse(csv_text([row("a@Bücher.example"), row("a@xn--bcher-kva.example")]))
    assert errors == [RowError(3, "email", "a@xn--bcher-kva.example already appears on line 2")]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("smtp_host", "999.1.1.1", "is not an IPv4 address"),
        ("smtp_host", "10.0.0", "is not an IPv4 address"),
        ("smtp_host", "010.0.0.1", "is not an IPv4 address"),
        ("imap_host", "fe80::zz", "is not an IPv6 address"),
        ("imap_host", "xn--zz.example", "is not a host name"),
        ("imap_host", "bad_host.example", "is not a host name"),
        ("email", "a@xn--zz.example", "is not an email address"),
        ("email", "a@b\u200d.example", "is not an email address"),
    ],
)
def test_bad_hosts_and_domains_are_refused(field, value, fragment):
    given = row(value) if field == "email" else row("a@x.example", **{field: value})
    _, errors = _parse(csv_text([given]))
    assert [(e.line, e.field) for e in errors] == [(2, field)] and fragment in errors[0].message


def test_a_huge_field_is_an_error_naming_the_line_its_record_starts_on():
    huge = "x" * (MAX_CSV_FIELD + 1)
    text = csv_text([row("a@x.example", display_name="Ann\nLee"), row("b@x.example")])
    text += csv_text([row("c@x.example", display_name="line\n" + huge)]).split("\r\n", 1)[1]
    rows, errors = _parse(text)
    assert [r.email for r in rows] == ["b@x.example"]
    assert [(e.line, e.field) for e in errors] == [(2, "display_name"), (5, "display_name")]
    assert errors[-1].message == "is longer than 65,536 characters; not read on"
    # A field of exactly the limit is read.
    rows, errors = _parse(csv_text([row("a@x.example", plan="p" * MAX_CSV_FIELD)]))
    assert [(e.line, e.field) for e in errors] == [(2, "plan")]
    assert errors[0].message == "is longer than 320 characters"


@pytest.mark.parametrize("column", [*COLUMNS, "(past the last)"])
def test_a_huge_field_in_any_column_is_named_by_its_column(column):
    """The csv module only says that a field was too long; the error names which, quoted or
    not, with quotes and commas inside, after a multi-line field of the same record."""
    huge = 'a "quoted", value ' * (MAX_CSV_FIELD // 10)
    first = row("a@x.example", display_name="Ann\r\nLee", user='o"brien, jr')
    if column == "(past the last)":
        quoted = '"' + huge.replace('"', '""') + '"'
        line = csv_text([first]).split("\r\n", 1)[1].removesuffix("\r\n") + f",{quoted}\r\n"
        text = csv_text([row("z@x.example")]) + line
    else:
        text = csv_text([row("z@x.example"), {**first, column: huge}])
    rows, errors = _parse(text)
    assert [r.email for r in rows] == ["z@x.example"]
    [error] = errors
    if column == "(past the last)":
        assert (error.line, error.field) == (3, "row")
        assert "a field after the last column longer than 65,536 characters" in error.message
    else:
        assert (error.line, error.field) == (3, column)
        assert error.message == "is longer than 65,536 characters; not read on"


def test_a_line_or_a_record_over_its_limit_is_refused_and_not_read_into_memory():
    # One physical line over MAX_LINE_BYTES, after blank lines: not read whole, named by the
    # line its record starts on and the column the long field is in.
    data = csv_text([row("a@x.example")]).encode() + b"\r\n\r\n" + b"x" * (2 << 20)
    rows, errors = _parse_bytes(data)
    assert [r.email for r in rows] == ["a@x.example"]
    assert [(e.line, e.field) for e in errors] == [(5, "email")]
    assert errors[0].message == (
        "is longer than 65,536 characters; line 5 is longer than 1,024 KiB; not read on"
    )
    # The long line inside a quoted field that began two lines earlier, in column smtp_host.
    columns = ["email", "user", "smtp_host", *[c for c in COLUMNS if c not in ("email", "user",
               "smtp_host")]]  # fmt: skip
    start = csv_text([row("a@x.example")], columns).encode() + b'b@x.example,bob,"one\ntwo\n'
    rows, errors = _parse_bytes(start + "é".encode() * (MAX_LINE_BYTES // 2 + 1))
    assert [(e.line, e.field) for e in errors] == [(3, "smtp_host")]
    assert "line 5 is longer than 1,024 KiB" in errors[0].message
    # A line of commas: no field is long, the line is.
    rows, errors = _parse_bytes(start.split(b"b@x")[0] + b"," * (2 << 20))
    assert [(e.line, e.field) for e in errors] == [(3, "row")]
    assert errors[0].message == "line 3 is longer than 1,024 KiB; not read on"
    # A record whose lines are each short but together over MAX_RECORD_BYTES.
    field = '"' + ("y" * 1000 + "\n") * 60 + '"'  # 60 KiB, under the field limit
    record = ",".join([field] * len(COLUMNS)) + "\r\n"
    rows, errors = _parse(csv_text([row("a@x.example")]) + record + csv_text([row("c@x.example")]))
    assert [r.email for r in rows] == ["a@x.example"]  # not read on past it
    [error] = errors
    assert (error.line, error.field) == (3, "row")
    assert error.message.startswith("is longer than 1,024 KiB (lines 3-")


def test_a_bad_record_after_blank_lines_and_across_lines_is_named_by_its_first_line():
    text = csv_text([row("a@x.example")]) + '\r\n\r\nb@x.example,"open\r\nstill open\r\n"x,y\r\n'
    _, errors = _parse(text)
    assert errors == [RowError(5, "row", "has fewer fields than the header")]


def test_passwords_are_kept_exactly_as_given():
    rows, errors = _parse(
        csv_text([row("a@x.example", smtp_password="  pa ss  ", imap_password=" ")])
    )
    assert errors == []
    assert (rows[0].smtp_password, rows[0].imap_password) == ("  pa ss  ", " ")


# A value for every column that parses, and the row it goes in (the OAuth2 columns need
# auth oauth2).
_GOOD = {
    **row("a@x.example"),
    "display_name": "Ann Lee",
    "plan": "default",
    "weekdays_only": "true",
}
_GOOD_OAUTH = {**_GOOD, "auth": "oauth2", "oauth_provider": "google", "oauth_refresh_token": "rt"}
_OAUTH_COLUMNS = ("auth", "oauth_provider", "oauth_refresh_token")
_MESSAGES = ("contains control characters", "contains a line break", "contains a NUL character")


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("char", ["\r", "\n", "\r\n", "\0"], ids=["CR", "LF", "CRLF", "NUL"])
def test_cr_lf_and_nul_are_refused_in_every_column_wherever_they_are(column, char):
    """At the start, in the middle and at the end of the value: never stripped as if it were
    whitespace, always an error naming the row and that column (and no other)."""
    base = _GOOD_OAUTH if column in _OAUTH_COLUMNS else _GOOD
    rows, errors = _parse(csv_text([base]))
    assert errors == [] and len(rows) == 1  # the row is good without the character
    value = str(base[column])
    middle = len(value) // 2
    for hostile in (char + value, value[:middle] + char + value[middle:], value + char):
        rows, errors = _parse(csv_text([row("z@z.example"), {**base, column: hostile}]))
        assert [r.email for r in rows] == ["z@z.example"]
        assert {(e.line, e.field) for e in errors} == {(3, column)}, hostile
        assert any(e.message in _MESSAGES for e in errors)
