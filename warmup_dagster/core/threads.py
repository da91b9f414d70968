"""Reading the message a reply answers: its subject, topic, asks, signer, and quoting it.

Pure text functions for `warmup_dagster.core.content.compose_reply`. They read what
`compose` writes (a topic from `phrases.TOPICS`, the asks of `phrases.ASKS`, a sign-off name
on the last line) and degrade gracefully on other mail: no known topic, no asks, no name.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from warmup_dagster.core import phrases
from warmup_dagster.core.controls import CONTROL_RE
from warmup_dagster.core.moments import WEEKDAYS, Moment
from warmup_dagster.core.names import given_first_name

_REPLY_PREFIX = re.compile(r"^(?:re\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_DAYS = "|".join(WEEKDAYS)
_DAY_PAIR = re.compile(rf"\b({_DAYS}) or ({_DAYS}) would both work")
_SIGNED = re.compile(r"^[A-Za-z][A-Za-z' .-]{1,60}$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# The topic of a message that is not ours: templates still read ("the plan sounds good").
UNKNOWN_TOPIC = "plan"


def reply_subject(original: str) -> str:
    """The subject of a reply: "Re: " once before the original's, whatever it started with.

    Args:
        original: The original's subject (a received header: any text).

    Returns:
        "Re: <subject>", with line breaks and control characters turned into single spaces
        and any run of leading "Re:", "RE:", "Re[2]:" removed first.
    """
    text = " ".join(CONTROL_RE.sub(" ", original).split())
    rest = _REPLY_PREFIX.sub("", text)
    return f"Re: {rest}" if rest else "Re:"


@dataclass(frozen=True)
class Original:
    """What a reply needs of the message it answers.

    Attributes:
        own: The original's own text, without the quote it carried and its attribution line.
        topic: Its topic (from `phrases.TOPICS`), or `UNKNOWN_TOPIC`.
        asks: The kinds of ask found in `own` (keys of `phrases.ASKS`), in that order.
        days: Two weekdays it offered ("Tuesday or Wednesday would both work"), or ().
        signer: The name it was signed with (its last line), if that reads as a name.
    """

    own: str
    topic: str
    asks: tuple[str, ...]
    days: tuple[str, ...]
    signer: str | None

    @classmethod
    def read(cls, subject: str, body: str) -> Original:
        """Read an original's subject and body.

        Args:
            subject: Its subject.
            body: Its plain-text body.

        Returns:
            What was found.
        """
        own = own_text(body)
        lowered = own.lower()
        asks = tuple(
            ask for ask, (cues, _) in phrases.ASKS.items() if any(c in lowered for c in cues)
        )
        pair = _DAY_PAIR.search(own)
        return cls(
            own=own,
            topic=find_topic(subject, own, body),
            asks=asks,
            days=pair.groups() if pair else (),
            signer=signed_name(own),
        )


def own_text(body: str) -> str:
    """A body without its quoted part: the lines before the first "> " line, without the
    "On ..., X wrote:" line that introduces the quote."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    own: list[str] = []
    for line in lines:
        if line.startswith(">"):
            break
        own.append(line)
    while own and not own[-1].strip():
        own.pop()
    if own and own[-1].rstrip().endswith("wrote:"):
        own.pop()
    return "\n".join(own).strip()


def find_topic(subject: str, own: str, body: str) -> str:
    """The topic of a message: the first known topic in its subject, else in its own text,
    else anywhere in its body (the quote), else `UNKNOWN_TOPIC`."""
    for text in (subject, own, body):
        lowered = " ".join(text.lower().split())
        found = [(lowered.find(t), t) for t in phrases.TOPICS if t in lowered]
        if found:
            return min(found)[1]
    return UNKNOWN_TOPIC


def signed_name(own: str) -> str | None:
    """The name on an original's last line, when the line before it is a sign-off ("Best,").

    Returns:
        The name as signed ("Alice", "Alice Smith"), or None.
    """
    lines = [line.strip() for line in own.split("\n") if line.strip()]
    if len(lines) < 2 or not lines[-2].endswith(","):
        return None
    name = lines[-1]
    if not _SIGNED.match(name) or name.lower().startswith("the "):
        return None
    return name


def days_still_ahead(
    offered: tuple[str, ...], local_time: datetime, sent: datetime | None
) -> list[tuple[str, int]]:
    """The days an original offered that are still ahead of the replier, and how far.

    `compose` names two working days two to five days ahead of its sender's date. The dates
    they mean are found from the original's date (in the offset it carries: the sender's), or,
    without it, from the replier's today or yesterday, whichever could have offered both.

    Args:
        offered: The two weekdays the original offered (`Original.days`).
        local_time: The replier's local time.
        sent: When the original was sent, or None.

    Returns:
        `(weekday, days ahead of the replier's date)` for each offered day one to five days
        ahead; none when they have passed, are today, or no date could have offered them.
    """
    today = local_time.date()
    origins: list[date] = [sent.date()] if sent is not None else [today, today - timedelta(1)]
    for origin in origins:
        ahead = Moment(hour=12, weekday=origin.weekday(), day=origin.day).days_ahead
        pairs = list(itertools.pairwise(ahead))
        if tuple(offered) not in pairs:
            continue
        dates = [
            origin + timedelta(days=(WEEKDAYS.index(d) - origin.weekday()) % 7) for d in offered
        ]
        return [
            (d, (when - today).days)
            for d, when in zip(offered, dates, strict=True)
            if 1 <= (when - today).days <= 5
        ]
    return []


def greeting_name(signer: str | None) -> str | None:
    """How to address someone who signed `signer`: their first name."""
    if signer is None:
        return None
    if " " not in signer:
        return signer
    return given_first_name(signer)


def attribution(name: str, sent: datetime | None, local_time: datetime) -> str:
    """The line that introduces a quote: "On Tue, 3 Mar 2026 at 09:12, Alice wrote:".

    Args:
        name: Who wrote the original.
        sent: When the original was sent (aware), shown in the replier's timezone; None
            gives "Alice wrote:".
        local_time: The replier's local time (its timezone is used).

    Returns:
        The line, in English whatever the machine's locale.
    """
    if sent is None:
        return f"{name} wrote:"
    if sent.tzinfo is None:
        raise ValueError(f"naive datetime {sent!r}: the original's date needs a timezone")
    at = sent.astimezone(local_time.tzinfo)
    day = f"{WEEKDAYS[at.weekday()][:3]}, {at.day} {_MONTHS[at.month - 1]} {at.year}"
    return f"On {day} at {at:%H:%M}, {name} wrote:"


def quoted(body: str) -> str:
    """A body quoted line by line ("> " before each line, ">" alone for an empty one)."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").strip("\n").split("\n")
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines)
