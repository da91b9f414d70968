"""Display names: derived from addresses, checked when given, and how mail is signed."""

import pytest

from warmup_dagster.core.names import (
    MAX_DISPLAY_NAME,
    clean_display_name,
    derived_display_name,
    display_name,
    display_name_problem,
    given_first_name,
    sign_off_name,
)


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("alice.smith42@acme.test", "Alice Smith"),
        ("bob42@acme.test", "Bob"),
        ("carol_jones+warm@acme.test", "Carol Jones"),
        ("j.doe@acme.test", "J. Doe"),
        ("mary-ann.van-dyke@acme.test", "Mary-Ann Van-Dyke"),
        ("info@acme.test", "The Acme team"),
        ("sales.team@globex-sales.test", "The Globex team"),
        ("x1@42.test", "The team"),
    ],
)
def test_a_name_is_derived_from_the_address(email: str, name: str):
    assert derived_display_name(email) == name
    assert display_name(email, None) == name == display_name(email, "   ")


def test_a_given_name_wins_with_its_whitespace_collapsed():
    assert display_name("info@acme.test", "  Ann \t Lee ") == "Ann Lee"
    assert clean_display_name("") is None and clean_display_name(None) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Ann\r\nBcc: all@x.test", "contains a line break"),
        ("Ann\nLee", "contains a line break"),
        ("Ann\x00Lee", "contains a NUL character"),
        ("Ann\x1bLee", "control or invisible character (U+001B)"),
        ("Ann\u202eeeL", "control or invisible character (U+202E)"),
        ("Ann\u2028Lee", "contains a control or invisible character (U+2028)"),
        ("x" * (MAX_DISPLAY_NAME + 1), f"longer than {MAX_DISPLAY_NAME} characters"),
        ("ceo@bank.test", "contains @"),
        ("Ann <ceo@bank.test>", "contains < > @"),
        ('Ann" <ceo@bank.test', 'contains " < @'),
        ("Ann \\ Lee", "contains \\"),
    ],
)
def test_unusable_names_are_refused_with_what_is_wrong(value: str, problem: str):
    found = display_name_problem(value)
    assert found is not None and problem in found


@pytest.mark.parametrize(
    "value",
    ["", "Ann Lee", "José García", "Grace Thompson, Umbrella", "O'Brien", "张伟", "x" * 200],
)
def test_ordinary_names_are_accepted(value: str):
    assert display_name_problem(value) is None


def test_signing_with_the_first_name_or_the_whole_name():
    assert given_first_name("José García") == "Jose"
    assert given_first_name("Dr. Jane Doe") is None and given_first_name("The Acme team") is None
    assert given_first_name("Alice") is None  # one word: it is the whole name
    assert sign_off_name("a@x.test", "José García", full=False) == "Jose"
    assert sign_off_name("a@x.test", "José García", full=True) == "Jose Garcia"
    assert sign_off_name("a@x.test", "The Acme team", full=False) == "The Acme team"
    assert sign_off_name("wei.zhang@x.test", "张伟", full=False) == "Wei"
    assert sign_off_name("x1@42.test", "张伟", full=False) == "The team"
