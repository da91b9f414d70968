"""CSV text for import tests."""

from __future__ import annotations

import csv
import io

from warmup_dagster.mailboxes.rows import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

COLUMNS = list(REQUIRED_COLUMNS) + list(OPTIONAL_COLUMNS)


def row(email: str, user: str = "ann", **overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "email": email,
        "user": user,
        "smtp_host": "smtp.example.com",
        "smtp_port": 587,
        "smtp_security": "starttls",
        "smtp_username": email,
        "smtp_password": f"smtp-secret-{email}",
        "imap_host": "imap.example.com",
        "imap_port": 993,
        "imap_security": "ssl",
        "imap_username": email,
        "imap_password": f"imap-secret-{email}",
        "timezone": "Europe/Berlin",
        "daily_limit": 40,
        "ramp_start": 2,
        "ramp_step": 3,
        "reply_rate": 0.25,
        "weekdays_only": "false",
        "plan": "",
    }
    values.update(overrides)
    return values


def csv_text(rows: list[dict[str, object]], columns: list[str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
