"""The phrase banks hold what `compose` relies on: two-word topics, short plain patterns."""

import re

import pytest

from warmup_dagster.core import phrases

BANKS = {
    name: getattr(phrases, name)
    for name in (
        "TOPICS",
        "SUBJECTS",
        "WHEN",
        "GREETINGS_NAMED",
        "GREETINGS_PLAIN",
        "OPENERS",
        "TOPIC_LINES",
        "DETAILS",
        "CLOSINGS",
        "SIGN_OFFS",
        "ROLE_WORDS",
    )
}


def test_subject_parts_keep_subjects_within_two_to_eight_words():
    assert all(len(topic.split()) == 2 for topic in phrases.TOPICS)
    assert all(len(pattern.replace("{t}", "").split()) <= 4 for pattern in phrases.SUBJECTS)
    assert all(len(when.split()) <= 2 for when in phrases.WHEN)
    # No "budget update update": a topic never ends in the word a pattern puts after it.
    after = {m.group(1) for p in phrases.SUBJECTS if (m := re.search(r"\{t\},? (\S+)", p))}
    assert after and not [t for t in phrases.TOPICS if t.split()[-1] in after]


def test_placeholders_are_where_compose_fills_them():
    assert all(p.count("{t}") == 1 for p in phrases.SUBJECTS + phrases.TOPIC_LINES)
    assert all(g.count("{n}") == 1 for g in phrases.GREETINGS_NAMED)
    others = {k: v for k, v in BANKS.items() if k not in ("SUBJECTS", "TOPIC_LINES")}
    assert not [f for bank in others.values() for f in bank if "{t}" in f]


@pytest.mark.parametrize("name", sorted(BANKS))
def test_banks_are_plain_ascii_without_links_addresses_or_duplicates(name: str):
    bank = BANKS[name]
    assert bank and len(set(bank)) == len(bank), name
    for fragment in bank:
        assert fragment.isascii() and fragment == " ".join(fragment.split()), fragment
        assert not re.search(r"@|https?:|www\.|<|>|\$|!!", fragment), fragment
