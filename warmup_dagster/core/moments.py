"""The sender's local moment, and choosing phrases that fit it.

A message is composed for the local time of its sender when it goes out: "Good morning" only
in the morning, "I hope your Tuesday ..." only on a Tuesday, "this week" only early in the
week. A `Moment` is what the words depend on (local hour, weekday, day of the month), and
`CONDITIONS` says when each kind of phrase in `warmup_dagster.core.phrases` fits.

`Picker.pick` keeps composition deterministic and retries stable: it consumes the same random
draws whatever the moment, and a slot whose first choice is a time-free phrase keeps that
phrase at every moment. Only a slot that chose a time-bound phrase may say something else at
another moment (another time-bound phrase, or its time-free fallback).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Weekdays named as days ahead ("by Thursday") are two to five days ahead: never today, and
# tomorrow is said as "tomorrow"; never so far ahead that the name could mean last week's.
AHEAD = range(2, 6)


@dataclass(frozen=True)
class Moment:
    """What time words depend on: the sender's local hour, weekday and day of the month.

    Attributes:
        hour: Local hour, 0-23.
        weekday: Local weekday, 0 (Monday) to 6 (Sunday).
        day: Local day of the month, 1-31.
    """

    hour: int
    weekday: int
    day: int

    @classmethod
    def at(cls, local_time: datetime) -> Moment:
        """The moment of a local time.

        Args:
            local_time: The sender's local time, timezone-aware.

        Returns:
            Its moment.

        Raises:
            ValueError: `local_time` is naive (the words would depend on the machine's zone).
        """
        if local_time.tzinfo is None or local_time.utcoffset() is None:
            raise ValueError(
                f"naive datetime {local_time!r}: compose needs the sender's local time "
                "with its timezone"
            )
        return _moment(local_time.hour, local_time.weekday(), local_time.day)

    @property
    def today(self) -> str:
        """The local weekday's name."""
        return WEEKDAYS[self.weekday]

    @functools.cached_property
    def days_ahead(self) -> tuple[str, ...]:
        """The working days (Monday-Friday) two to five days ahead, in order."""
        days = ((self.weekday + n) % 7 for n in AHEAD)
        return tuple(WEEKDAYS[d] for d in days if d < 5)

    def offset_of(self, weekday: str) -> int:
        """How many days ahead the next `weekday` is (0: today).

        Args:
            weekday: A weekday's English name.

        Returns:
            0-6.
        """
        return (WEEKDAYS.index(weekday) - self.weekday) % 7


@functools.lru_cache(maxsize=7 * 24 * 31)
def _moment(hour: int, weekday: int, day: int) -> Moment:
    return Moment(hour, weekday, day)


def _hours(low: int, high: int) -> Callable[[Moment], bool]:
    return lambda m: low <= m.hour < high


# When the phrases filed under each key fit (see `warmup_dagster.core.phrases`). Night hours
# (0-4) are no part of a morning, an afternoon or an evening: no greeting names the time then.
CONDITIONS: dict[str, Callable[[Moment], bool]] = {
    "any": lambda m: True,
    "morning": _hours(5, 12),
    "afternoon": _hours(12, 18),
    "evening": _hours(18, 24),
    "early": _hours(5, 10),
    "daytime": _hours(5, 17),
    "before_three": _hours(5, 15),
    "later": _hours(11, 24),
    "awake": _hours(5, 24),
    "towards_evening": _hours(15, 24),
    "early_week": lambda m: m.weekday <= 3,
    "workweek": lambda m: m.weekday <= 4,
    "midweek": lambda m: 1 <= m.weekday <= 4,
    "late_week": lambda m: m.weekday >= 2,
    "after_weekend": lambda m: m.weekday == 0 or (m.weekday == 1 and m.hour < 12),
    "week_winding_down": lambda m: (m.weekday == 3 and m.hour >= 12) or m.weekday == 4,
    "rest_of_week": lambda m: m.weekday <= 3 or (m.weekday == 4 and m.hour < 12),
    "weekend_ahead": lambda m: m.weekday == 4 or (m.weekday == 5 and m.hour < 12),
    "weekend": lambda m: m.weekday >= 5,
    "friday": lambda m: m.weekday == 4,
    "week_start": lambda m: m.weekday in (6, 0),
    "see_next_week": lambda m: m.weekday >= 3,
    "early_month": lambda m: m.day <= 20,
}


def condition(key: str) -> Callable[[Moment], bool]:
    """The test for a bank key: a name in `CONDITIONS`, or names joined by `+` (all hold).

    Raises:
        KeyError: A name is not in `CONDITIONS`.
    """
    tests = [CONDITIONS[name] for name in key.split("+")]
    if len(tests) == 1:
        return tests[0]
    return lambda m: all(test(m) for test in tests)


@dataclass(frozen=True)
class Phrase:
    """One template of a bank and when it fits (`timeless`: at every moment)."""

    text: str
    fits: Callable[[Moment], bool]
    timeless: bool


class Bank:
    """A phrase bank compiled for picking: every template, and the time-free ones apart."""

    def __init__(self, blocks: Mapping[str, tuple[str, ...]]) -> None:
        self.phrases = tuple(
            Phrase(text, condition(key), key == "any")
            for key, texts in blocks.items()
            for text in texts
        )
        self.timeless = tuple(p for p in self.phrases if p.timeless)
        if not self.timeless:
            raise ValueError("a bank needs time-free phrases to fall back on")


class Picker:
    """Picks phrases for one message at one moment, from one random stream."""

    def __init__(self, rng: random.Random, moment: Moment) -> None:
        self.rng = rng
        self.moment = moment

    def pick(self, bank: Bank, k: int = 1, **values: str) -> list[str]:
        """`k` different phrases of `bank` that fit the moment, rendered.

        The draws are the same at every moment: `k` templates of the whole bank, a time-free
        fallback for each, and a value for each one's day placeholders. A chosen template that
        does not fit now gives way to its fallback (fallbacks never repeat a time-free choice).

        Args:
            bank: The bank.
            k: How many; at most half the bank's time-free phrases.
            **values: Placeholder values (`t`, `n`, `w`); `today`, `d` and `d2` come from
                the moment.

        Returns:
            The phrases, in the order drawn.
        """
        rng = self.rng
        chosen = [bank.phrases[i] for i in rng.sample(range(len(bank.phrases)), k)]
        starts = [rng.random() for _ in range(k)]
        days = [rng.random() for _ in range(k)]
        taken = {p.text for p in chosen if p.timeless}
        out = []
        for phrase, start, day in zip(chosen, starts, days, strict=True):
            fallback = _fallback(bank.timeless, start, taken)
            taken.add(fallback.text)
            use = phrase if phrase.fits(self.moment) else fallback
            out.append(self.render(use.text, day, **values))
        return out

    def chance(self, p: float) -> bool:
        """One draw: True with probability `p`."""
        return self.rng.random() < p

    def render(self, text: str, u: float, **values: str) -> str:
        """Fill a template's placeholders; `u` in [0, 1) picks the days ahead."""
        days = self.moment.days_ahead
        if "{d2}" in text:
            first = int(u * (len(days) - 1))
            values |= {"d": days[first], "d2": days[first + 1]}
        elif "{d}" in text:
            values["d"] = days[int(u * len(days))]
        if "{today}" in text:
            values["today"] = self.moment.today
        return text.format(**values) if "{" in text else text


def _fallback(timeless: tuple[Phrase, ...], u: float, taken: set[str]) -> Phrase:
    """The first time-free phrase from a drawn start that is not taken yet."""
    start = int(u * len(timeless))
    for i in range(len(timeless)):
        phrase = timeless[(start + i) % len(timeless)]
        if phrase.text not in taken:
            return phrase
    raise ValueError("not enough time-free phrases for this many picks")
