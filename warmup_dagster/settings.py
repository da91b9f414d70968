"""Settings from `WARMUP_*` environment variables, validated once at startup (pydantic-settings).

Every setting of the system this project replaces keeps its name (with the `WARMUP_` prefix)
and its default. Every duration and interval is clock time: the project's clock, which runs
`WARMUP_CLOCK_SPEED` times faster than wall time. Secrets are not settings:
`WARMUP_SECRET_KEY` is read only where it is used, but like every variable read elsewhere it
is a known name, so that a misspelt `WARMUP_*` variable is reported instead of ignored.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import ssl
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from warmup_dagster.core.controls import CONTROL_RE
from warmup_dagster.core.health import LEVELS as HEALTH_LEVELS
from warmup_dagster.core.ramp import DEFAULT_VARIANCE
from warmup_dagster.crypto import NEW_SECRET_KEY_VAR, SECRET_KEY_VAR
from warmup_dagster.domains import config as domain_config

PREFIX = "WARMUP_"
# `WARMUP_*` variables that are not settings but are read elsewhere: the secret (crypto.py and
# the Dagster resource), the new secret of `warmup secrets rotate` (secrets/cli.py), Dagster's
# storage (dagster.yaml), the tests' PostgreSQL server and the demo's sandbox SMTP port
# (scripts/demo.sh).
OTHER_VARIABLES = (
    SECRET_KEY_VAR,
    NEW_SECRET_KEY_VAR,
    "WARMUP_DAGSTER_POSTGRES_URL",
    "WARMUP_TEST_POSTGRES_URL",
    "WARMUP_SANDBOX_PORT",
)
# A database URL may carry a password: its errors name the variable, never the value.
_HIDDEN = frozenset({"database_url"})
_URL_PASSWORD = re.compile(r"(://[^/@:\s]*:)[^@/\s]*@")
# pydantic's own parse errors, in the words the rest of the messages use
_TYPE_MESSAGES = {
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "int_type": "is not a whole number",
    "float_parsing": "is not a number",
    "float_type": "is not a number",
}


class SettingsError(ValueError):
    """One or more `WARMUP_*` variables are invalid; the message names each one."""


def _rule(holds: Callable[[Any], bool], message: str) -> AfterValidator:
    def check(value: Any) -> Any:
        if not holds(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not an IANA timezone (for example Europe/Berlin)") from None
    return value


def _instant(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                "is not an ISO 8601 time (for example 2026-01-05T06:00:00+00:00)"
            ) from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError("is not a date (YYYY-MM-DD, for example 2026-01-01)") from None
    return value


def _readable_file(value: str) -> str:
    if not value:
        return value
    path = Path(value)
    if not path.is_file():
        raise ValueError("is not a readable file")
    return str(path.resolve())


def _ca_file(value: str) -> str:
    """A CA bundle: a readable file holding at least one PEM certificate, checked at load so a
    wrong path (a key, a DER file, an empty file) is not found at the first TLS handshake."""
    path = _readable_file(value)
    if not path:
        return path
    try:
        # A bare context: the system's CAs are not loaded for this check.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except OSError:  # ssl.SSLError too: no certificate in it, or a broken one
        raise ValueError(
            "holds no PEM certificate (expects a file of -----BEGIN CERTIFICATE----- blocks)"
        ) from None
    return path


def _endpoint_url(value: str) -> str:
    """An OAuth2 endpoint: https, or http to a loopback host (the tests' local server) only:
    the refresh token goes in the request body."""
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"):
        return value
    raise ValueError("must be an https:// URL (http:// only to localhost or 127.0.0.1)")


def normalize_database_url(raw: str) -> str:
    """Return a SQLAlchemy URL for SQLite or PostgreSQL (psycopg2), or raise ValueError.

    `postgresql://` is rewritten to `postgresql+psycopg2://`: with SQLAlchemy 2.1 the bare
    scheme means psycopg 3, which is not installed and breaks dagster-postgres.
    """
    if CONTROL_RE.search(raw):
        raise ValueError("contains a control character")
    try:
        url: URL = make_url(raw)
    except ArgumentError:
        raise ValueError("is not a database URL (sqlite:///PATH or postgresql://...)") from None
    except ValueError:  # its text can hold the password (a ':' in it), so it is not shown
        raise ValueError("has a port that is not a number (postgresql://HOST:PORT/...)") from None
    if url.port is not None and not 1 <= url.port <= 65535:
        raise ValueError("has a port outside 1-65535")
    backend, _, driver = url.drivername.partition("+")
    if backend == "postgresql":
        if driver not in ("", "psycopg2"):
            raise ValueError("must use the psycopg2 driver (postgresql+psycopg2://...)")
        if not url.host and not url.query.get("host"):
            raise ValueError("has no host")
        return url.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    if backend == "sqlite":
        if not url.database:
            raise ValueError("has no file path (in-memory SQLite can't be shared by processes)")
        return raw
    raise ValueError(f"uses '{backend}', but only sqlite and postgresql are supported")


def _database_url(value: str) -> str:
    return normalize_database_url(value) if value else value


def _parsed(parse: Callable[[str], Any]) -> AfterValidator:
    """Keep the text as it was given once `parse` accepts it (its ValueError names the fault)."""

    def check(value: str) -> str:
        parse(value)
        return value

    return AfterValidator(check)


PositiveInt = Annotated[int, _rule(lambda v: v > 0, "must be a whole number above 0")]
PositiveFloat = Annotated[
    float, _rule(lambda v: math.isfinite(v) and v > 0, "must be a number above 0")
]
Hour = Annotated[int, _rule(lambda v: 0 <= v <= 24, "must be an hour from 0 to 24")]
Fraction = Annotated[float, _rule(lambda v: 0 <= v < 1, "must be a fraction from 0 to below 1")]
Share = Annotated[float, _rule(lambda v: 0 <= v <= 1, "must be a fraction from 0 to 1")]
Count = Annotated[int, _rule(lambda v: v >= 0, "must be a whole number from 0")]
# Days of history kept at least: the day counters are kept a week (`queue.counters.KEEP_DAYS`)
# and a local date is up to a day off the UTC date, so the audit of every counter still kept
# finds its send log.
MIN_RETENTION_DAYS = 8
RetentionDays = Annotated[
    int,
    _rule(
        lambda v: v == 0 or v >= MIN_RETENTION_DAYS,
        f"must be 0 (keep everything) or at least {MIN_RETENTION_DAYS} days",
    ),
]
# What a mailbox added after its first day's window opened does that day (`planning.first_day`).
FIRST_DAY_MODES = ("prorate", "next_day")
FirstDay = Annotated[
    str,
    BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v),
    _rule(lambda v: v in FIRST_DAY_MODES, "must be prorate or next_day"),
]


class Settings(BaseSettings):
    """The validated configuration; field `x_y` comes from `WARMUP_X_Y`.

    Immutable. `model_copy(update=...)` validates the update by the same rules (pydantic's
    own copy would not). Durations are clock time (see the module docstring).
    """

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="forbid")

    scheduler_interval_ms: PositiveInt = Field(60_000, description="ms of clock time")
    jobs_per_scheduler_run: PositiveInt = Field(500, description="jobs")
    worker_concurrency: PositiveInt = Field(10, description="SMTP sessions per sender run")
    worker_count: PositiveInt = Field(5, description="sender runs")
    same_mailbox_delay_min: PositiveFloat = Field(2.0, description="minutes of clock time")
    same_mailbox_delay_max: PositiveFloat = Field(10.0, description="minutes of clock time")
    global_sends_per_minute: PositiveInt = Field(100, description="sends per clock minute")
    global_sends_per_hour: PositiveInt = Field(5_000, description="sends per clock hour")
    user_sends_per_minute: PositiveInt = Field(5, description="sends per clock minute")
    user_sends_per_hour: PositiveInt = Field(200, description="sends per clock hour")
    send_window_start_hour: Hour = Field(6, description="mailbox-local hour of day")
    send_window_end_hour: Hour = Field(22, description="mailbox-local hour of day")
    send_window_timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    send_max_attempts: PositiveInt = Field(5, description="attempts")
    send_retry_base_seconds: PositiveFloat = Field(60.0, description="seconds of clock time")
    smtp_timeout_seconds: PositiveFloat = Field(30.0, description="seconds of clock time")
    send_lease_seconds: PositiveInt = Field(600, description="seconds of clock time")
    reclaim_imap_check: bool = Field(
        True,
        description="true or false: a reclaimed job is looked for over IMAP in its recipient's "
        "mailbox before it is sent again",
    )
    # Under the 3 minutes before a window's end in which nothing is claimed (`core.admission`).
    arrival_margin_seconds: float = Field(30.0, ge=0, lt=180, description="seconds of clock time")
    sender_run_max_seconds: PositiveInt = Field(900, description="seconds of clock time")
    # Run liveness (`liveness.py`): a run silent this long has died and is failed; at least
    # 30 real seconds whatever the clock's speed.
    run_dead_seconds: PositiveInt = Field(300, description="seconds of clock time")
    smtp_ca_file: Annotated[str, AfterValidator(_ca_file)] = ""
    # empty only before `load_settings` fills in the default, which depends on DAGSTER_HOME
    database_url: Annotated[str, AfterValidator(_database_url)] = ""
    daily_variance: Fraction = Field(
        DEFAULT_VARIANCE, description="fraction of a day's quota; 0 turns it off"
    )
    first_day: FirstDay = Field(
        "prorate",
        description="prorate (the first day's quota x the share of its window left when the "
        "mailbox was added) or next_day (its warmup starts the next day)",
    )
    # The fill-rate asset (`assets/fill_rate.py`): its daily partitions, read when the
    # definitions load, and the thresholds of its checks (`fill.checks`).
    fill_rate_start_date: Annotated[date, BeforeValidator(_date)] = Field(
        date(2026, 1, 1), description="first daily partition"
    )
    fill_rate_days_ahead: Count = Field(
        0, description="days of partitions past real time, for a clock that runs ahead"
    )
    fill_rate_refresh_seconds: Count = Field(
        3600, description="seconds of clock time between figures of a date still open; 0: none"
    )
    fill_threshold: Share = Field(1.0, description="fraction of a mailbox's quota")
    quota_met_share: Share = Field(0.95, description="fraction of the mailboxes with a quota")
    audit_max_violations: Count = Field(0, description="rule breaks in a day's send log")
    plan_max_shortfall: Share = Field(0.0, description="fraction of the day's quota")
    counter_max_mismatches: Count = Field(0, description="counters that disagree with the log")
    stuck_after_leases: PositiveFloat = Field(2.0, description="leases (WARMUP_SEND_LEASE_SECONDS)")
    # Catch-up (`sensors/catch_up.py`): re-plans what mailboxes still owe today.
    catch_up: bool = Field(True, description="true or false: the catch-up sensor re-plans")
    catch_up_interval_seconds: PositiveInt = Field(300, description="seconds of clock time")
    catch_up_held_seconds: PositiveInt = Field(1800, description="seconds of clock time")
    # Retention (`queue/retention.py`, `sensors/retention.py`): pruning the hot tables.
    retention_days: RetentionDays = Field(
        35, description="clock days; local dates older than this are pruned, 0 keeps all"
    )
    retention_requires_fill_rate: bool = Field(
        True,
        description="true or false: a local date is pruned only once its fill_rate partition "
        "is materialized",
    )
    retention_batch_rows: PositiveInt = Field(5_000, description="jobs per delete transaction")
    # Domain checks (`warmup_dagster.domains`): the resolver, the blocklists, the gate.
    domain_checks: bool = Field(True, description="true or false: the domain health sensor runs")
    dns_nameservers: Annotated[str, _parsed(domain_config.nameservers)] = Field(
        "", description="IP[:port] list; empty: the system's resolvers"
    )
    # A network timeout, like the SMTP one: clock time, N/S real seconds at speed S.
    dns_timeout_seconds: PositiveFloat = Field(5.0, description="seconds of clock time")
    dns_concurrency: PositiveInt = Field(32, description="domains checked at once")
    dnsbl_zones: Annotated[str, _parsed(domain_config.zones)] = Field(
        "", description="[domain:|ip:]zone list"
    )
    dnsbl_throttle: Share = Field(
        0.5, description="fraction of its quota a listed domain's mailboxes keep"
    )
    dkim_selectors: Annotated[str, _parsed(domain_config.selectors)] = Field(
        "", description="domain:selector[|selector] list"
    )
    domain_gate: Annotated[
        str,
        BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v),
        _parsed(domain_config.gate_mode),
    ] = Field("flag", description="flag (report only) or hold (keep out of planning)")
    # Engagement (`warmup_dagster/engagement/`): the receiving side over IMAP.
    engage: bool = Field(True, description="true or false: the engagement sensor launches runs")
    engage_interval_seconds: PositiveInt = Field(60, description="seconds of clock time")
    engage_look_delay_min: PositiveFloat = Field(5.0, description="minutes of clock time")
    engage_look_delay_max: PositiveFloat = Field(60.0, description="minutes of clock time")
    engage_not_found_minutes: PositiveFloat = Field(240.0, description="minutes of clock time")
    engage_recheck_minutes: PositiveFloat = Field(15.0, description="minutes of clock time")
    engage_flag_rate: Share = Field(0.1, description="fraction of the mail handled")
    engage_reply_delay_min: PositiveFloat = Field(10.0, description="minutes of clock time")
    engage_reply_delay_max: PositiveFloat = Field(120.0, description="minutes of clock time")
    engage_max_turns: PositiveInt = Field(3, description="messages in a thread")
    engage_folder: Annotated[str, _rule(lambda v: bool(v.strip()), "must not be empty")] = Field(
        "Warmup", description="IMAP folder name"
    )
    engage_retention_days: PositiveFloat = Field(14.0, description="days of clock time")
    engage_concurrency: PositiveInt = Field(10, description="IMAP sessions per engagement run")
    engage_mailboxes_per_run: PositiveInt = Field(500, description="mailboxes")
    engage_run_count: PositiveInt = Field(2, description="engagement runs")
    engage_lease_seconds: PositiveInt = Field(900, description="seconds of clock time")
    # Mailbox health (`warmup_dagster/health/`): from placements, bounces and auth failures.
    health_interval_seconds: PositiveInt = Field(3600, description="seconds of clock time")
    health_window_days: PositiveFloat = Field(7.0, description="days of clock time")
    health_min_messages: PositiveInt = Field(
        20, description="placed messages in the window before the spam rate counts"
    )
    health_watch_spam_rate: Share = Field(0.2, description="fraction of the placed mail")
    health_throttle_spam_rate: Share = Field(0.35, description="fraction of the placed mail")
    health_pause_spam_rate: Share = Field(0.6, description="fraction of the placed mail")
    health_watch_bounces: PositiveInt = Field(1, description="bounces in the window")
    health_throttle_bounces: PositiveInt = Field(3, description="bounces in the window")
    health_pause_bounces: PositiveInt = Field(10, description="bounces in the window")
    health_watch_auth_failures: PositiveInt = Field(1, description="auth failures in the window")
    health_throttle_auth_failures: PositiveInt = Field(2, description="auth failures in the window")
    health_pause_auth_failures: PositiveInt = Field(5, description="auth failures in the window")
    health_throttle: Share = Field(
        0.5, description="fraction of its quota a throttled mailbox keeps"
    )
    imap_timeout_seconds: PositiveFloat = Field(30.0, description="seconds of clock time")
    imap_ca_file: Annotated[str, AfterValidator(_ca_file)] = ""
    # OAuth2 sign-in (`warmup_dagster.oauth`): each provider's client, and the token refresh.
    # The client secrets are SecretStr: `warmup config` and errors never show them.
    oauth_google_client_id: str = Field("", description="Google Cloud OAuth client id")
    oauth_google_client_secret: SecretStr = Field(SecretStr(""), description="its secret")
    oauth_microsoft_client_id: str = Field("", description="Microsoft Entra application id")
    oauth_microsoft_client_secret: SecretStr = Field(
        SecretStr(""), description="its secret; empty for a public client"
    )
    oauth_microsoft_tenant: Annotated[
        str, _rule(lambda v: bool(v.strip()) and "/" not in v, "must be a tenant id or name")
    ] = Field("organizations", description="directory (tenant) id, or organizations/common")
    oauth_generic_token_url: Annotated[str, AfterValidator(_endpoint_url)] = Field(
        "", description="token endpoint URL"
    )
    oauth_generic_device_url: Annotated[str, AfterValidator(_endpoint_url)] = Field(
        "", description="device authorization endpoint URL"
    )
    oauth_generic_authorize_url: Annotated[str, AfterValidator(_endpoint_url)] = Field(
        "", description="authorization endpoint URL (the browser flow)"
    )
    oauth_generic_client_id: str = Field("", description="client id")
    oauth_generic_client_secret: SecretStr = Field(SecretStr(""), description="its secret")
    oauth_generic_scopes: str = Field("", description="space-separated scopes")
    oauth_refresh_margin_seconds: PositiveFloat = Field(300.0, description="seconds of clock time")
    oauth_timeout_seconds: PositiveFloat = Field(10.0, description="seconds of clock time")
    oauth_max_attempts: PositiveInt = Field(3, description="attempts per refresh")
    oauth_retry_base_seconds: PositiveFloat = Field(1.0, description="seconds of clock time")
    clock_speed: PositiveFloat = Field(1.0, description="clock seconds per wall second")
    clock_start: Annotated[datetime | None, BeforeValidator(_instant)] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what `load_settings` passes: it reads the environment it is given (the process
        # environment or a test's mapping), never os.environ behind its back, nor a .env file.
        return (init_settings,)

    @staticmethod
    def env_name(field_name: str) -> str:
        return PREFIX + field_name.upper()

    @classmethod
    def known_variables(cls) -> list[str]:
        """Every `WARMUP_*` name the project reads: the settings, then `OTHER_VARIABLES`."""
        return [cls.env_name(name) for name in cls.model_fields] + list(OTHER_VARIABLES)

    @model_validator(mode="after")
    def _cross_checks(self) -> Self:
        errors = []
        if self.same_mailbox_delay_min > self.same_mailbox_delay_max:
            errors.append(
                f"WARMUP_SAME_MAILBOX_DELAY_MIN ({self.same_mailbox_delay_min}) is above "
                f"WARMUP_SAME_MAILBOX_DELAY_MAX ({self.same_mailbox_delay_max})"
            )
        for name in ("engage_look_delay", "engage_reply_delay"):
            low, high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if low > high:
                errors.append(
                    f"WARMUP_{name.upper()}_MIN ({low}) is above WARMUP_{name.upper()}_MAX ({high})"
                )
        for signal in ("spam_rate", "bounces", "auth_failures"):
            steps = [getattr(self, f"health_{level}_{signal}") for level in HEALTH_LEVELS]
            if steps != sorted(steps):
                names = ", ".join(
                    f"WARMUP_HEALTH_{level.upper()}_{signal.upper()} ({value})"
                    for level, value in zip(HEALTH_LEVELS, steps, strict=True)
                )
                errors.append(f"{names} must not decrease")
        if self.engage_lease_seconds <= 2 * self.imap_timeout_seconds:
            errors.append(
                f"WARMUP_ENGAGE_LEASE_SECONDS ({self.engage_lease_seconds}) must be more than "
                f"twice WARMUP_IMAP_TIMEOUT_SECONDS ({self.imap_timeout_seconds})"
            )
        if self.send_window_start_hour >= self.send_window_end_hour:
            errors.append(
                f"WARMUP_SEND_WINDOW_START_HOUR ({self.send_window_start_hour}) must be before "
                f"WARMUP_SEND_WINDOW_END_HOUR ({self.send_window_end_hour})"
            )
        for unit in ("minute", "hour"):
            user = getattr(self, f"user_sends_per_{unit}")
            total = getattr(self, f"global_sends_per_{unit}")
            if user > total:
                errors.append(
                    f"WARMUP_USER_SENDS_PER_{unit.upper()} ({user}) is above "
                    f"WARMUP_GLOBAL_SENDS_PER_{unit.upper()} ({total})"
                )
        if self.send_lease_seconds <= 2 * self.smtp_timeout_seconds:
            errors.append(
                f"WARMUP_SEND_LEASE_SECONDS ({self.send_lease_seconds}) must be more than twice "
                f"WARMUP_SMTP_TIMEOUT_SECONDS ({self.smtp_timeout_seconds}): a claimed job must "
                "not be reclaimed while it is still being sent"
            )
        if self.global_sends_per_minute > self.global_sends_per_hour:
            errors.append("WARMUP_GLOBAL_SENDS_PER_MINUTE is above WARMUP_GLOBAL_SENDS_PER_HOUR")
        if errors:
            raise ValueError("\n  ".join(errors))
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with `update` (field names to values) applied and validated.

        `deep` is accepted for pydantic's signature; every value is immutable anyway.

        Raises:
            SettingsError: as `load_settings` does, naming each variable an update breaks.
        """
        return _build(type(self), {**self.model_dump(), **(update or {})})


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of os.environ.

    Values are stripped and empty ones mean "unset", as a blank line in a `.env` file would.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls, case_sensitive=False)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        stripped = ((key.lower(), value.strip()) for key, value in self._environ.items())
        return {key: value for key, value in stripped if value}


