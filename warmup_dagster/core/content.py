"""Warmup email content: a job's subject and body, and its self-identifying Message-ID.

Pure functions of the job: `compose` turns a job's content seed into the same words every time
(from the phrase banks in `warmup_dagster.core.phrases`), and `job_message_id` turns the job
into the same Message-ID at every attempt. Warmup mail is recognised by its Message-ID alone:
`<{nonce}.{mac}@{domain}>` where `mac` is a truncated HMAC of nonce and domain. Every id looks
like an ordinary random id, so there is no constant header or subject marker a spam filter
could cluster on, and only holders of the key can tell the mail is ours.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import random
import re
import unicodedata

from warmup_dagster.core import phrases

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


def _domain_of(email: str) -> str:
    domain = email.strip().rpartition("@")[2].strip().strip(">").lower()
    if "@" not in email or not domain:
        raise ValueError(f"not an email address: {email!r}")
    return domain


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


_NOT_PRINTABLE = re.compile(r"[^\n -~]")


def _ascii(text: str) -> str:
    """Fold text to printable ASCII plus newline (accents dropped, other characters spaced)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    folded = folded.replace("\r\n", "\n").replace("\r", "\n")
    return _NOT_PRINTABLE.sub(" ", folded)


@functools.lru_cache(maxsize=65_536)
def _first_name(email: str) -> str | None:
    """A display first name from an address's local part ('alice.smith42' -> 'Alice')."""
    local = email.strip().rpartition("@")[0].split("+")[0]
    first = re.split(r"[._\-]+", _ascii(local).strip())[0]
    letters = re.sub(r"[^A-Za-z]", "", first)
    if len(letters) < 2 or letters.lower() in phrases.ROLE_WORDS:
        return None
    return letters.capitalize()


def _sender_name(email: str, given: str | None) -> str:
    """The sign-off name: given, else derived, else a neutral 'The Acme team'."""
    name = " ".join(re.sub(r"[@<>]", " ", _ascii(given or "")).split())
    if name:
        return name
    derived = _first_name(email)
    if derived:
        return derived
    label = re.sub(r"[^A-Za-z]", "", _domain_of(email).split(".")[0])
    return f"The {label.capitalize()} team" if len(label) >= 2 else "The team"


def _greeting(rng: random.Random, name: str | None) -> str:
    if name and rng.random() < 0.6:
        return rng.choice(phrases.GREETINGS_NAMED).format(n=name)
    return rng.choice(phrases.GREETINGS_PLAIN)


def _subject(rng: random.Random, topic: str) -> str:
    subject = rng.choice(phrases.SUBJECTS).format(t=topic)
    if rng.random() < 0.5:
        subject = f"{subject} {rng.choice(phrases.WHEN)}"
    # Some people never capitalise their subjects.
    return subject if rng.random() < 0.15 else subject[0].upper() + subject[1:]


def _paragraphs(rng: random.Random, topic: str) -> list[str]:
    """2-6 sentences in 1-3 paragraphs: opener and topic, details, closing."""
    lead = [rng.choice(phrases.OPENERS)] if rng.random() < 0.7 else []
    topic_lines = rng.sample(phrases.TOPIC_LINES, 2 if rng.random() < 0.25 else 1)
    lead += [line.format(t=topic) for line in topic_lines]
    closing = [rng.choice(phrases.CLOSINGS)] if rng.random() < 0.8 else []
    n_details = rng.choice((0, 1, 1, 2))
    n_details = max(n_details, 2 - len(lead) - len(closing))
    groups = [lead, rng.sample(phrases.DETAILS, n_details), closing]
    groups = [g for g in groups if g]
    # Merge neighbouring groups now and then so paragraph counts vary too.
    for i in range(len(groups) - 1, 0, -1):
        if rng.random() < 0.35:
            groups[i - 1] = groups[i - 1] + groups.pop(i)
    return [" ".join(g) for g in groups]


def compose(
    seed: int, sender_email: str, recipient_email: str, sender_name: str | None = None
) -> tuple[str, str]:
    """The subject and plain-text body of a new warmup message, determined by `seed`.

    Planning stores only the content seed; the sender composes the text when it
    sends, so a retry sends the same words and planning a million jobs stays cheap.

    Args:
        seed: The job's content seed.
        sender_email: The sending mailbox; its name signs the message.
        recipient_email: The receiving mailbox; its first name is used in some greetings.
        sender_name: Sign-off name; by default a first name derived from the sender's local
            part, or a neutral team name for role accounts.

    Returns:
        `(subject, body)`.
    """
    rng = random.Random(seed)
    topic = rng.choice(phrases.TOPICS)
    subject = _subject(rng, topic)
    parts = [_greeting(rng, _first_name(recipient_email)), *_paragraphs(rng, topic)]
    parts.append(f"{rng.choice(phrases.SIGN_OFFS)}\n{_sender_name(sender_email, sender_name)}")
    return _ascii(subject), _ascii("\n\n".join(parts))


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


# Until the content work lands its own: short answers, a line on the original's topic, a close.
_REPLY_OPENERS = (
    "Thanks for the note.", "Thanks for sending this over.", "Good to hear from you.",
    "Thanks, this is helpful.", "Got it, thanks.", "Appreciate you sharing this.",
)  # fmt: skip
_REPLY_LINES = (
    "That sounds good to me.", "I agree, let's go with that.", "I'll take a look and get back "
    "to you.", "Makes sense, I'll keep it in mind.", "Happy to help with that.", "Let's talk "
    "it through when we next meet.", "I had the same thought.", "That works on my side.",
)  # fmt: skip


def compose_reply(
    seed: int,
    original_subject: str,
    original_body: str,
    replier_email: str,
    original_sender_email: str,
    local_time: datetime.datetime,
    replier_name: str | None = None,
) -> tuple[str, str]:
    """The subject and plain-text body of a reply to a warmup message, determined by `seed`.

    Args:
        seed: Picks the words; the same seed gives the same reply.
        original_subject: The subject answered; the reply's is it with one "Re: " in front.
        original_body: The text answered; quoted below the reply.
        replier_email: The replying mailbox; its name signs the reply.
        original_sender_email: Whom the reply goes to; greeted by first name when it has one.
        local_time: The replier's local time at sending (must carry a timezone): no "good
            morning" after noon.
        replier_name: Sign-off name; derived from `replier_email` by default.

    Returns:
        `(subject, body)`.
    """
    if local_time.tzinfo is None:
        raise ValueError(f"naive datetime {local_time!r}: local_time needs its timezone")
    rng = random.Random(seed)
    subject = " ".join(original_subject.split())
    while subject.lower().startswith("re:"):
        subject = subject[3:].lstrip()
    lines = [rng.choice(_REPLY_OPENERS), *rng.sample(_REPLY_LINES, rng.choice((1, 1, 2)))]
    greeting = _greeting(rng, _first_name(original_sender_email))
    if local_time.hour >= 12 and greeting.lower().startswith("good morning"):
        greeting = "Hi" + greeting[len("good morning") :]
    parts = [greeting, " ".join(lines)]
    parts.append(f"{rng.choice(phrases.SIGN_OFFS)}\n{_sender_name(replier_email, replier_name)}")
    quoted = "\n".join(f"> {line}".rstrip() for line in original_body.splitlines())
    parts.append(f"{original_sender_email} wrote:\n{quoted}")
    return _ascii(f"Re: {subject}"), _ascii("\n\n".join(parts))
