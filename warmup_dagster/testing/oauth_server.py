"""A real OAuth2 provider on loopback, for tests only: token, device, authorization and
introspection endpoints (http.server in a thread).

`OAuthServer` issues refresh tokens (`grant`, the device-code flow once a user code is
approved, or the authorization-code flow with PKCE), refreshes them into access tokens that
expire `lifetime` real seconds later (as a provider counts `expires_in`; that many times its
speed on a scaled clock it was given), refuses revoked refresh tokens with
`invalid_grant`, answers a number of requests with a 503 on demand (`fail_next`), and tells
whether an access token is active (`validate` in process for the test SMTP server;
`/introspect` over HTTP, RFC 7662, for Dovecot's `oauth2` passdb).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections import Counter
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlencode, urlsplit

from warmup_dagster.clock import Clock, RealClock


class OAuthServer:
    """The local provider (see the module docstring).

    Args:
        client_id: The one client it knows.
        client_secret: Its secret (sent in the body or by HTTP Basic); empty: a public client.
        lifetime: Real seconds an access token lives (`expires_in`): `lifetime * clock.speed`
            on `clock`, as the token store reads it.
        clock: What expiry is judged by (the tests' fixed clock); real time if None.
        approve_after_polls: Device codes are approved for `auto_approve`'s user after this
            many polls that got `authorization_pending` (the owner typing the code meanwhile).
        host: Address to listen on.
    """

    def __init__(
        self,
        *,
        client_id: str = "warmup-test-client",
        client_secret: str = "warmup-test-secret",
        lifetime: float = 3600,
        clock: Clock | None = None,
        approve_after_polls: int = 1,
        host: str = "127.0.0.1",
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.lifetime = lifetime
        self.clock: Clock = clock or RealClock()
        self.approve_after_polls = approve_after_polls
        self.host = host
        self.auto_approve: str | None = None  # the user device codes are approved for
        self._lock = threading.Lock()
        self._refresh: dict[str, str] = {}  # refresh token -> user
        self._revoked: set[str] = set()  # users whose consent is revoked
        self._access: dict[str, tuple[str, datetime]] = {}  # access token -> (user, expiry)
        self._devices: dict[str, dict] = {}  # device code -> its state
        self._codes: dict[str, tuple[str, str, str]] = {}  # code -> (user, redirect, challenge)
        self._failures = 0
        self.refreshes: Counter[str] = Counter()  # successful refreshes by user
        self.refused: Counter[str] = Counter()  # refresh requests refused, by user
        self.introspections = 0
        self._http: ThreadingHTTPServer | None = None

    # -- what a test does ---------------------------------------------------------------

    def grant(self, user: str) -> str:
        """A new refresh token for `user`, as a completed consent would give."""
        token = "rt-" + secrets.token_urlsafe(16)
        with self._lock:
            self._refresh[token] = user
            self._revoked.discard(user)
        return token

    def revoke(self, user: str) -> None:
        """The user withdrew consent: their refresh and access tokens stop working."""
        with self._lock:
            self._revoked.add(user)

    def drop_access(self, user: str) -> None:
        """End the user's access tokens before their expiry (as a provider does after a
        password change); the refresh token keeps working."""
        with self._lock:
            self._access = {t: v for t, v in self._access.items() if v[0] != user}

    def fail_next(self, count: int) -> None:
        """Answer the next `count` token requests with 503 (a provider's bad minute)."""
        with self._lock:
            self._failures = count

    def validate(self, token: str) -> str | None:
        """The user of an active access token; None for an unknown, expired or revoked one."""
        with self._lock:
            found = self._access.get(token)
            if found is None or found[0] in self._revoked or self.clock.now() >= found[1]:
                return None
            return found[0]

    @property
    def url(self) -> str:
        assert self._http is not None, "the server is not started"
        return f"http://{self.host}:{self._http.server_address[1]}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def device_url(self) -> str:
        return f"{self.url}/device"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/authorize"

    @property
    def introspection_url(self) -> str:
        return f"{self.url}/introspect"

    def settings(self) -> dict[str, str]:
        """The `WARMUP_OAUTH_GENERIC_*` variables that point the generic provider here."""
        return {
            "WARMUP_OAUTH_GENERIC_TOKEN_URL": self.token_url,
            "WARMUP_OAUTH_GENERIC_DEVICE_URL": self.device_url,
            "WARMUP_OAUTH_GENERIC_AUTHORIZE_URL": self.authorize_url,
            "WARMUP_OAUTH_GENERIC_CLIENT_ID": self.client_id,
            "WARMUP_OAUTH_GENERIC_CLIENT_SECRET": self.client_secret,
            "WARMUP_OAUTH_GENERIC_SCOPES": "mail offline_access",
        }

    def start(self) -> None:
        if self._http is not None:
            return
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = owner._answer(self.path, form, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                """The authorization endpoint: a consenting `auto_approve` user is sent back
                to the client's redirect URI with a code (or `access_denied` when none)."""
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                self.send_response(302)
                self.send_header("Location", owner._authorized(query))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the tests read the counters, not a log."""

        self._http = ThreadingHTTPServer((self.host, 0), Handler)
        threading.Thread(target=self._http.serve_forever, name="oauth-server", daemon=True).start()

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- the endpoints --------------------------------------------------------------------

    def _answer(
        self, path: str, form: dict[str, str], authorization: str | None
    ) -> tuple[int, dict]:
        if path == "/introspect":
            with self._lock:
                self.introspections += 1
            user = self.validate(form.get("token", ""))
            if user is None:
                return 200, {"active": False}
            return 200, {"active": True, "username": user, "email": user}
        if not self._client_ok(form, authorization):
            return 401, {"error": "invalid_client", "error_description": "unknown client"}
        with self._lock:
            if self._failures:
                self._failures -= 1
                return 503, {"error": "temporarily_unavailable"}
        if path == "/device":
            return 200, self._new_device()
        if path != "/token":
            return 404, {"error": "not_found"}
        grant = form.get("grant_type")
        if grant == "refresh_token":
            return self._refreshed(form.get("refresh_token", ""))
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            return self._device_token(form.get("device_code", ""))
        if grant == "authorization_code":
            return self._code_token(form)
        return 400, {"error": "unsupported_grant_type"}

    def _client_ok(self, form: dict[str, str], authorization: str | None) -> bool:
        if authorization and authorization.startswith("Basic "):
            given_id, _, given_secret = base64.b64decode(authorization[6:]).decode().partition(":")
        else:
            given_id, given_secret = form.get("client_id", ""), form.get("client_secret", "")
        return given_id == self.client_id and given_secret == self.client_secret

    def _refreshed(self, refresh_token: str) -> tuple[int, dict]:
        with self._lock:
            user = self._refresh.get(refresh_token)
            if user is None or user in self._revoked:
                self.refused[user or "?"] += 1
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                }
            self.refreshes[user] += 1
            return 200, self._issue(user)

    def _issue(self, user: str) -> dict:
        """An access token for `user` (the lock held)."""
        token = "at-" + secrets.token_urlsafe(16)
        lives = timedelta(seconds=self.lifetime * self.clock.speed)
        self._access[token] = (user, self.clock.now() + lives)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}

    def _authorized(self, query: dict[str, str]) -> str:
        """Where the browser goes after the consent page: the redirect URI with a code."""
        redirect = query.get("redirect_uri", "")
        state = query.get("state", "")
        if self.auto_approve is None or query.get("client_id") != self.client_id:
            return f"{redirect}?{urlencode({'error': 'access_denied', 'state': state})}"
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = (self.auto_approve, redirect, query.get("code_challenge", ""))
        return f"{redirect}?{urlencode({'code': code, 'state': state})}"

    def _code_token(self, form: dict[str, str]) -> tuple[int, dict]:
        """The code's tokens, if its redirect URI and PKCE verifier (S256) match."""
        with self._lock:
            found = self._codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if found is None or found[1] != form.get("redirect_uri") or found[2] != challenge.decode():
            return 400, {"error": "invalid_grant", "error_description": "bad code"}
        refresh = self.grant(found[0])
        with self._lock:
            return 200, {**self._issue(found[0]), "refresh_token": refresh}

    def _new_device(self) -> dict:
        device, user_code = secrets.token_urlsafe(16), secrets.token_hex(4).upper()
        with self._lock:
            self._devices[device] = {"polls": 0, "user": None}
        return {
            "device_code": device,
            "user_code": user_code,
            "verification_uri": f"{self.url}/verify",
            "expires_in": 600,
            "interval": 1,
        }

    def _device_token(self, device_code: str) -> tuple[int, dict]:
        with self._lock:
            state = self._devices.get(device_code)
            if state is None:
                return 400, {"error": "expired_token"}
            state["polls"] += 1
            if state["polls"] <= self.approve_after_polls or self.auto_approve is None:
                return 400, {"error": "authorization_pending"}
            del self._devices[device_code]
            user = self.auto_approve
        refresh = self.grant(user)
        with self._lock:
            return 200, {**self._issue(user), "refresh_token": refresh}
