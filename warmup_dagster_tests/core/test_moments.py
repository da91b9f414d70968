"""New mail fits its sender's local time: greeting, weekdays, "this week", "later today".

The rules are restated here on their own (`RULES`), from what the words mean, rather than read
from the condition table the code uses: a phrase filed under the wrong condition fails them.
"""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmup_dagster.core import phrases
from warmup_dagster.core.content import compose
from warmup_dagster.core.moments import WEEKDAYS, Moment

PROPERTY = settings(max_examples=300, deadline=None)
SENDER = "alice.smith@acme.test"
RECIPIENT = "frank.miller@example.org"
DAYS = "|".join(WEEKDAYS)

seeds = st.integers(min_value=0, max_value=2**63 - 1)
local_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.timezones()
)


def _hour(low: int, high: int):
    return lambda t: low <= t.hour < high


def _before(t: datetime, weekday: int, hour: int) -> bool:
    """Earlier in the week than that weekday's hour (Monday 00:00 starts the week)."""
    return (t.weekday(), t.hour) < (weekday, hour)


# (where, pattern, when it may be said): "subject", "body" (after the greeting) or "text".
RULES = [
    ("text", r"\bthis afternoon\b", _hour(5, 12)),
    ("text", r"\btonight\b", _hour(5, 17)),
    ("text", r"\blater today\b", _hour(5, 15)),
    ("text", r"\btoday\b", _hour(5, 24)),
    ("text", r"\btomorrow\b", _hour(5, 24)),
    ("subject", r"\bthis morning\b", _hour(5, 10)),
    ("text", r"\bthis morning\b", _hour(5, 24)),
    ("body", r"had another look at .+ this morning", _hour(11, 24)),
    ("text", r"\bthis week\b", lambda t: t.weekday() <= 3),
    ("text", r"\bthis weekend\b", lambda t: t.weekday() <= 4),
    ("text", r"\bthis month\b", lambda t: t.day <= 20),
    ("body", r"(Enjoy your|Have a good) weekend", lambda t: _before(t, 5, 12) and t.weekday() >= 4),
    ("body", r"rest of your week", lambda t: _before(t, 4, 12)),
    ("body", r"See you next week", lambda t: t.weekday() >= 3),
    ("body", r"rest of your day|Have a good day", _hour(5, 17)),
    ("body", r"(good|your) evening", _hour(15, 24)),
    ("body", r"Have a good week\b", lambda t: t.weekday() in (6, 0)),
    ("body", r"had a good weekend|long weekend", lambda t: _before(t, 1, 12)),
    ("body", r"your weekend is going|on a weekend|over the weekend", lambda t: t.weekday() >= 5),
    ("body", r"week is going well|seeing you yesterday", lambda t: 1 <= t.weekday() <= 4),
    ("body", r"week is winding down", lambda t: t.weekday() <= 4 and not _before(t, 3, 12)),
    ("body", r"busy week here", lambda t: t.weekday() >= 2),
    ("body", r"\bearlier\b(?! version)", _hour(11, 24)),
    ("body", r"your morning is going", _hour(5, 12)),
    ("body", r"your afternoon is going", _hour(12, 18)),
    ("text", r"Happy Friday", lambda t: t.weekday() == 4 and t.hour >= 5),
    ("text", r"off to a good start", lambda t: t.weekday() <= 4 and 5 <= t.hour < 12),
    ("text", r"having a good \w+day", _hour(5, 17)),
]  # fmt: skip


def greeting_fits(greeting: str, local: datetime) -> bool:
    lowered = greeting.lower()
    if "morning" in lowered:
        return 5 <= local.hour < 12
    if "afternoon" in lowered:
        return 12 <= local.hour < 18
    if "evening" in lowered:
        return local.hour >= 18
    if "friday" in lowered:
        return local.weekday() == 4
    return True


def weekday_problems(text: str, local: datetime) -> list[str]:
    """Each weekday named that is neither today, said as today, nor a day ahead said so."""
    today = local.weekday()
    problems = []
    for m in re.finditer(rf"\b({DAYS})\b", text):
        day = WEEKDAYS.index(m.group(1))
        before, after = text[: m.start()], text[m.end() :]
        if day == today:
            if not before.endswith(("your ", "Happy ", "good ")):
                problems.append(f"today's name {m.group(1)} not said as today: {text!r}")
            continue
        ahead = (day - today) % 7
        # "by Thursday", "Thursday or Friday would both work"; a reply's "Friday works for me"
        relative = before.endswith(("for ", "by ", "before ", "on ", "or ", "say "))
        relative |= after.startswith((" or ", " works for me", " is better for me"))
        if not (2 <= ahead <= 5 and relative):
            problems.append(f"{m.group(1)} is {ahead} days ahead of {WEEKDAYS[today]}: {text!r}")
    return problems


def check(subject: str, body: str, local: datetime) -> None:
    greeting, rest = body.split("\n", 1)
    assert greeting_fits(greeting, local), (greeting, local)
    texts = {"subject": subject, "body": rest, "text": f"{subject}\n{body}"}
    for where, pattern, fits in RULES:
        if re.search(pattern, texts[where], re.IGNORECASE):
            assert fits(local), (pattern, local.isoformat(), subject, body)
    assert weekday_problems(f"{subject}\n{body}", local) == []


