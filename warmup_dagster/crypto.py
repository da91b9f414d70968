"""Mailbox credentials encrypted at rest with a key derived from `WARMUP_SECRET_KEY`."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken

SECRET_KEY_VAR = "WARMUP_SECRET_KEY"
MIN_SECRET_LENGTH = 16


class SecretKeyError(ValueError):
    """`WARMUP_SECRET_KEY` is missing, too short, or not the key the data was written with."""


class Cipher:
    """Encrypts and decrypts credentials (Fernet: AES-128-CBC with HMAC-SHA256).

    Any sufficiently long passphrase works as the secret: the Fernet key is its SHA-256.
    """

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise SecretKeyError(
                f"{SECRET_KEY_VAR} must be at least {MIN_SECRET_LENGTH} characters long"
            )
        key = base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
        self._fernet = Fernet(key)

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


def cipher_from_env(environ: Mapping[str, str] | None = None) -> Cipher:
    """The deployment's cipher. Raises SecretKeyError naming the variable if it is unset."""
    secret = (os.environ if environ is None else environ).get(SECRET_KEY_VAR, "")
    if not secret:
        raise SecretKeyError(
            f"{SECRET_KEY_VAR} is not set: it encrypts mailbox passwords at rest "
            "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return Cipher(secret)
