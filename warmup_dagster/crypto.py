"""Mailbox credentials encrypted at rest with a key derived from `WARMUP_SECRET_KEY`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken

from warmup_dagster.core.content import token_key

SECRET_KEY_VAR = "WARMUP_SECRET_KEY"
# The key `warmup secrets rotate` re-keys the credentials to.
NEW_SECRET_KEY_VAR = "WARMUP_NEW_SECRET_KEY"
MIN_SECRET_LENGTH = 16
GENERATE_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# What the key check value is an HMAC of: a fixed text, so it says which key made it and
# nothing else (`warmup_dagster.secrets.keycheck`).
CHECK_LABEL = b"warmup-dagster key check v1"


class SecretKeyError(ValueError):
    """`WARMUP_SECRET_KEY` is missing, too short, or not the key the data was written with."""


def secret_problem(secret: str) -> str | None:
    """Why `secret` can't be the deployment key, or None when it can.

    Leading or trailing whitespace is refused: a key copied with its newline on one machine
    and without it on another would be two keys, and each would encrypt with its own.
    """
    if not secret:
        return "is not set"
    if secret != secret.strip():
        return "has leading or trailing whitespace"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    return None


def unusable_key_message(var: str, problem: str) -> str:
    """The one message every command and run gives for an unusable key."""
    return (
        f"{var} {problem}: it must be at least {MIN_SECRET_LENGTH} characters without "
        f"surrounding whitespace; it encrypts mailbox passwords at rest ({GENERATE_HINT})"
    )


class Cipher:
    """Encrypts and decrypts credentials (Fernet: AES-128-CBC with HMAC-SHA256).

    Any sufficiently long passphrase works as the secret: the Fernet key is its SHA-256.
    """

    def __init__(self, secret: str, var: str = SECRET_KEY_VAR) -> None:
        problem = secret_problem(secret)
        if problem is not None:
            raise SecretKeyError(unusable_key_message(var, problem))
        digest = hashlib.sha256(secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self._check = hmac.new(digest, CHECK_LABEL, hashlib.sha256).hexdigest()
        self._token_key = token_key(secret)

    @property
    def check_value(self) -> str:
        """An HMAC of a fixed text under this key: stored, it names the key the database's
        credentials are encrypted with, without revealing it."""
        return self._check

    @property
    def derived_token_key(self) -> bytes:
        """The message-token key this key derives (`core.content.token_key`): the one a
        database stores with its first check and keeps across rotations."""
        return self._token_key

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise SecretKeyError(
                f"a stored credential can't be decrypted: {SECRET_KEY_VAR} is not the key "
                "it was encrypted with"
            ) from None

    def __repr__(self) -> str:
        return "Cipher(<secret>)"


def cipher_from_env(environ: Mapping[str, str] | None = None, var: str = SECRET_KEY_VAR) -> Cipher:
    """The cipher of the key in `var` (default: the deployment's). Raises SecretKeyError with
    the one message for a missing or unusable key."""
    return Cipher((os.environ if environ is None else environ).get(var, ""), var)
