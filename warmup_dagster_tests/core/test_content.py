"""New mail's words and Message-IDs (the time words' properties: test_moments.py)."""

import random
import re
import string
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest

from warmup_dagster.core.content import compose, is_warmup_message_id, job_message_id, token_key

KEY = token_key("a-deployment-secret-of-some-length")
SENDER = "alice.smith@acme.test"
RECIPIENT = "bob42@example.org"
ALLOWED = set(string.printable) - set("\t\r\x0b\x0c")
SPAMMY = ("free", "winner", "urgent", "$", "!!!")
# A Tuesday morning in Berlin; `batch` spreads its jobs over a week of local times from here.
LOCAL = datetime(2026, 3, 3, 8, 28, tzinfo=ZoneInfo("Europe/Berlin"))


class Made(NamedTuple):
    """What the sender makes of one job: its words and its Message-ID."""

    subject: str
    body: str
    message_id: str
    token: str


def make(
    job_id: int,
    seed: int,
    sender: str = SENDER,
    sender_name: str | None = None,
    local_time: datetime = LOCAL,
) -> Made:
    subject, body = compose(seed, sender, RECIPIENT, local_time, sender_name)
    message_id, token = job_message_id(KEY, job_id, seed, sender.rpartition("@")[2])
    return Made(subject, body, message_id, token)


def batch(seed: int = 7, n: int = 1000) -> list[Made]:
    """`n` jobs with random content seeds, as planning draws them."""
    rng = random.Random(seed)
    return [
        make(
            job_id, rng.getrandbits(63), local_time=LOCAL + timedelta(minutes=rng.randrange(10080))
        )
        for job_id in range(n)
    ]


def longest_common_substring(texts: list[str]) -> str:
    shortest = min(texts, key=len)
    for length in range(len(shortest), 0, -1):
        for start in range(len(shortest) - length + 1):
            candidate = shortest[start : start + length]
            if all(candidate in t for t in texts):
                return candidate
    return ""


def sentences(paragraph: str) -> int:
    return len(re.findall(r"[.?!](?:\s|$)", paragraph))


def test_same_seed_gives_same_content():
    assert batch(seed=3, n=50) == batch(seed=3, n=50)
    assert batch(seed=3, n=50) != batch(seed=4, n=50)


def test_variety_on_1000_messages():
    contents = batch()
    assert len({c.subject for c in contents}) >= 900
    assert len({c.body for c in contents}) >= 990


def test_subjects_are_short_and_plain():
    for c in batch():
        words = c.subject.split()
        assert 2 <= len(words) <= 8, c.subject
        assert not any(len(w) > 1 and w.isalpha() and w.isupper() for w in words), c.subject
        assert not any(s in c.subject.lower() for s in SPAMMY), c.subject


def test_bodies_have_no_links_addresses_or_markup():
    for c in batch():
        lowered = c.body.lower()
        for bad in ("http", "www", "<a", "src=", "@", "<", ">", "free", "$", "!!!"):
            assert bad not in lowered, (bad, c.body)


def test_only_printable_ascii_even_for_unicode_names():
    contents = [make(seed, seed, "jose@acme.test", "Jos\u00e9\t\u2603") for seed in range(50)]
    contents += batch(n=200)
    for c in contents:
        assert set(c.subject) <= ALLOWED - {"\n"}, c.subject
        assert set(c.body) <= ALLOWED, c.body
    assert contents[0].body.endswith("\nJose")


def test_body_shape_greeting_paragraphs_sign_off_and_name():
    for c in batch(n=300):
        blocks = c.body.split("\n\n")
        greeting, paragraphs, sign_off = blocks[0], blocks[1:-1], blocks[-1]
        assert greeting.endswith((",", "!")) and "\n" not in greeting
        assert 1 <= len(paragraphs) <= 3, c.body
        assert 2 <= sum(sentences(p) for p in paragraphs) <= 6, c.body
        assert sign_off.splitlines()[0].endswith(",")
        assert sign_off.splitlines()[1] in ("Alice", "Alice Smith")


def test_recipient_name_in_some_greetings_but_not_all():
    greetings = [c.body.split("\n", 1)[0] for c in batch(n=200)]
    named = sum("Bob" in g for g in greetings)
    assert 0 < named < len(greetings)


@pytest.mark.parametrize(
    ("email", "names"),
    [
        ("alice.smith@acme.test", {"Alice", "Alice Smith"}),
        ("bob42@acme.test", {"Bob"}),
        ("carol_jones+warm@acme.test", {"Carol", "Carol Jones"}),
        ("info@acme.test", {"The Acme team"}),
        ("x1@42.test", {"The team"}),
    ],
)
def test_default_sender_name(email: str, names: set[str]):
    signed = {compose(seed, email, RECIPIENT, LOCAL)[1].splitlines()[-1] for seed in range(40)}
    assert signed == names


