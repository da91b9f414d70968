"""The `send_log`: one row closes each claim of a job (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from warmup_dagster.db.models import JobKind, JobStatus, SendLog


def log_row(
    *,
    job_id: int,
    mailbox_id: int,
    user_id: int,
    kind: JobKind,
    recipient: str,
    message_id: str,
    status: JobStatus,
    attempt: int,
    worker_id: str | None,
    claimed_at: datetime,
    local_date: Any,
    at: datetime,
    code: int | None = None,
    reply: str | None = None,
    error: str | None = None,
    late: bool = False,
) -> dict[str, Any]:
    """One `send_log` row; every column is named, so no writer forgets one."""
    return {
        "job_id": job_id,
        "mailbox_id": mailbox_id,
        "user_id": user_id,
        "kind": kind.name,
        "recipient_email": recipient,
        "message_id": message_id,
        "status": status.name,
        "attempt": attempt,
        "smtp_code": code,
        "smtp_reply": reply or None,
        "error": error,
        "worker_id": worker_id,
        "claimed_at": claimed_at,
        "local_date": local_date,
        "late": late,
        "created_at": at,
    }


def write_log(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(SendLog.__table__), list(rows))
