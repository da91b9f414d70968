"""The email built from an `Outgoing`: the planned headers, a UTF-8 plain-text body."""

import base64
import email.header
import email.message
import email.parser
import email.policy
import email.quoprimime
import email.utils
import re
import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from warmup_dagster.core.content import compose, compose_reply
from warmup_dagster.core.names import clean_display_name, display_name_problem
from warmup_dagster.sending.messages import Outgoing, UnsafeHeaderError, build_message

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


def _subject_as_a_reader_decodes_it(message: Outgoing) -> str:
    """Subject as RFC 2047 says to read it: unfolded, encoded words decoded, whitespace
    between adjacent encoded words dropped."""
    raw = build_message(message, DATE).as_bytes(policy=email.policy.SMTP)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    value = re.search(r"^Subject:(.*?)\r\n(?![ \t])", head + "\r\n", re.S | re.M).group(1)
    unfolded = re.sub(r"\r\n(?=[ \t])", "", value).strip()
    return str(email.header.make_header(email.header.decode_header(unfolded)))


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Σημειώσεις του τριμήνου και τα επόμενα βήματα για την ομάδα πωλήσεων",  # noqa: RUF001
        "Re: 00000000 000¡¡¡¡¡¡𐀀𐀀𐀀𐀀 ¡",
        "Grüße aus München: die Zahlen für März, April und Mai liegen jetzt vor",
        "Quarterly notes, the long version that the email package folds across lines",
    ],
)
def test_a_subject_arrives_with_every_space(subject: str) -> None:
    message = outgoing(1, subject=subject)
    assert _subject_as_a_reader_decodes_it(message) == subject
    _wire(message)  # its head is ASCII, no line over 998


subject_words = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=15,
)


@settings(max_examples=300, deadline=None)
@given(words=st.lists(subject_words, min_size=1, max_size=12), reply=st.booleans())
def test_a_subject_parses_back_to_itself(words: list[str], reply: bool) -> None:
    subject = ("Re: " if reply else "") + " ".join(words)
    # Text that looks like an encoded word is refused or decoded on purpose (tests above).
    assume("=?" not in subject)
    assert _subject_as_a_reader_decodes_it(outgoing(1, subject=subject)) == subject


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


# Hostile header values: imported CSVs and received mail reach every one of these fields.
HEADER_FIELDS = {
    "sender": "From",
    "sender_name": "From display name",
    "recipient": "To",
    "subject": "Subject",
    "message_id": "Message-ID",
    "in_reply_to": "In-Reply-To",
    "references": "References",
}
GOOD = {
    "sender": "sender@warmup.test",
    "sender_name": "Ann Lee",
    "recipient": "ok@inbox.test",
    "subject": "Quarterly notes",
    "message_id": "<job1.a1b2c3@warmup.test>",
    "in_reply_to": "<a@warmup.test>",
    "references": "<z@warmup.test> <a@warmup.test>",
}


@pytest.mark.parametrize("field", sorted(HEADER_FIELDS))
@pytest.mark.parametrize(
    "hostile",
    [
        "\r\nBcc: everyone@example.com",  # at the end: the email package let this through
        "\n",
        "\r",
        "\x00",
        "\x1b[2J",
        "\x85Bcc: everyone@example.com",  # NEL, a line break to str.splitlines
        "\u2028Bcc: everyone@example.com",
        " =?utf-8?q?x=0D=0ABcc:_everyone@example.com?=",
        " =?UTF-8?B?eA0KQmNjOiBldmVyeW9uZUBleGFtcGxlLmNvbQ==?=",
        " =?utf-8*en?Q?a=1B[31m?=",  # RFC 2231 language tag, ESC
        " =?x-unknown?q?a=0Ab?=",  # a charset Python lacks: its bytes are judged
        " =?utf-8?b?not*base64?=",
    ],
)
def test_a_hostile_header_value_is_refused_naming_the_header(field: str, hostile: str) -> None:
    message = Outgoing(job_id=1, body="body", **{**GOOD, field: GOOD[field] + hostile})

    with pytest.raises(UnsafeHeaderError, match=re.escape(HEADER_FIELDS[field])) as refused:
        build_message(message, DATE)
    assert refused.value.header == HEADER_FIELDS[field]


def test_harmless_encoded_words_and_tabs_are_kept() -> None:
    # UTF-8 whose continuation bytes are 0x80-0x9F (C1 controls if misread as Latin-1).
    subject = str(email.header.Header("Ā Grüße", "utf-8").encode()) + "\tand =?bogus"
    built = build_message(Outgoing(job_id=1, body="body", **{**GOOD, "subject": subject}), DATE)
    assert str(built["Subject"]) == "Ā Grüße\tand =?bogus"


def _decoded(value: str) -> str:
    return str(email.header.make_header(email.header.decode_header(value)))


header_text = st.text(
    st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Z", "Cc"]), max_size=60
)


def _encoded_word(text: str, charset: str, encoding: str) -> str:
    """`text` as one RFC 2047 encoded word, written here (email.header.Header drops a lone
    CR and folds long text)."""
    raw = text.encode(charset, errors="replace")
    if encoding == "b":
        return f"=?{charset}?b?{base64.b64encode(raw).decode()}?="
    return email.quoprimime.header_encode(raw, charset)


encoded_text = st.builds(
    _encoded_word, header_text, st.sampled_from(["utf-8", "iso-8859-1"]), st.sampled_from("bq")
)
hostile_values = st.one_of(
    header_text, encoded_text, st.lists(header_text | encoded_text).map(" ".join)
)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(HEADER_FIELDS)), value=hostile_values)
def test_what_is_accepted_never_decodes_to_a_control_or_an_extra_header(
    field: str, value: str
) -> None:
    """Any value, raw or as encoded words: refused, or sent with no header added and nothing
    in any header that decodes (as a reader decodes it) to a control character but a tab."""
    message = Outgoing(job_id=1, body="body", **{**GOOD, field: value})
    try:
        raw = build_message(message, DATE).as_bytes(policy=email.policy.SMTP)
    except ValueError:
        return
    parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
    planned = set(build_message(outgoing(1, **GOOD), DATE).keys())
    planned -= {"In-Reply-To"} if not message.in_reply_to else set()
    planned -= {"References"} if not message.references else set()
    assert sorted(parsed.keys()) == sorted(planned)
    for header, folded in parsed.items():
        decoded = _decoded(re.sub(r"\r?\n[ \t]", " ", folded))
        assert not [c for c in decoded if c != "\t" and unicodedata.category(c) == "Cc"], header


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(sorted(HEADER_FIELDS)),
    text=header_text,
    control=st.sampled_from("\r\n\x00\x07\x1b\x7f\x85\u2028"),
    at=st.integers(0, 60),
    encoded=st.booleans(),
    encoding=st.sampled_from("bq"),
)
def test_a_control_anywhere_is_refused_raw_or_encoded(
    field: str, text: str, control: str, at: int, encoded: bool, encoding: str
) -> None:
    value = text[:at] + control + text[at:]
    if encoded:
        value = _encoded_word(value, "utf-8", encoding)
    message = Outgoing(job_id=1, body="body", **{**GOOD, field: GOOD[field] + " " + value})
    with pytest.raises(UnsafeHeaderError) as refused:
        build_message(message, DATE)
    assert refused.value.header == HEADER_FIELDS[field]
