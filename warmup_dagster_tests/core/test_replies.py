"""Replies: "Re: " once, an answer to what the original said, the replier's local time."""

import random
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmup_dagster.core import phrases
from warmup_dagster.core.content import compose, compose_reply
from warmup_dagster.core.threads import UNKNOWN_TOPIC, Original, own_text, reply_subject
from warmup_dagster_tests.core.test_moments import check, local_times, seeds

PROPERTY = settings(max_examples=200, deadline=None)
ALICE = "alice.smith@acme.test"
FRANK = "frank.miller@example.org"
SENT = datetime(2026, 3, 2, 9, 12, tzinfo=ZoneInfo("Europe/Berlin"))  # a Monday morning
LATER = datetime(2026, 3, 3, 15, 40, tzinfo=ZoneInfo("America/New_York"))  # a Tuesday afternoon
_PREFIX = re.compile(r"^\s*re\s*(\[\d+\])?\s*:", re.IGNORECASE)


def topic_of(subject: str) -> str:
    [topic] = [t for t in phrases.TOPICS if t in subject.lower()]
    return topic


def reply(seed: int, subject: str, body: str, local: datetime = LATER, **kwargs):
    return compose_reply(seed, subject, body, FRANK, ALICE, local, **kwargs)


@PROPERTY
@given(original=st.text(max_size=120))
def test_re_is_put_once_whatever_the_original_subject(original: str):
    subject = reply_subject(original)
    assert subject.startswith("Re:")
    assert not _PREFIX.match(subject[3:]), subject
    assert "\r" not in subject and "\n" not in subject
    assert reply_subject(subject) == subject  # replying to the reply: still one "Re: "


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("Team lunch plans", "Re: Team lunch plans"),
        ("Re: Team lunch plans", "Re: Team lunch plans"),
        ("RE: re:Re[2]: Team lunch", "Re: Team lunch"),
        ("  Re :  Budget\r\n proposal ", "Re: Budget proposal"),
        ("Re: Fwd: notes", "Re: Fwd: notes"),
        ("", "Re:"),
    ],
)
def test_reply_subject_examples(original: str, expected: str):
    assert reply_subject(original) == expected


@PROPERTY
@given(seed=seeds, reply_seed=seeds, sent=local_times, local=local_times)
def test_a_reply_answers_the_originals_topic_at_the_repliers_local_time(
    seed: int, reply_seed: int, sent: datetime, local: datetime
):
    subject, body = compose(seed, ALICE, FRANK, sent, "Alice Smith")
    reply_subject_, reply_body = reply(reply_seed, subject, body, local, original_date=sent)
    assert reply_subject_ == f"Re: {subject}"
    own = own_text(reply_body)
    assert topic_of(subject) in own.lower()
    # The reply's own words fit the replier's local time, as new mail does (its subject is the
    # original's, whose words fitted the original's).
    check("", own, local)
    assert reply_body.isascii() and "\r" not in reply_body


@PROPERTY
@given(seed=seeds, local=local_times)
def test_a_thread_of_a_few_turns_keeps_its_topic_and_one_re(seed: int, local: datetime):
    rng = random.Random(seed)
    subject, body = compose(seed, ALICE, FRANK, local)
    topic = topic_of(subject)
    people = [(FRANK, ALICE), (ALICE, FRANK)]
    for turn in range(4):
        replier, original_sender = people[turn % 2]
        local += timedelta(hours=rng.randrange(1, 30))
        subject, body = compose_reply(
            rng.getrandbits(63), subject, body, replier, original_sender, local
        )
        assert subject.count("Re:") == 1
        assert topic in own_text(body).lower()


def test_a_reply_answers_the_asks_of_the_original():
    body = "Hi Frank,\n\nDo you have a few minutes to look at the budget proposal?\n\nBest,\nAlice"
    found = Original.read("Budget proposal", body)
    assert found.topic == "budget proposal" and found.asks == ("look",) and found.signer == "Alice"
    answers = set(phrases.ASKS["look"][1])
    pattern = re.compile("|".join(re.escape(a).replace(r"\{w\}", ".+?") for a in answers))
    for seed in range(100):
        _, text = reply(seed, "Budget proposal", body)
        own = own_text(text)
        assert pattern.search(own), own
        assert "Frank" not in own.split("\n", 1)[0]  # the greeting is Alice's


