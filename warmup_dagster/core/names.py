"""People's names in warmup mail: display names, first names for greetings, sign-offs.

A mailbox's display name is what its owner gave in the import (`display_name`), else one
derived from its address ('alice.smith42' -> 'Alice Smith'; role accounts such as 'info@'
become 'The Acme team'). It goes into `From:` (encoded there by the email package, never
pasted into the header), and its first word signs the mail as a person signs.

Message bodies are plain ASCII (`fold_ascii`): accents are dropped there, not in `From:`.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from warmup_dagster.core import phrases

MAX_DISPLAY_NAME = 200
# Characters that could make a display name pose as an address or break out of its quotes.
_ADDRESS_SPECIALS = set('<>@"\\')
# Control characters, line and paragraph separators, and invisible format characters (such
# as the right-to-left override, which can make a name read as something else).
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}
_NOT_PRINTABLE = re.compile(r"[^\n -~]")
# Words a signature never starts with alone ("Dr,", "The,").
_NOT_FIRST_NAMES = frozenset({"the", "dr", "mr", "mrs", "ms", "mx", "prof", "sir", "team"})


def fold_ascii(text: str) -> str:
    """Fold text to printable ASCII plus newline (accents dropped, other characters spaced).

    Args:
        text: Any text.

    Returns:
        The text with line breaks normalised to `\\n` and nothing outside ASCII 32-126.
    """
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    folded = folded.replace("\r\n", "\n").replace("\r", "\n")
    return _NOT_PRINTABLE.sub(" ", folded)


def display_name_problem(value: str) -> str | None:
    """What makes a given display name unusable in `From:`, if anything.

    Args:
        value: The name as given (the import's `display_name`), whitespace not yet collapsed.

    Returns:
        None when the name is usable (empty included: the name is then derived), else a
        short phrase saying what is wrong, for an error that names the row and field.
    """
    if any(ch in "\r\n" for ch in value):
        return "contains a line break"
    if "\x00" in value:
        return "contains a NUL character"
    hidden = [ch for ch in value if unicodedata.category(ch) in _HIDDEN_CATEGORIES]
    if hidden:
        return f"contains a control or invisible character (U+{ord(hidden[0]):04X})"
    name = " ".join(value.split())
    if len(name) > MAX_DISPLAY_NAME:
        return f"is longer than {MAX_DISPLAY_NAME} characters"
    if specials := sorted(_ADDRESS_SPECIALS & set(name)):
        shown = " ".join(specials)
        return f"contains {shown}, which a name in From: must not (it could pose as an address)"
    return None


def clean_display_name(value: str | None) -> str | None:
    """A given display name with its whitespace collapsed; None when empty.

    Args:
        value: A name that `display_name_problem` accepted, or None.

    Returns:
        The name as it is stored and shown, or None (derive it from the address).
    """
    name = " ".join((value or "").split())
    return name or None


def _domain_label(email: str) -> str:
    domain = email.strip().rpartition("@")[2].strip().strip(">").lower()
    if "@" not in email or not domain:
        raise ValueError(f"not an email address: {email!r}")
    return re.split(r"[^A-Za-z]+", domain.split(".")[0])[0]


def _local_words(email: str) -> list[str]:
    local = email.strip().rpartition("@")[0].split("+")[0]
    return [w for w in re.split(r"[._\-]+", fold_ascii(local).strip()) if w]


@functools.lru_cache(maxsize=65_536)
def first_name(email: str) -> str | None:
    """A first name from an address's local part ('alice.smith42' -> 'Alice'), if it has one.

    Args:
        email: An address.

    Returns:
        The capitalised first word of the local part, or None for role accounts ('info@')
        and local parts without a word of two letters or more.
    """
    words = _local_words(email)
    letters = re.sub(r"[^A-Za-z]", "", words[0]) if words else ""
    if len(letters) < 2 or letters.lower() in phrases.ROLE_WORDS:
        return None
    return letters.capitalize()


@functools.lru_cache(maxsize=65_536)
def derived_display_name(email: str) -> str:
    """The display name of a mailbox that was given none, from its address.

    Args:
        email: The mailbox's address.

    Returns:
        'alice.smith42@...' -> 'Alice Smith', 'j.doe@...' -> 'J. Doe', a role account
        'info@acme.test' -> 'The Acme team', and 'The team' when the domain has no word either.

    Raises:
        ValueError: `email` is not an address.
    """
    label = _domain_label(email)
    local = fold_ascii(email.strip().rpartition("@")[0].split("+")[0])
    words = []
    for word in [w for w in re.split(r"[._]+", local) if w][:3]:
        parts = [re.sub(r"[^A-Za-z]", "", part) for part in word.split("-")]
        parts = [part.capitalize() for part in parts if part]
        if sum(len(part) for part in parts) >= 2:
            words.append("-".join(parts))
        elif parts:
            words.append(f"{parts[0].upper()}.")
    role = bool(words) and words[0].lower() in phrases.ROLE_WORDS
    if not role and any(not word.endswith(".") for word in words):
        return " ".join(words)
    return f"The {label.capitalize()} team" if len(label) >= 2 else "The team"


def display_name(email: str, given: str | None) -> str:
    """The name a mailbox's mail carries: the given one, else the derived one.

    Args:
        email: The mailbox's address.
        given: Its stored `display_name`, or None.

    Returns:
        The name for `From:` (not folded: the header encodes what ASCII cannot carry).
    """
    return clean_display_name(given) or derived_display_name(email)


def given_first_name(name: str) -> str | None:
    """The first name of a display name, folded to ASCII ('José García' -> 'Jose').

    Args:
        name: A display name.

    Returns:
        Its first word when that looks like a first name (two letters or more, not a title
        or 'The'), else None.
    """
    words = fold_ascii(name).split()
    if len(words) < 2:
        return None
    letters = re.sub(r"[^A-Za-z'-]", "", words[0])
    if sum(ch.isalpha() for ch in letters) < 2 or letters.lower() in _NOT_FIRST_NAMES:
        return None
    return letters


def sign_off_name(email: str, name: str, full: bool) -> str:
    """How a message from this mailbox with this display name is signed, in ASCII.

    Args:
        email: The sender's address.
        name: The sender's display name.
        full: Sign with the whole name even when it has a first name (some people do).

    Returns:
        The first name, or the whole name folded to ASCII; a name of which ASCII keeps
        nothing (another script) gives way to the one derived from the address.
    """
    for candidate in (name, derived_display_name(email)):
        folded = " ".join(fold_ascii(candidate).split())
        if sum(ch.isalpha() for ch in folded) >= 2:
            return (None if full else given_first_name(folded)) or folded
    return "The team"
