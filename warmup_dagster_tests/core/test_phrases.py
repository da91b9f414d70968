"""The phrase banks hold what `compose` relies on: two-word topics, short plain patterns, and
every time word filed under a condition that keeps it true."""

import re

import pytest

from warmup_dagster.core import phrases
from warmup_dagster.core.moments import CONDITIONS, Bank

CONDITIONED = {
    name: getattr(phrases, name)
    for name in (
        "WHEN",
        "GREETINGS_NAMED",
        "GREETINGS_PLAIN",
        "OPENERS",
        "TOPIC_LINES",
        "DETAILS",
        "CLOSINGS",
        "SIGN_OFFS",
        "REPLY_OPENERS",
        "REPLY_NEXT",
        "REPLY_CLOSINGS",
    )
}
PLAIN = {
    name: getattr(phrases, name)
    for name in (
        "TOPICS",
        "SUBJECTS",
        "REPLY_TOPIC_LINES",
        "REPLY_DAY",
        "REPLY_TOMORROW",
        "ROLE_WORDS",
    )
}
ASK_BANKS = {
    f"ASKS[{ask}].{part}": bank
    for ask, (cues, answers) in phrases.ASKS.items()
    for part, bank in (("cues", cues), ("answers", answers))
}
BANKS = (
    {name: [f for texts in bank.values() for f in texts] for name, bank in CONDITIONED.items()}
    | {name: list(bank) for name, bank in PLAIN.items()}
    | {name: list(bank) for name, bank in ASK_BANKS.items()}
)
# Words that say something about when: a phrase with one is filed under a condition...
TIME_WORDS = re.compile(
    r"\b(morning|afternoon|evening|tonight|today|tomorrow|yesterday|earlier|week|weekend|"
    r"month|monday|tuesday|wednesday|thursday|friday|saturday|sunday|now)\b",
    re.IGNORECASE,
)
# ... unless it stays true at every moment (or names days through `{d}`, always ahead).
TIMELESS_WITH_TIME_WORDS = {
    "next week",
    "next month",
    "Thanks again for your help last week.",
    "The morning slot seems to work for most people.",
    "We could also push it back a week.",
    "I made some progress on the {t} yesterday.",
    "I know things are hectic right now.",
    "I can also share the earlier version if useful.",
}


def test_subject_parts_keep_subjects_within_two_to_eight_words():
    assert all(len(topic.split()) == 2 for topic in phrases.TOPICS)
    assert all(len(pattern.replace("{t}", "").split()) <= 4 for pattern in phrases.SUBJECTS)
    assert all(len(when.split()) <= 2 for texts in phrases.WHEN.values() for when in texts)
    # No "budget update update": a topic never ends in the word a pattern puts after it.
    after = {m.group(1) for p in phrases.SUBJECTS if (m := re.search(r"\{t\},? (\S+)", p))}
    assert after and not [t for t in phrases.TOPICS if t.split()[-1] in after]


def test_placeholders_are_where_compose_fills_them():
    topic_lines = [f for texts in phrases.TOPIC_LINES.values() for f in texts]
    assert all(p.count("{t}") == 1 for p in phrases.SUBJECTS + tuple(topic_lines))
    assert all(p.count("{t}") == 1 for p in phrases.REPLY_TOPIC_LINES)
    named = [g for texts in phrases.GREETINGS_NAMED.values() for g in texts]
    assert all(g.count("{n}") == 1 for g in named)
    with_topic = {"SUBJECTS", "TOPIC_LINES", "REPLY_TOPIC_LINES", "REPLY_OPENERS"}
    assert not [f for k, bank in BANKS.items() if k not in with_topic for f in bank if "{t}" in f]
    allowed = {"{t}", "{n}", "{today}", "{d}", "{d2}", "{w}"}
    assert {p for bank in BANKS.values() for f in bank for p in re.findall(r"\{\w*\}", f)} <= (
        allowed
    )
    assert all(
        "{d2}" not in f or f.index("{d}") < f.index("{d2}") for b in BANKS.values() for f in b
    )


@pytest.mark.parametrize("name", sorted(BANKS))
def test_banks_are_plain_ascii_without_links_addresses_or_duplicates(name: str):
    bank = BANKS[name]
    assert bank and len(set(bank)) == len(bank), name
    for fragment in bank:
        assert fragment.isascii() and fragment == " ".join(fragment.split()), fragment
        assert not re.search(r"@|https?:|www\.|<|>|\$|!!", fragment), fragment


@pytest.mark.parametrize("name", sorted(CONDITIONED))
def test_every_condition_is_known_and_every_bank_can_fall_back(name: str):
    bank = CONDITIONED[name]
    for key in bank:
        assert set(key.split("+")) <= set(CONDITIONS), (name, key)
    # `Picker.pick` takes up to two phrases of a bank and needs a time-free fallback for each.
    assert len(Bank(bank).timeless) >= 4


@pytest.mark.parametrize("name", sorted(CONDITIONED))
def test_a_time_word_is_filed_under_a_condition_unless_it_is_true_at_every_moment(name: str):
    """The audit of every phrase: 'Monday', 'this week', 'earlier' never sit under `any`."""
    for text in CONDITIONED[name].get("any", ()):
        if "{d}" in text or text in TIMELESS_WITH_TIME_WORDS:
            continue
        assert not TIME_WORDS.search(text), (name, text)
        assert "{today}" not in text, (name, text)


def test_each_exception_to_the_audit_is_a_time_free_phrase_with_a_time_word():
    timeless = {f for bank in CONDITIONED.values() for f in bank.get("any", ())}
    assert timeless >= TIMELESS_WITH_TIME_WORDS
    assert all(TIME_WORDS.search(text) for text in TIMELESS_WITH_TIME_WORDS)


def test_no_weekday_is_written_out_except_where_its_condition_makes_it_today():
    for bank in CONDITIONED.values():
        for key, texts in bank.items():
            for text in texts:
                if re.search(r"\bFriday\b", text):
                    assert "friday" in key.split("+"), text
                for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Saturday", "Sunday"):
                    assert day not in text, text


def test_every_question_our_mail_asks_is_an_ask_a_reply_answers():
    asked = [
        f
        for bank in (phrases.TOPIC_LINES, phrases.DETAILS, phrases.CLOSINGS)
        for texts in bank.values()
        for f in texts
        if f.endswith("?") or f.startswith("Let me know")
    ]
    cues = [c for cue_bank, _ in phrases.ASKS.values() for c in cue_bank]
    unanswered = [f for f in asked if not any(c in f.lower() for c in cues)]
    # "Let me know if you have any questions" and the like need no answer of their own.
    assert len(unanswered) <= len(asked) // 3, unanswered
    assert not [f for f in asked if f.endswith("?") and f in unanswered]
