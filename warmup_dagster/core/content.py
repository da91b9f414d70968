"""Warmup email content: a job's subject and body, and its self-identifying Message-ID.

Pure functions of the job: `compose` turns a job's content seed and its sender's local time
into the same words every time (from the phrase banks in `warmup_dagster.core.phrases`, the
time words fitting that local time, see `warmup_dagster.core.moments`), `compose_reply` answers
a message the same way, and `job_message_id` turns the job into the same Message-ID at every
attempt. Warmup mail is recognised by its Message-ID alone:
`<{nonce}.{mac}@{domain}>` where `mac` is a truncated HMAC of nonce and domain. Every id looks
like an ordinary random id, so there is no constant header or subject marker a spam filter
could cluster on, and only holders of the key can tell the mail is ours.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import datetime

from warmup_dagster.core import phrases
from warmup_dagster.core.moments import Bank, Moment, Picker
from warmup_dagster.core.names import (
    derived_display_name,
    display_name,
    first_name,
    fold_ascii,
    sign_off_name,
)
from warmup_dagster.core.threads import (
    Original,
    attribution,
    days_still_ahead,
    greeting_name,
    quoted,
    reply_subject,
)

TOKEN_LABEL = b"warmup-dagster message token"
TOKEN_LENGTH = 10


def token_key(secret: str) -> bytes:
    """Derive the token HMAC key from the deployment secret (`WARMUP_SECRET_KEY`).

    Args:
        secret: The deployment secret.

    Returns:
        HMAC-SHA256(secret, TOKEN_LABEL), so the token key differs from other derived keys.
    """
    if not secret:
        raise ValueError("the secret must not be empty")
    return hmac.new(secret.encode(), TOKEN_LABEL, hashlib.sha256).digest()


def _mac(key: bytes, nonce: str, domain: str) -> str:
    return hmac.digest(key, f"{nonce}|{domain.lower()}".encode(), "sha256").hex()[:TOKEN_LENGTH]


def job_message_id(key: bytes, job_id: int, seed: int, domain: str) -> tuple[str, str]:
    """The Message-ID of a planned job, derived from the job instead of drawn.

    Planning stores no ids (a million a day); the sender derives one at each attempt, the same
    every time, so a retry repeats it and the receiving side can thread on it. The nonce comes
    from an HMAC of the job's id and random content seed: unique per job, and unguessable
    without the key, like a drawn one.

    Args:
        key: Token key from `token_key`.
        job_id: The job's id.
        seed: The job's `content_seed`.
        domain: The sending mailbox's domain.

    Returns:
        `(message_id, token)`: `"<{nonce}.{token}@{domain}>"` and the 10-character MAC.
    """
    digest = hmac.digest(key, f"message-id|{job_id}|{seed}".encode(), "sha256")
    return _message_id(int.from_bytes(digest[:11], "big"), key, domain)


def _message_id(bits: int, key: bytes, domain: str) -> tuple[str, str]:
    """The id made from 88 random bits: the low 16 pick a length of 14-18 hex digits (so ids
    don't all have one length), the high 72 the digits."""
    domain = domain.strip().lower()
    digits = 14 + ((bits & 0xFFFF) * 5 >> 16)
    nonce = f"{bits >> (88 - 4 * digits):0{digits}x}"
    token = _mac(key, nonce, domain)
    return f"<{nonce}.{token}@{domain}>", token


def is_warmup_message_id(key: bytes, message_id: str) -> bool:
    """Tell whether a Message-ID was made by `job_message_id` with this key.

    Args:
        key: Token key from `token_key`.
        message_id: A Message-ID header value; surrounding whitespace and missing angle
            brackets are tolerated, and the domain is compared case-insensitively.

    Returns:
        True iff the id's MAC verifies for its nonce and domain.
    """
    value = message_id.strip().removeprefix("<").removesuffix(">").strip()
    local, at, domain = value.rpartition("@")
    nonce, dot, mac = local.rpartition(".")
    if not (at and dot and nonce and domain) or len(mac) != TOKEN_LENGTH or not value.isascii():
        return False
    return hmac.compare_digest(mac.lower(), _mac(key, nonce, domain))


_OPENERS = Bank(phrases.OPENERS)
_TOPIC_LINES = Bank(phrases.TOPIC_LINES)
_DETAILS = Bank(phrases.DETAILS)
_CLOSINGS = Bank(phrases.CLOSINGS)
GREETINGS_NAMED = Bank(phrases.GREETINGS_NAMED)
GREETINGS_PLAIN = Bank(phrases.GREETINGS_PLAIN)
SIGN_OFFS = Bank(phrases.SIGN_OFFS)
WHEN = Bank(phrases.WHEN)
_REPLY_WHEN = Bank(phrases.REPLY_WHEN)
_REPLY_OPENERS = Bank(phrases.REPLY_OPENERS)
_REPLY_NEXT = Bank(phrases.REPLY_NEXT)
_REPLY_CLOSINGS = Bank(phrases.REPLY_CLOSINGS)
# How often a message is signed with the whole display name rather than its first word.
FULL_NAME_SIGNATURES = 0.25


def greeting(pick: Picker, name: str | None) -> str:
    """A greeting for the moment, with the recipient's first name in most of them.

    Args:
        pick: The message's picker.
        name: The recipient's first name, if known.

    Returns:
        "Good morning Bob," in the morning, "Hi," at any time, ...
    """
    if name and pick.chance(0.6):
        return pick.pick(GREETINGS_NAMED, n=name)[0]
    return pick.pick(GREETINGS_PLAIN)[0]


def signature(pick: Picker, email: str, name: str | None) -> str:
    """The sign-off line and the name under it.

    Args:
        pick: The message's picker.
        email: The sender's address.
        name: The sender's display name as stored (None: derived from the address).

    Returns:
        "Best,\nAlice" and the like.
    """
    sign_off = pick.pick(SIGN_OFFS)[0]
    full = pick.chance(FULL_NAME_SIGNATURES)
    return f"{sign_off}\n{sign_off_name(email, display_name(email, name), full)}"


def _subject(pick: Picker, topic: str) -> str:
    subject = pick.rng.choice(phrases.SUBJECTS).format(t=topic)
    if pick.chance(0.5):
        subject = f"{subject} {pick.pick(WHEN)[0]}"
    # Some people never capitalise their subjects.
    return subject if pick.chance(0.15) else subject[0].upper() + subject[1:]


def _paragraphs(pick: Picker, topic: str) -> list[str]:
    """2-6 sentences in 1-3 paragraphs: opener and topic, details, closing."""
    lead = pick.pick(_OPENERS) if pick.chance(0.7) else []
    lead += pick.pick(_TOPIC_LINES, 2 if pick.chance(0.25) else 1, t=topic)
    closing = pick.pick(_CLOSINGS) if pick.chance(0.8) else []
    n_details = pick.rng.choice((0, 1, 1, 2))
    n_details = max(n_details, 2 - len(lead) - len(closing))
    groups = [lead, pick.pick(_DETAILS, n_details), closing]
    groups = [g for g in groups if g]
    # Merge neighbouring groups now and then so paragraph counts vary too.
    for i in range(len(groups) - 1, 0, -1):
        if pick.chance(0.35):
            groups[i - 1] = groups[i - 1] + groups.pop(i)
    return [" ".join(g) for g in groups]


def compose(
    seed: int,
    sender_email: str,
    recipient_email: str,
    local_time: datetime,
    sender_name: str | None = None,
) -> tuple[str, str]:
    """The subject and plain-text body of a new warmup message, for its moment of sending.

    Planning stores only the content seed; the sender composes the text when it sends, with
    its own local time then: the greeting fits the hour ("Good morning" before noon, none
    naming the time at night), a weekday named is today ("I hope your Tuesday ...") or a day
    ahead of it ("by Thursday"), and "this week", "this weekend", "this month" fit the date.
    The same seed and local time give the same words; at another time (a retry) only the
    time-bound phrases may change.

    Args:
        seed: The job's content seed.
        sender_email: The sending mailbox; its name signs the message.
        recipient_email: The receiving mailbox; its first name is used in some greetings.
        local_time: The sender's local time at sending, timezone-aware (the clock's now in
            the sending mailbox's timezone).
        sender_name: The sender's display name (the mailbox's `display_name`); by default
            derived from the address. Most messages are signed with its first word.

    Returns:
        `(subject, body)`, printable ASCII (accents folded).

    Raises:
        ValueError: `local_time` is naive, or `sender_email` is not an address.
    """
    pick = Picker(random.Random(seed), Moment.at(local_time))
    topic = pick.rng.choice(phrases.TOPICS)
    subject = _subject(pick, topic)
    parts = [greeting(pick, first_name(recipient_email)), *_paragraphs(pick, topic)]
    parts.append(signature(pick, sender_email, sender_name))
    return fold_ascii(subject), fold_ascii("\n\n".join(parts))


def reply_message_id(key: bytes, parent_message_id: str, domain: str) -> tuple[str, str]:
    """The Message-ID of the reply to `parent_message_id`, derived instead of drawn.

    One message gets one reply: an engagement pass that is retried after a failure derives
    the same id again, and the queue's unique Message-ID refuses the second reply. The id is a
    warmup id like a planned job's (`is_warmup_message_id` recognises it), so the other side
    finds and engages the reply too.

    Args:
        key: Token key from `token_key`.
        parent_message_id: The Message-ID being answered.
        domain: The replying mailbox's domain.

    Returns:
        `(message_id, token)`, as `job_message_id` returns them.
    """
    digest = hmac.digest(key, f"reply|{parent_message_id.strip()}".encode(), "sha256")
    return _message_id(int.from_bytes(digest[:11], "big"), key, domain)


def compose_reply(
    seed: int,
    original_subject: str,
    original_body: str,
    replier_email: str,
    original_sender_email: str,
    local_time: datetime,
    replier_name: str | None = None,
    *,
    original_date: datetime | None = None,
) -> tuple[str, str]:
    """The subject and plain-text body of a reply, for the replier's moment of sending.

    The reply answers what the original said: it names the original's topic (found in its
    subject or text), answers its asks (a look, a call, help, an opinion, two days offered:
    the one still ahead is taken), greets its signer by first name and fits the replier's
    local time as `compose` does. Most replies quote the original below an attribution line.
    Pure: the same inputs give the same words.

    Args:
        seed: The reply job's content seed.
        original_subject: The original's subject; the reply's is "Re: " once before it.
        original_body: The original's plain-text body.
        replier_email: The replying mailbox (the original's recipient).
        original_sender_email: Who sent the original; named when its body is not signed.
        local_time: The replier's local time at sending, timezone-aware.
        replier_name: The replier's display name; by default derived from its address.
        original_date: When the original was sent; the quote's attribution line gives it
            ("On Tue, 3 Mar 2026 at 09:12, Alice wrote:"), else names only the writer.

    Returns:
        `(subject, body)`; the body is printable ASCII.

    Raises:
        ValueError: `local_time` (or `original_date`) is naive, or an address is not one.
    """
    moment = Moment.at(local_time)
    pick = Picker(random.Random(seed), moment)
    original = Original.read(original_subject, original_body)
    topic = original.topic
    when = pick.pick(_REPLY_WHEN)[0]
    addressed = greeting_name(original.signer) or first_name(original_sender_email)
    parts = [greeting(pick, addressed)]
    lead = pick.pick(_REPLY_OPENERS, t=topic) if pick.chance(0.8) else []
    lead.append(pick.rng.choice(phrases.REPLY_TOPIC_LINES).format(t=topic))
    answers = _answers(pick, original, when, local_time, original_date)
    if pick.chance(0.5):
        answers += pick.pick(_REPLY_NEXT, w=when)
    closing = pick.pick(_REPLY_CLOSINGS) if pick.chance(0.7) else []
    if answers and pick.chance(0.4):
        lead, answers = lead + answers, []
    parts += [" ".join(group) for group in (lead, answers + closing) if group]
    parts.append(signature(pick, replier_email, replier_name))
    if pick.chance(0.6):
        writer = original.signer or derived_display_name(original_sender_email)
        parts.append(f"{attribution(writer, original_date, local_time)}\n{quoted(original_body)}")
    return reply_subject(original_subject), fold_ascii("\n\n".join(parts))


def _answers(
    pick: Picker, original: Original, when: str, local_time: datetime, sent: datetime | None
) -> list[str]:
    """Answers to the original's asks: one of the days it offered that is still ahead, and up
    to two of its other asks. The draws depend on what was asked, never on the moment."""
    answers = []
    if original.days:
        u, bank_u = pick.rng.random(), pick.rng.random()
        if ahead := days_still_ahead(original.days, local_time, sent):
            day, days = ahead[int(u * len(ahead))]
            bank = phrases.REPLY_TOMORROW if days == 1 else phrases.REPLY_DAY
            answers.append(bank[int(bank_u * len(bank))].format(d=day))
    asks = pick.rng.sample(original.asks, min(2, len(original.asks)))
    for ask in asks:
        _, bank = phrases.ASKS[ask]
        answers.append(pick.rng.choice(bank).format(w=when))
    return answers
