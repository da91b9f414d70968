"""The receiving side's decisions, as pure functions of the message: when to look, whether
to flag and to reply, when a reply goes out, where to look for the spam and sent folders.

Each draw is a hash of the Message-ID and a label, so a pass retried after a failure decides
the same things again (a message is flagged, or answered, once, whichever pass gets there).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from warmup_dagster.core.slots import local_day, send_window

# Where mail lands when a provider doesn't mark its folders with SPECIAL-USE (RFC 6154).
SPAM_NAMES = ("Junk", "Spam", "[Gmail]/Spam", "Junk Email", "Junk E-mail", "Bulk Mail")
SENT_NAMES = ("Sent", "Sent Items", "Sent Messages", "[Gmail]/Sent Mail", "Sent Mail")


def draw(message_id: str, label: str) -> float:
    """A number in [0, 1) fixed by the Message-ID and `label` (one label per decision)."""
    digest = hashlib.sha256(f"{label}|{message_id.strip()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def between(message_id: str, label: str, low: float, high: float) -> float:
    """A value in [low, high] fixed by the Message-ID and `label`."""
    return low + (high - low) * draw(message_id, label)


def look_due(sent_at: datetime, message_id: str, delay_min: float, delay_max: float) -> datetime:
    """When the recipient first looks for a message: a human-like delay after its send.

    Args:
        sent_at: When it was sent.
        message_id: Its Message-ID (fixes the delay).
        delay_min: Shortest delay, clock minutes.
        delay_max: Longest delay, clock minutes.
    """
    return sent_at + timedelta(minutes=between(message_id, "look", delay_min, delay_max))


def wants_flag(message_id: str, rate: float) -> bool:
    """Whether the recipient flags this message (`WARMUP_ENGAGE_FLAG_RATE` of them)."""
    return draw(message_id, "flag") < rate


def wants_reply(message_id: str, reply_rate: float, turn: int, max_turns: int) -> bool:
    """Whether the recipient answers: its mailbox's reply rate, while the thread has turns left.

    Args:
        message_id: The message.
        reply_rate: The recipient mailbox's `reply_rate`.
        turn: The message's place in its thread (1 for a new message).
        max_turns: Messages a thread may have (`WARMUP_ENGAGE_MAX_TURNS`).
    """
    return turn < max_turns and draw(message_id, "reply") < reply_rate


def thread_turn(references: str | None) -> int:
    """A message's place in its thread from its References (each earlier message listed)."""
    return 1 + len((references or "").split())


def reply_due(
    now: datetime,
    message_id: str,
    delay_min: float,
    delay_max: float,
    timezone: str,
    start_hour: int,
    end_hour: int,
) -> datetime:
    """When a reply goes out: a human-like delay from now, moved into the replier's send window.

    A time past the window's end (or before its start) becomes the next window's opening plus
    the same delay's share of an hour, so replies don't all leave at the opening minute.

    Args:
        now: When the message was read.
        message_id: The message answered (fixes the delay).
        delay_min: Shortest delay, clock minutes.
        delay_max: Longest delay, clock minutes.
        timezone: The replier's timezone.
        start_hour: The send window's first hour, local.
        end_hour: The send window's end hour, local.
    """
    minutes = between(message_id, "reply-delay", delay_min, delay_max)
    at = now + timedelta(minutes=minutes)
    day = local_day(at, timezone)
    for offset in range(0, 8):
        window = send_window(day + timedelta(days=offset), timezone, start_hour, end_hour)
        if at < window.start:
            return window.start + timedelta(minutes=minutes % 60)
        if at < window.end:
            return at
    return at


def find_folder(
    listed: Iterable[tuple[Sequence[bytes], str]], flag: bytes, names: Sequence[str]
) -> str | None:
    """The folder marked with SPECIAL-USE `flag`, else the first of the usual `names` there is.

    Args:
        listed: (flags, name) of each folder, as LIST gives them.
        flag: The SPECIAL-USE attribute, e.g. `b"\\Junk"`.
        names: Names to try in order, compared without regard to case.
    """
    folders = list(listed)
    for flags, name in folders:
        if any(f.lower() == flag.lower() for f in flags):
            return name
    by_lower = {name.lower(): name for _, name in folders}
    for name in names:
        if name.lower() in by_lower:
            return by_lower[name.lower()]
    return None
