"""Talking to a provider's OAuth2 endpoints, through authlib's requests client.

`refresh` trades a refresh token for an access token; `start_device` and `poll_device` are the
device-code flow (RFC 8628), `authorization_url` and `exchange_code` the browser's
authorization-code flow with PKCE, by which `warmup mailboxes connect` gets a refresh token. Every
answer is one of three: a `Token`, `Refused` (the provider said no for good: revoked or
expired consent, a wrong client; asking again will not help) or `Unavailable` (a 5xx, 429, a
timeout, a dropped connection: asking again later may).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session, OAuthError

from warmup_dagster.oauth.providers import Provider

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# OAuth2 error codes that say "later" rather than "no" (RFC 6749 5.2 and 4.1.2.1).
_TEMPORARY_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
# HTTP statuses that say "later": a timeout and too many requests (5xx are temporary too).
_TEMPORARY_STATUSES = frozenset({408, 429})
# RFC 8628 3.5: the interval to poll at when the provider names none, and what slow_down adds.
DEVICE_INTERVAL_S = 5
SLOW_DOWN_S = 5


class Refused(Exception):
    """The provider refused for good (`error` is its OAuth2 error code, or the HTTP status)."""

    def __init__(self, error: str, description: str | None) -> None:
        self.error, self.description = error, description
        super().__init__(f"{error}: {description}" if description else error)


class Unavailable(Exception):
    """The provider could not answer now; the same request may work later."""


@dataclass(frozen=True)
class Token:
    """What a token endpoint gave: the access token, its lifetime in the provider's (real)
    seconds, and a new refresh token when the provider rotates them."""

    access_token: str = field(repr=False)
    expires_in: float
    refresh_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DeviceCode:
    """A started device-code flow: what the owner is shown and what is polled with."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float


# A token endpoint that names no lifetime: assume an hour, the usual one.
DEFAULT_LIFETIME_S = 3600.0


def _session(provider: Provider, timeout: float, scope: str | None = None) -> OAuth2Session:
    return OAuth2Session(
        provider.client_id,
        provider.client_secret or None,
        # Public clients (a Microsoft device-flow app) have no secret and send their id.
        token_endpoint_auth_method="client_secret_post" if provider.client_secret else "none",
        scope=scope,
        default_timeout=timeout,
    )


def _token(answer: dict) -> Token:
    try:
        return Token(
            str(answer["access_token"]),
            float(answer.get("expires_in") or DEFAULT_LIFETIME_S),
            answer.get("refresh_token"),
        )
    except (KeyError, TypeError, ValueError):
        raise Unavailable("the token endpoint answered without a usable access_token") from None


def _call(what: Callable[[], dict]) -> dict:
    """Run one authlib request, its failures sorted into `Refused` and `Unavailable`."""
    try:
        return what()
    except OAuthError as exc:
        error = exc.error or "error"
        if error in _TEMPORARY_ERRORS:
            raise Unavailable(f"{error}: {exc.description or ''}".rstrip(": ")) from None
        raise Refused(error, exc.description) from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status >= 500 or status in _TEMPORARY_STATUSES:
            raise Unavailable(f"HTTP {status} from the token endpoint") from None
        raise Refused(f"HTTP {status}", "the token endpoint refused the request") from None
    except requests.Timeout:
        raise Unavailable("the token endpoint timed out") from None
    except (requests.RequestException, ValueError) as exc:
        # ValueError: authlib's "not a JSON object" for a 2xx page that is no token answer.
        raise Unavailable(f"the token endpoint could not be reached: {exc}") from None


def refresh(provider: Provider, refresh_token: str, timeout: float) -> Token:
    """Trade `refresh_token` for a new access token (one request, no retry).

    Raises:
        Refused: invalid_grant (revoked, expired consent), a wrong client, ...
        Unavailable: 5xx, 429, timeout, connection trouble.
    """
    with _session(provider, timeout) as session:
        return _token(
            _call(lambda: session.refresh_token(provider.token_url, refresh_token=refresh_token))
        )


