"""Text from data, made safe to print on a terminal.

Mailbox addresses, names, pause reasons (an SMTP server's reply among them) and error
messages reach the CLI's output from imported files and from remote servers. A terminal
obeys control characters in them: ESC starts sequences that move the cursor, recolour,
retitle the window or (in some terminals) write files, CR returns to overwrite what a line
said, BEL rings, and the bidirectional overrides (Trojan Source) reorder what is shown.
`printable` writes each of them as a visible escape instead; `EscapingGroup` does so for every
error message a command ends with.
"""

from __future__ import annotations

import re
from typing import Any

import click

# C0 and C1 controls, DEL, and the invisible characters that change what a line looks like:
# bidirectional marks, embeddings, overrides and isolates, and the Unicode line separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` with every control character written as an escape (`\\x1b`, `\\r`, `\\u202e`).

    Args:
        text: Text that came from data.
        newlines: Keep LF as a line break (a multi-line message of ours); CR is escaped
            either way.

    Returns:
        The text, safe to print; unchanged when it holds nothing to escape.
    """
    if not newlines:
        return _UNSAFE.sub(_escape, text)
    return "\n".join(_UNSAFE.sub(_escape, line) for line in text.split("\n"))


class EscapingGroup(click.Group):
    """A click group whose commands' error messages are printed through `printable` (line
    breaks kept): most carry data (an address, a reason, a rejected row)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            exc.message = printable(exc.message, newlines=True)
            raise
