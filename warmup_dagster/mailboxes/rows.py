"""Parsing and validating the mailbox CSV: pure functions, no database.

Each row becomes a `MailboxRow` or one or more `RowError`s naming the line and the field.
Checks that need the database (plans, limits) live in `importer.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from zoneinfo import available_timezones

from warmup_dagster.core.controls import CONTROL_RE
from warmup_dagster.core.names import clean_display_name, display_name_problem
from warmup_dagster.db.models import Security
from warmup_dagster.mailboxes.addresses import normal_email, normal_host
from warmup_dagster.oauth.providers import PROVIDERS

REQUIRED_COLUMNS = (
    "email",
    "user",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_username",
    "smtp_password",
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_username",
    "imap_password",
)
OPTIONAL_COLUMNS = (
    "display_name",
    "timezone",
    "daily_limit",
    "ramp_start",
    "ramp_step",
    "reply_rate",
    "weekdays_only",
    "plan",
    "auth",
    "oauth_provider",
    "oauth_refresh_token",
)
# How a mailbox signs in (`auth`): with its passwords, or with OAuth2 (XOAUTH2).
PASSWORD = "password"
OAUTH2 = "oauth2"

# Defaults for a mailbox the CSV says nothing about: a gentle ramp to 40 a day.
DEFAULT_DAILY_LIMIT = 40
DEFAULT_RAMP_START = 2
DEFAULT_RAMP_STEP = 2
DEFAULT_REPLY_RATE = 0.3
MAX_DAILY_LIMIT = 2_000
MAX_FIELD_LENGTH = 320
# Refresh tokens are opaque and long at some providers (Microsoft's run past 1,000 characters).
MAX_TOKEN_LENGTH = 8_192

_PROVIDERS = ", ".join(PROVIDERS)
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0", ""}


@dataclass(frozen=True)
class RowError:
    """What is wrong with one field of one CSV line (line 1 is the header)."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


@dataclass(frozen=True)
class MailboxRow:
    """A validated CSV row. Passwords and the refresh token are plaintext here and must not
    be logged."""

    line: int
    email: str
    display_name: str | None
    user: str
    smtp_host: str
    smtp_port: int
    smtp_security: Security
    smtp_username: str
    smtp_password: str
    imap_host: str
    imap_port: int
    imap_security: Security
    imap_username: str
    imap_password: str
    timezone: str | None
    daily_limit: int
    ramp_start: int
    ramp_step: int
    reply_rate: float
    weekdays_only: bool
    plan: str | None
    # OAuth2: the provider (`oauth.providers.PROVIDERS`) and, when the CSV has it, the
    # refresh token; both None for a password mailbox.
    oauth_provider: str | None = None
    oauth_refresh_token: str | None = None

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[1]

    def __repr__(self) -> str:  # never show passwords, even in a traceback
        return f"MailboxRow(line={self.line}, email={self.email!r}, user={self.user!r})"


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