def test_the_day_offered_that_is_still_ahead_is_taken():
    """Alice offers Wednesday or Thursday on Monday; what Frank answers depends on his day."""
    body = "Hi Frank,\n\nWednesday or Thursday would both work for me.\n\nBest,\nAlice"
    assert Original.read("Slide deck", body).days == ("Wednesday", "Thursday")
    berlin = ZoneInfo("Europe/Berlin")

    def answers(day: int, sent: datetime | None = SENT) -> set[str]:
        local = datetime(2026, 3, day, 10, 0, tzinfo=berlin)
        found = set()
        for seed in range(80):
            own = own_text(reply(seed, "Slide deck", body, local, original_date=sent)[1])
            for m in re.finditer(r"(\w+) (?:works|is better) for me|Let us say (\w+)day", own):
                found.add(m.group(1) or f"{m.group(2)}day")
        return found

    # Tuesday: Wednesday is tomorrow, Thursday two days ahead; the same without the date
    # (the offer came yesterday or today, and of the two only Monday could have made it).
    assert answers(3) == {"Tomorrow", "Thursday"} == answers(3, sent=None)
    # Wednesday: Wednesday is today (not taken: which week?), Thursday is tomorrow.
    assert answers(4) == {"Tomorrow"}
    # Saturday: both have passed; next week's days are not what was offered.
    assert answers(7) == set()
    # Without the original's date on Wednesday, neither today nor yesterday offers those two
    # days: they are not answered rather than guessed.
    assert answers(4, sent=None) == set()


def test_replies_vary_and_greet_the_signer():
    subject, body = compose(5, ALICE, FRANK, SENT, "Alice Smith")
    replies = [reply(seed, subject, body)[1] for seed in range(200)]
    assert len(set(replies)) == 200
    openings = {own_text(r).split("\n\n")[1].split(". ")[0] for r in replies}
    assert len(openings) >= 15
    assert any(r.startswith(("Hi Alice,", "Hello Alice,", "Dear Alice,")) for r in replies)
    assert all("Frank" in own_text(r).split("\n")[-1] for r in replies)


def test_the_quote_is_the_original_after_an_attribution_in_the_repliers_timezone():
    subject, body = compose(5, ALICE, FRANK, SENT, "Alice Smith")
    quoting = [
        r for s in range(50) if "> " in (r := reply(s, subject, body, original_date=SENT)[1])
    ]
    assert 10 < len(quoting) < 50
    for text in quoting:
        own, _, quote = text.partition("\n> ")
        assert own.endswith("On Mon, 2 Mar 2026 at 03:12, Alice Smith wrote:")
        lines = ("> " + quote).split("\n")
        assert [line.removeprefix("> ").removeprefix(">") for line in lines] == body.split("\n")
    without_date = next(r for s in range(50) if "> " in (r := reply(s, subject, body))[1])
    assert "\nAlice Smith wrote:\n> " in without_date[1]


def test_a_reply_is_a_pure_function_of_its_inputs():
    subject, body = compose(9, ALICE, FRANK, SENT)
    assert reply(3, subject, body) == reply(3, subject, body)
    assert reply(3, subject, body) != reply(4, subject, body)


def test_mail_that_is_not_ours_still_gets_a_plain_reply():
    subject, body = reply(1, "Lunch?", "Want to grab lunch?")
    assert subject == "Re: Lunch?"
    assert UNKNOWN_TOPIC in own_text(body)
    with pytest.raises(ValueError, match="naive datetime"):
        compose_reply(1, "x", "y", FRANK, ALICE, datetime(2026, 3, 3, 9, 0))
    with pytest.raises(ValueError, match="naive datetime"):
        reply(1, "x", "y", original_date=datetime(2026, 3, 3, 9, 0))
    assert reply(1, "x", "y", original_date=SENT.astimezone(UTC))[0] == "Re: x"