def test_a_given_display_name_signs_with_its_first_name_mostly():
    signed = [
        compose(seed, SENDER, RECIPIENT, LOCAL, "Zoë Müller-Lüdenscheidt")[1].splitlines()[-1]
        for seed in range(200)
    ]
    assert set(signed) == {"Zoe", "Zoe Muller-Ludenscheidt"}
    assert signed.count("Zoe") > signed.count("Zoe Muller-Ludenscheidt") > 0
    # A name ASCII keeps nothing of signs with the one derived from the address.
    assert compose(0, SENDER, RECIPIENT, LOCAL, "张伟")[1].splitlines()[-1] in (
        "Alice",
        "Alice Smith",
    )


def test_message_ids_on_sender_domain_and_unique():
    rng = random.Random(11)
    ids = [
        make(job_id, rng.getrandbits(63), "Ann@Mail.Acme.Test").message_id
        for job_id in range(10_000)
    ]
    assert len(set(ids)) == len(ids)
    for message_id in ids[:100]:
        assert re.fullmatch(r"<[0-9a-f]{14,18}\.[0-9a-f]{10}@mail\.acme\.test>", message_id)


def test_content_token_is_the_message_id_mac():
    for c in batch(n=100):
        assert len(c.token) == 10
        assert c.message_id.endswith(f".{c.token}@acme.test>")
        assert is_warmup_message_id(KEY, c.message_id)


def test_is_warmup_message_id_accepts_ours_in_lenient_forms():
    message_id, _ = job_message_id(KEY, 5, 5, "acme.test")
    bare = message_id.strip("<>")
    assert is_warmup_message_id(KEY, message_id)
    assert is_warmup_message_id(KEY, f"  {message_id}\n")
    assert is_warmup_message_id(KEY, bare)
    assert is_warmup_message_id(KEY, message_id.replace("acme.test", "ACME.Test"))


def test_is_warmup_message_id_rejects_tampering_other_keys_and_ordinary_ids():
    message_id, token = job_message_id(KEY, 5, 5, "acme.test")
    nonce = message_id[1:].split(".", 1)[0]
    flip = {"a": "b"}
    tampered_nonce = message_id.replace(nonce, nonce[:-1] + flip.get(nonce[-1], "a"), 1)
    tampered_mac = message_id.replace(token, token[:-1] + flip.get(token[-1], "a"))
    assert not is_warmup_message_id(KEY, tampered_nonce)
    assert not is_warmup_message_id(KEY, tampered_mac)
    assert not is_warmup_message_id(KEY, message_id.replace("acme.test", "acme.example"))
    assert not is_warmup_message_id(token_key("another-secret-entirely"), message_id)
    for ordinary in (
        "<CAF=abc123@mail.gmail.com>",
        "<20260302.1234567890.abcdefghij@example.com>",
        "<abc.def@x>",
        "",
        "<>",
        "no-at-sign",
        "<.abcdefghij@acme.test>",
        "<n\u00f6nce.abcdefghij@acme.test>",
    ):
        assert not is_warmup_message_id(KEY, ordinary), ordinary


def test_no_constant_marker_in_subjects_or_message_ids():
    contents = batch()
    assert len(longest_common_substring([c.subject for c in contents])) < 4
    local_parts = [c.message_id[1:].split("@")[0] for c in contents]
    # Only the nonce/mac separator is shared.
    assert longest_common_substring(local_parts) == "."


def test_token_key_is_derived_and_rejects_empty_secret():
    assert token_key("s") != token_key("t")
    assert len(token_key("s")) == 32
    with pytest.raises(ValueError):
        token_key("")


def test_bad_sender_address_is_rejected():
    with pytest.raises(ValueError, match="not an email address: 'not-an-address'"):
        compose(0, "not-an-address", RECIPIENT, LOCAL)


def test_a_naive_local_time_is_refused():
    with pytest.raises(ValueError, match="naive datetime"):
        compose(0, SENDER, RECIPIENT, datetime(2026, 3, 3, 8, 28))


def test_job_message_id_is_the_jobs_own_the_same_at_every_attempt():
    first = job_message_id(KEY, 41, 7, "Acme.test")
    assert job_message_id(KEY, 41, 7, "acme.test") == first
    message_id, token = first
    assert re.fullmatch(r"<[0-9a-f]{14,18}\.[0-9a-f]{10}@acme\.test>", message_id)
    assert message_id.endswith(f".{token}@acme.test>")
    assert is_warmup_message_id(KEY, message_id)
    assert not is_warmup_message_id(token_key("another-secret-entirely"), message_id)
    ids = {job_message_id(KEY, job, seed, "acme.test")[0] for job in range(500) for seed in (1, 2)}
    assert len(ids) == 1000  # another job or another seed: another id
    lengths = {len(m.split(".")[0]) - 1 for m in ids}
    assert lengths == {14, 15, 16, 17, 18}