class _RowParser:
    """Collects every error of one row instead of stopping at the first."""

    def __init__(self, line: int, raw: dict[str, str]) -> None:
        self.line = line
        self.raw = raw
        self.errors: list[RowError] = []

    def fail(self, field: str, message: str) -> None:
        self.errors.append(RowError(self.line, field, message))

    def text(self, field: str, *, required: bool = True, limit: int = MAX_FIELD_LENGTH) -> str:
        """The value without its surrounding whitespace. A control character is refused
        wherever it is: a CR, LF or NUL at either end is not whitespace to drop silently (only
        spaces and tabs are)."""
        given = self.raw.get(field) or ""
        value = given.strip()
        if CONTROL_RE.search(given.strip(" \t")):
            self.fail(field, "contains control characters")
        elif required and not value:
            self.fail(field, "is empty")
        elif len(value) > limit:
            self.fail(field, f"is longer than {limit} characters")
        return value

    def secret(self, field: str, *, required: bool, limit: int = MAX_FIELD_LENGTH) -> str:
        """A password or a refresh token: kept exactly as given (spaces are a password's own),
        only checked. The messages never quote it."""
        value = self.raw.get(field) or ""
        if required and not value:
            self.fail(field, "is empty")
        elif len(value) > limit:
            self.fail(field, f"is longer than {limit} characters")
        elif CONTROL_RE.search(value):
            self.fail(field, "contains control characters")
        return value

    def email(self, field: str) -> str:
        """An address, lowercased, its domain in IDNA (`xn--`) form (`addresses`)."""
        value = self.text(field)
        address, problem = normal_email(value)
        if value and problem:
            self.fail(field, problem)
        return address

    def host(self, field: str) -> str:
        """A host name (IDNA form) or a checked IPv4 or IPv6 address (`addresses`)."""
        value = self.text(field)
        host, problem = normal_host(value)
        if value and problem:
            self.fail(field, problem)
        return host

    def integer(self, field: str, default: int | None, low: int, high: int) -> int:
        value = self.text(field, required=default is None)
        if not value:
            return default or 0
        # int() also takes '١٢', '1_000' and '+5': only ASCII digits are a number here.
        if not (value.isascii() and value.isdigit()):
            self.fail(field, f"{value!r} is not a whole number (digits 0-9 only)")
            return default or 0
        number = int(value)
        if not low <= number <= high:
            self.fail(field, f"{number} is outside {low}-{high}")
        return number

    def fraction(self, field: str, default: float) -> float:
        value = self.text(field, required=False)
        if not value:
            return default
        try:
            number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
        except ValueError:
            self.fail(field, f"{value!r} is not a number")
            return default
        if not 0 <= number <= 1:
            self.fail(field, f"{value} is outside 0-1 (or 0%-100%)")
        return number

    def security(self, field: str) -> Security:
        value = self.text(field).lower()
        try:
            return Security(value)
        except ValueError:
            if value:
                self.fail(field, f"{value!r} is not one of starttls, ssl, none")
            return Security.STARTTLS

    def boolean(self, field: str) -> bool:
        value = self.text(field, required=False).lower()
        if value not in _TRUE | _FALSE:
            self.fail(field, f"{value!r} is not true or false")
        return value in _TRUE

    def display_name(self, field: str) -> str | None:
        """A name for From:; its own rules (`core.names`) instead of `text`'s."""
        value = self.raw.get(field) or ""
        if problem := display_name_problem(value):
            self.fail(field, problem)
            return None
        return clean_display_name(value)

    def sign_in(self) -> tuple[bool, str | None, str | None]:
        """(passwords required, OAuth2 provider, refresh token) from `auth` and its columns."""
        auth = self.text("auth", required=False).lower() or PASSWORD
        provider = self.text("oauth_provider", required=False).lower() or None
        token = self.secret("oauth_refresh_token", required=False, limit=MAX_TOKEN_LENGTH) or None
        if auth == PASSWORD:
            for field, value in (("oauth_provider", provider), ("oauth_refresh_token", token)):
                if value is not None:
                    self.fail(field, f"is only for auth {OAUTH2} (auth is {PASSWORD})")
            return True, None, None
        if auth != OAUTH2:
            self.fail("auth", f"{auth!r} is not {PASSWORD} or {OAUTH2}")
            return True, None, None
        if provider is None:
            self.fail("oauth_provider", f"is empty (auth {OAUTH2} needs one of {_PROVIDERS})")
        elif provider not in PROVIDERS:
            self.fail("oauth_provider", f"{provider!r} is not one of {_PROVIDERS}")
        return False, provider, token

    def timezone(self, field: str) -> str | None:
        value = self.text(field, required=False)
        if value and value not in _timezones():
            self.fail(field, f"{value!r} is not an IANA timezone (for example Europe/Berlin)")
        return value or None


def parse_row(line: int, raw: dict[str, str]) -> MailboxRow | list[RowError]:
    """Validate one CSV row; returns the row, or every error found in it."""
    p = _RowParser(line, raw)
    email = p.email("email")
    daily_limit = p.integer("daily_limit", DEFAULT_DAILY_LIMIT, 1, MAX_DAILY_LIMIT)
    ramp_start = p.integer("ramp_start", min(DEFAULT_RAMP_START, daily_limit), 1, MAX_DAILY_LIMIT)
    if 1 <= daily_limit <= MAX_DAILY_LIMIT and ramp_start > daily_limit:
        p.fail("ramp_start", f"{ramp_start} is above daily_limit {daily_limit}")
    passwords, oauth_provider, refresh_token = p.sign_in()
    row = MailboxRow(
        line=line,
        email=email,
        display_name=p.display_name("display_name"),
        user=p.text("user"),
        smtp_host=p.host("smtp_host"),
        smtp_port=p.integer("smtp_port", None, 1, 65535),
        smtp_security=p.security("smtp_security"),
        smtp_username=p.text("smtp_username", required=False) or email,
        smtp_password=p.secret("smtp_password", required=passwords),
        imap_host=p.host("imap_host"),
        imap_port=p.integer("imap_port", None, 1, 65535),
        imap_security=p.security("imap_security"),
        imap_username=p.text("imap_username", required=False) or email,
        imap_password=p.secret("imap_password", required=passwords),
        timezone=p.timezone("timezone"),
        daily_limit=daily_limit,
        ramp_start=ramp_start,
        ramp_step=p.integer("ramp_step", DEFAULT_RAMP_STEP, 0, MAX_DAILY_LIMIT),
        reply_rate=p.fraction("reply_rate", DEFAULT_REPLY_RATE),
        weekdays_only=p.boolean("weekdays_only"),
        plan=p.text("plan", required=False) or None,
        oauth_provider=oauth_provider,
        oauth_refresh_token=refresh_token,
    )
    return p.errors or row