@PROPERTY
@given(seed=seeds, local=local_times)
def test_new_mail_fits_its_senders_local_time(seed: int, local: datetime):
    subject, body = compose(seed, SENDER, RECIPIENT, local)
    check(subject, body, local)


@PROPERTY
@given(seed=seeds, local=local_times)
def test_same_seed_and_local_time_give_the_same_words(seed: int, local: datetime):
    first = compose(seed, SENDER, RECIPIENT, local)
    assert compose(seed, SENDER, RECIPIENT, local) == first
    # Only the local time counts: the same wall-clock time in another zone, the same words.
    assert compose(seed, SENDER, RECIPIENT, local.replace(tzinfo=UTC)) == first


def _template(text: str) -> str:
    pattern = re.escape(text)
    for name, value in (("t", ".+?"), ("n", r"\w+"), ("w", ".+?")):
        pattern = pattern.replace(re.escape(f"{{{name}}}"), value)
    for name in ("today", "d", "d2"):
        pattern = pattern.replace(re.escape(f"{{{name}}}"), f"(?:{DAYS})")
    return pattern


def _time_bound() -> re.Pattern[str]:
    """Any rendering of a phrase that can change with the moment."""
    texts = [
        text
        for bank in (
            phrases.WHEN,
            phrases.GREETINGS_NAMED,
            phrases.GREETINGS_PLAIN,
            phrases.OPENERS,
            phrases.TOPIC_LINES,
            phrases.DETAILS,
            phrases.CLOSINGS,
            phrases.SIGN_OFFS,
        )
        for key, block in bank.items()
        for text in block
        if key != "any" or re.search(r"\{(today|d|d2|w)\}", text)
    ]
    return re.compile("|".join(f"(?:{_template(t)})" for t in texts))


TIME_BOUND = _time_bound()
WHEN_SUFFIX = re.compile(
    "(?: (?:" + "|".join(_template(t) for b in phrases.WHEN.values() for t in b) + "))$",
    re.IGNORECASE,
)


def units(body: str) -> list[str]:
    """A body's lines and sentences, in order."""
    out = []
    for paragraph in body.split("\n\n"):
        for line in paragraph.split("\n"):
            out += re.split(r"(?<=[.?!]) ", line)
    return out


@PROPERTY
@given(seed=seeds, first=local_times, later=st.timedeltas(timedelta(0), timedelta(days=9)))
def test_a_retry_at_another_time_changes_time_words_only(
    seed: int, first: datetime, later: timedelta
):
    subject_a, body_a = compose(seed, SENDER, RECIPIENT, first)
    subject_b, body_b = compose(seed, SENDER, RECIPIENT, first + later)
    assert WHEN_SUFFIX.sub("", subject_a) == WHEN_SUFFIX.sub("", subject_b)
    a, b = units(body_a), units(body_b)
    assert len(a) == len(b), (body_a, body_b)
    for x, y in zip(a, b, strict=True):
        if x != y:
            assert TIME_BOUND.fullmatch(x) or TIME_BOUND.fullmatch(y), (x, y)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"])
def test_tuesday_0828_never_says_evening_or_monday(zone: str):
    """The demo's old mail said "Good evening Frank" at 08:28 and "your Monday" on a Tuesday."""
    local = datetime(2026, 3, 3, 8, 28, tzinfo=ZoneInfo(zone))
    assert local.strftime("%A") == "Tuesday"
    greetings = set()
    for seed in range(1000):
        subject, body = compose(seed, SENDER, RECIPIENT, local)
        text = f"{subject}\n{body}"
        assert "evening" not in text.lower() and "afternoon" not in body.split("\n", 1)[0].lower()
        assert "Monday" not in text
        check(subject, body, local)
        greetings.add(body.split("\n", 1)[0])
    # The morning's own words are said, not only avoided.
    assert "Good morning Frank," in greetings and "Morning," in greetings
    bodies = [compose(seed, SENDER, RECIPIENT, local)[1] for seed in range(1000)]
    assert any("I hope your Tuesday is off to a good start." in b for b in bodies)


def test_night_hours_name_no_time_of_day_in_the_greeting():
    local = datetime(2026, 3, 4, 2, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    for seed in range(500):
        greeting = compose(seed, SENDER, RECIPIENT, local)[1].split("\n", 1)[0].lower()
        assert not re.search("morning|afternoon|evening", greeting), greeting


def test_days_ahead_are_two_to_five_working_days_ahead():
    for weekday in range(7):
        moment = Moment(hour=9, weekday=weekday, day=10)
        ahead = [(WEEKDAYS.index(d) - weekday) % 7 for d in moment.days_ahead]
        assert len(ahead) >= 2 and all(2 <= n <= 5 for n in ahead)
        assert all(WEEKDAYS.index(d) < 5 for d in moment.days_ahead)


def test_moment_refuses_a_naive_time():
    with pytest.raises(ValueError, match="naive datetime"):
        Moment.at(datetime(2026, 3, 3, 8, 28))