def start_device(provider: Provider, timeout: float) -> DeviceCode:
    """Ask the provider for a device code and the code the owner is to enter.

    Raises:
        Refused, Unavailable: as `refresh`.
    """
    if not provider.device_url:
        raise Refused("no_device_endpoint", f"{provider.name} has no device endpoint configured")
    with _session(provider, timeout, provider.scopes) as session:

        def ask() -> dict:
            # Authenticated as at the token endpoint (RFC 8628 3.1): authlib adds the client.
            response = session.post(
                provider.device_url,
                data={"scope": provider.scopes},
                auth=session.client_auth(session.token_endpoint_auth_method),
                withhold_token=True,
            )
            # The device endpoint answers errors as the token endpoint does (RFC 8628 3.2).
            return session.parse_response_token(response)

        answer = _call(ask)
    try:
        return DeviceCode(
            device_code=str(answer["device_code"]),
            user_code=str(answer["user_code"]),
            # Google names it verification_url; RFC 8628 verification_uri.
            verification_uri=str(answer.get("verification_uri") or answer["verification_url"]),
            verification_uri_complete=answer.get("verification_uri_complete"),
            expires_in=float(answer.get("expires_in") or 900),
            interval=float(answer.get("interval") or DEVICE_INTERVAL_S),
        )
    except (KeyError, TypeError, ValueError):
        raise Unavailable("the device endpoint answered without a device code") from None


def poll_device(
    provider: Provider,
    device: DeviceCode,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Token:
    """Poll the token endpoint until the owner approved the device code (RFC 8628 3.4-3.5).

    Raises:
        Refused: the owner declined (access_denied), the code expired (expired_token), ...
        Unavailable: the provider stayed unavailable until the code expired.
    """
    interval = device.interval
    end = time.monotonic() + device.expires_in
    with _session(provider, timeout, provider.scopes) as session:
        while True:
            sleep(interval)
            try:
                return _token(
                    _call(
                        lambda: session.fetch_token(
                            provider.token_url,
                            grant_type=DEVICE_GRANT,
                            device_code=device.device_code,
                        )
                    )
                )
            except Refused as exc:
                if exc.error == "slow_down":
                    interval += SLOW_DOWN_S
                elif exc.error != "authorization_pending":
                    raise
            except Unavailable:
                if time.monotonic() >= end:
                    raise
            if time.monotonic() >= end:
                raise Refused("expired_token", "the code was not entered in time")


def _browser_session(
    provider: Provider, redirect_uri: str, timeout: float, state: str
) -> OAuth2Session:
    session = _session(provider, timeout, provider.scopes)
    session.redirect_uri = redirect_uri
    session.code_challenge_method = "S256"
    session.state = state
    return session


def authorization_url(provider: Provider, redirect_uri: str, code_verifier: str, state: str) -> str:
    """The URL the owner opens to consent (authorization code with PKCE, RFC 7636), which
    sends the browser back to `redirect_uri` with the code."""
    if not provider.authorize_url:
        raise Refused(
            "no_authorize_endpoint", f"{provider.name} has no authorization endpoint configured"
        )
    with _browser_session(provider, redirect_uri, 0, state) as session:
        url, _ = session.create_authorization_url(
            provider.authorize_url,
            state=state,
            code_verifier=code_verifier,
            **dict(provider.authorize_params),
        )
    return url


def exchange_code(
    provider: Provider,
    redirect_uri: str,
    authorization_response: str,
    code_verifier: str,
    state: str,
    timeout: float,
) -> Token:
    """Trade the code the browser came back with for tokens; authlib checks the state.

    Raises:
        Refused: a wrong state, a code refused; Unavailable: as `refresh`.
    """
    with _browser_session(provider, redirect_uri, timeout, state) as session:
        try:
            return _token(
                _call(
                    lambda: session.fetch_token(
                        provider.token_url,
                        authorization_response=authorization_response,
                        code_verifier=code_verifier,
                    )
                )
            )
        except AuthlibBaseError as exc:  # a state that does not match, no code
            raise Refused(exc.error or "invalid_request", exc.description) from None
