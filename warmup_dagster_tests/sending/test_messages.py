"""The email built from an `Outgoing`: the planned headers, a UTF-8 plain-text body."""

import email.header
import email.message
import email.parser
import email.policy
import email.utils
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmup_dagster.core.content import compose, compose_reply
from warmup_dagster.core.names import clean_display_name, display_name_problem
from warmup_dagster.sending.messages import Outgoing, build_message

DATE = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def outgoing(job_id: int, **fields: str | None) -> Outgoing:
    values = {
        "sender": "sender@warmup.test",
        "recipient": "ok@inbox.test",
        "message_id": f"<job{job_id}.a1b2c3@warmup.test>",
        "subject": f"Quarterly notes {job_id}",
        "body": f"Hello number {job_id},\nthanks for the notes. Grüße\n",
    }
    return Outgoing(job_id=job_id, **{**values, **fields})


def test_build_message_has_the_planned_headers_and_nothing_else() -> None:
    message = outgoing(1, in_reply_to="<a@warmup.test>", references="<z@warmup.test>")

    built = build_message(message, DATE)

    assert sorted(built.keys()) == sorted(
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "In-Reply-To",
            "References",
            "Content-Type",
            "Content-Transfer-Encoding",
            "MIME-Version",
        ]
    )
    assert built["Date"] == "Mon, 02 Mar 2026 06:00:00 +0000"
    assert built["Message-ID"] == message.message_id
    assert built.get_content_type() == "text/plain"
    assert built.get_content_charset() == "utf-8"
    assert built.get_content() == message.body
    assert "In-Reply-To" not in build_message(outgoing(2), DATE)


def test_build_message_refuses_a_naive_date_and_a_header_with_a_line_break() -> None:
    with pytest.raises(ValueError, match="timezone"):
        build_message(outgoing(1), datetime(2026, 3, 2, 6, 0))
    with pytest.raises(ValueError):
        build_message(outgoing(1, subject="Notes\nBcc: everyone@example.com"), DATE)


def _wire(message: Outgoing) -> email.message.EmailMessage:
    """The message as aiosmtplib puts it on the wire (policy SMTP, no SMTPUTF8), parsed back."""
    raw = build_message(message, DATE).as_bytes(policy=email.policy.SMTP)
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and all(len(line) <= 998 for line in head.split(b"\r\n"))
    return parsed


def _from_as_a_reader_decodes_it(message: Outgoing) -> tuple[str, str]:
    """(name, address) of From as RFC 5322 and RFC 2047 say: the address and the phrase are
    told apart on the wire form, then the phrase's encoded words are decoded, whitespace
    between adjacent encoded words dropped. (Python's own parser puts a space between two
    encoded words of a long name folded across lines, which the RFC says to ignore.)"""
    raw = build_message(message, DATE).as_bytes(policy=email.policy.SMTP)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    value = re.search(r"^From:(.*?)\r\n(?![ \t])", head + "\r\n", re.S | re.M).group(1)
    phrase, address = email.utils.parseaddr(re.sub(r"\r\n(?=[ \t])", "", value).strip())
    decoded = str(email.header.make_header(email.header.decode_header(phrase)))
    return decoded, address


def test_from_carries_the_display_name_encoded_where_it_is_not_ascii() -> None:
    plain = build_message(outgoing(1, sender_name="Ann Lee"), DATE)
    assert plain["From"] == "Ann Lee <sender@warmup.test>"
    assert build_message(outgoing(1, sender_name="Lee, Ann"), DATE)["From"] == (
        '"Lee, Ann" <sender@warmup.test>'
    )
    raw = build_message(outgoing(1, sender_name="José García"), DATE).as_bytes(
        policy=email.policy.SMTP
    )
    assert b"From: =?utf-8?b?Sm9zw6kgR2FyY8OtYQ==?= <sender@warmup.test>" in raw
    # A name long enough to fold keeps the space where it folds (the email package's own
    # folding dropped it).
    greek = outgoing(1, sender_name="Ελευθέριος Παπαδόπουλος Καραμανλής")
    assert _from_as_a_reader_decodes_it(greek) == (greek.sender_name, "sender@warmup.test")
    assert build_message(outgoing(1), DATE)["From"] == "sender@warmup.test"


def test_a_display_name_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        build_message(outgoing(1, sender_name="Ann\r\nBcc: everyone@example.com"), DATE)


names = st.text(min_size=1, max_size=200).filter(lambda n: display_name_problem(n) is None)
names = names.map(clean_display_name).filter(bool)
locals_ = st.from_regex(r"[a-z0-9]{1,20}(\.[a-z0-9]{1,10}){0,2}", fullmatch=True)
domains = st.from_regex(r"[a-z]{1,12}(-[a-z]{1,8})?\.(test|example|org)", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(name=names, local=locals_, domain=domains)
def test_from_parses_back_to_the_same_address_and_name(name: str, local: str, domain: str):
    sender = f"{local}@{domain}"
    message = outgoing(1, sender=sender, sender_name=name)
    [address] = _wire(message)["From"].addresses
    assert address.addr_spec == sender
    assert _from_as_a_reader_decodes_it(message) == (name, sender)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**63 - 1),
    local_time=st.datetimes(timezones=st.timezones()),
    original_subject=st.text(max_size=200),
    name=names,
)
def test_composed_headers_never_carry_a_line_break(
    seed: int, local_time: datetime, original_subject: str, name: str
):
    subject, body = compose(seed, "ann.lee@warmup.test", "bob@inbox.test", local_time, name)
    reply, _ = compose_reply(
        seed, original_subject, body, "bob@inbox.test", "ann.lee@warmup.test", local_time
    )
    for text in (subject, reply):
        parsed = _wire(outgoing(1, subject=text, sender_name=name))
        for header, value in parsed.items():
            assert "\r" not in value and "\n" not in value, (header, value)
        assert " ".join(str(parsed["Subject"]).split()) == " ".join(text.split())
