"""Credentials kept out of every text a server or library hands back.

A server may echo what it was sent: the password as typed, or the base64 an SMTP AUTH PLAIN or
LOGIN exchange carried it in; a library may quote it URL- or quoted-printable-encoded. Every
error, reply and reason a run stores or logs passes `scrub` with the account's forms first.
"""

from __future__ import annotations

import base64
import quopri
import urllib.parse

MASK = "********"


def secret_forms(password: str, username: str = "") -> tuple[str, ...]:
    """The texts in which `password` may come back, longest first.

    As is; base64 (standard and URL-safe, with and without padding); quoted-printable;
    URL-encoded (`%20` and `+` for spaces); and the base64 payloads of SMTP AUTH PLAIN
    (`\\0username\\0password`, and with the username as authorization id) and AUTH LOGIN (the
    password alone, as above).
    """
    if not password:
        return ()
    raw = password.encode()
    payloads = [raw, b"\0" + username.encode() + b"\0" + raw]
    if username:
        payloads.append(username.encode() + b"\0" + username.encode() + b"\0" + raw)
    forms = {password}
    for payload in payloads:
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(payload).decode("ascii")
            forms |= {encoded, encoded.rstrip("=")}
    forms.add(quopri.encodestring(raw).decode("ascii").removesuffix("=\n"))
    forms |= {urllib.parse.quote(password, safe=""), urllib.parse.quote_plus(password, safe="")}
    return tuple(sorted(forms, key=len, reverse=True))


def scrub(text: str, forms: tuple[str, ...]) -> str:
    """`text` with every one of `forms` (see `secret_forms`) replaced by a mask."""
    for form in forms:
        if form and form in text:
            text = text.replace(form, MASK)
    return text
