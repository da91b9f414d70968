"""Settings from `WARMUP_*` environment variables, validated once at startup.

Every setting of the seed system's ScaleConfig keeps its name (with the `WARMUP_` prefix) and
its default. Secrets are not settings: `WARMUP_SECRET_KEY` is read only where it is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

PREFIX = "WARMUP_"


class SettingsError(ValueError):
    """One or more `WARMUP_*` variables are invalid; the message names each one."""


def _number(raw: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"is not {what}") from None


def _positive_int(raw: str) -> int:
    value = _number(raw, int)
    if value <= 0:
        raise ValueError("must be a whole number above 0")
    return value


def _positive_float(raw: str) -> float:
    value = _number(raw, float)
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a number above 0")
    return value


def _hour(raw: str) -> int:
    value = _number(raw, int)
    if not 0 <= value <= 24:
        raise ValueError("must be an hour from 0 to 24")
    return value


def _timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not an IANA timezone (for example Europe/Berlin)") from None
    return raw


def _instant(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            "is not an ISO 8601 time (for example 2026-01-05T06:00:00+00:00)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _readable_file(raw: str) -> str:
    path = Path(raw)
    if not path.is_file():
        raise ValueError("is not a readable file")
    return str(path.resolve())


def normalize_database_url(raw: str) -> str:
    """Return a SQLAlchemy URL for SQLite or PostgreSQL (psycopg2), or raise ValueError.

    `postgresql://` is rewritten to `postgresql+psycopg2://`: with SQLAlchemy 2.1 the bare
    scheme means psycopg 3, which is not installed and breaks dagster-postgres.
    """
    try:
        url: URL = make_url(raw)
    except ArgumentError:
        raise ValueError("is not a database URL (sqlite:///PATH or postgresql://...)") from None
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


@dataclass(frozen=True)
class Settings:
    """The validated configuration; field `x_y` comes from `WARMUP_X_Y`."""

    scheduler_interval_ms: int = 60_000
    jobs_per_scheduler_run: int = 500
    worker_concurrency: int = 10
    worker_count: int = 5
    same_mailbox_delay_min: float = 2.0
    same_mailbox_delay_max: float = 10.0
    global_sends_per_minute: int = 100
    global_sends_per_hour: int = 5_000
    user_sends_per_minute: int = 5
    user_sends_per_hour: int = 200
    send_window_start_hour: int = 6
    send_window_end_hour: int = 22
    send_window_timezone: str = "UTC"
    send_max_attempts: int = 5
    send_retry_base_seconds: float = 60.0
    smtp_timeout_seconds: float = 30.0
    send_lease_seconds: int = 600
    sender_run_max_seconds: int = 900
    smtp_ca_file: str = ""
    database_url: str = ""
    clock_speed: float = 1.0
    clock_start: datetime | None = None

    @staticmethod
    def env_name(field_name: str) -> str:
        return PREFIX + field_name.upper()


_PARSERS: dict[str, Callable[[str], Any]] = {
    "scheduler_interval_ms": _positive_int,
    "jobs_per_scheduler_run": _positive_int,
    "worker_concurrency": _positive_int,
    "worker_count": _positive_int,
    "same_mailbox_delay_min": _positive_float,
    "same_mailbox_delay_max": _positive_float,
    "global_sends_per_minute": _positive_int,
    "global_sends_per_hour": _positive_int,
    "user_sends_per_minute": _positive_int,
    "user_sends_per_hour": _positive_int,
    "send_window_start_hour": _hour,
    "send_window_end_hour": _hour,
    "send_window_timezone": _timezone,
    "send_max_attempts": _positive_int,
    "send_retry_base_seconds": _positive_float,
    "smtp_timeout_seconds": _positive_float,
    "send_lease_seconds": _positive_int,
    "sender_run_max_seconds": _positive_int,
    "smtp_ca_file": _readable_file,
    "database_url": normalize_database_url,
    "clock_speed": _positive_float,
    "clock_start": _instant,
}


def default_database_url(environ: Mapping[str, str]) -> str:
    """SQLite next to Dagster's own storage, so the embedded default needs no server."""
    home = Path(environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    return f"sqlite:///{home / 'warmup.sqlite'}"


def _cross_checks(values: dict[str, Any]) -> list[str]:
    errors = []
    if values["same_mailbox_delay_min"] > values["same_mailbox_delay_max"]:
        errors.append(
            "WARMUP_SAME_MAILBOX_DELAY_MIN "
            f"({values['same_mailbox_delay_min']}) is above WARMUP_SAME_MAILBOX_DELAY_MAX "
            f"({values['same_mailbox_delay_max']})"
        )
    if values["send_window_start_hour"] >= values["send_window_end_hour"]:
        errors.append(
            f"WARMUP_SEND_WINDOW_START_HOUR ({values['send_window_start_hour']}) must be before "
            f"WARMUP_SEND_WINDOW_END_HOUR ({values['send_window_end_hour']})"
        )
    for unit in ("minute", "hour"):
        user, total = values[f"user_sends_per_{unit}"], values[f"global_sends_per_{unit}"]
        if user > total:
            errors.append(
                f"WARMUP_USER_SENDS_PER_{unit.upper()} ({user}) is above "
                f"WARMUP_GLOBAL_SENDS_PER_{unit.upper()} ({total})"
            )
    if values["send_lease_seconds"] <= 2 * values["smtp_timeout_seconds"]:
        errors.append(
            f"WARMUP_SEND_LEASE_SECONDS ({values['send_lease_seconds']}) must be more than twice "
            f"WARMUP_SMTP_TIMEOUT_SECONDS ({values['smtp_timeout_seconds']}): a claimed job must "
            "not be reclaimed while it is still being sent"
        )
    if values["global_sends_per_minute"] > values["global_sends_per_hour"]:
        errors.append("WARMUP_GLOBAL_SENDS_PER_MINUTE is above WARMUP_GLOBAL_SENDS_PER_HOUR")
    return errors


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every `WARMUP_*` setting.

    Raises:
        SettingsError: naming every invalid variable with its value and the rule it breaks.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    errors: list[str] = []
    for f in fields(Settings):
        name = Settings.env_name(f.name)
        raw = environ.get(name, "").strip()
        if not raw:
            values[f.name] = f.default
            continue
        try:
            values[f.name] = _PARSERS[f.name](raw)
        except ValueError as exc:
            # A database URL may carry a password: name the variable, not its value.
            shown = name if f.name == "database_url" else f"{name}={raw!r}"
            errors.append(f"{shown} {exc}")
    if not values.get("database_url"):
        values["database_url"] = default_database_url(environ)
    if not errors:
        errors = _cross_checks(values)
    if errors:
        raise SettingsError("Invalid configuration:\n  " + "\n  ".join(errors))
    return Settings(**values)