def default_database_url(environ: Mapping[str, str]) -> str:
    """SQLite next to Dagster's own storage, so the embedded default needs no server."""
    home = Path(environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    return f"sqlite:///{home / 'warmup.sqlite'}"


def _unknown_variables(environ: Mapping[str, str]) -> list[str]:
    known = Settings.known_variables()
    errors = []
    for name in sorted(n for n in environ if n.upper().startswith(PREFIX)):
        if name.upper() in known:
            continue
        # compared without the prefix, which every name shares and would make all look close
        close = difflib.get_close_matches(
            name.upper().removeprefix(PREFIX), [k.removeprefix(PREFIX) for k in known], n=1
        )
        hint = f"did you mean {PREFIX}{close[0]}?" if close else ".env.example lists them all"
        errors.append(f"{name} is not a known variable ({hint})")
    return errors


def _describe(error: Any) -> str:
    """One line of a `SettingsError` from one of pydantic's errors."""
    if not error["loc"]:  # the cross checks, each naming its own variables
        return str(error["ctx"]["error"])
    field = str(error["loc"][0])
    name = Settings.env_name(field)
    cause = error.get("ctx", {}).get("error")
    what = str(cause) if cause is not None else _TYPE_MESSAGES.get(error["type"], error["msg"])
    shown = name if field in _HIDDEN else f"{name}={masked(str(error['input']))!r}"
    return f"{shown} {what}"


def masked(value: str) -> str:
    """`value` with the password of any URL in it (`scheme://user:password@`) masked."""
    return _URL_PASSWORD.sub(r"\1********@", value)


def _build(cls: type[Settings], values: Mapping[str, Any], errors: Sequence[str] = ()) -> Settings:
    problems = list(errors)
    try:
        settings = cls(**values)
    except ValidationError as exc:
        problems += [_describe(e) for e in exc.errors()]
    if len(problems) == 1:
        raise SettingsError(f"Invalid configuration: {problems[0]}")
    if problems:
        raise SettingsError("Invalid configuration:\n  " + "\n  ".join(problems))
    return settings


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every `WARMUP_*` setting of `environ` (default: the process's).

    Raises:
        SettingsError: naming every invalid or unknown variable, with its value (never a
            database URL's) and the rule it breaks.
    """
    environ = os.environ if environ is None else environ
    values = dict(_EnvironSource(Settings, environ)())
    if not values.get("database_url"):
        values["database_url"] = default_database_url(environ)
    return _build(Settings, values, _unknown_variables(environ))
