"""Reading and changing mailboxes' state: what `warmup mailboxes list/pause/resume` do."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from warmup_dagster.clock import Clock
from warmup_dagster.core.health import Figures, HealthState
from warmup_dagster.db.models import Mailbox, MailboxHealth, MailboxState, Plan, User
from warmup_dagster.engagement import mailboxes as engagement


class MailboxNotFound(LookupError):
    def __init__(self, email: str) -> None:
        super().__init__(f"no mailbox {email!r}")


@dataclass(frozen=True)
class MailboxView:
    """What an operator sees of a mailbox: no credentials."""

    email: str
    display_name: str | None  # as imported; None: derived from the address
    user: str
    plan: str
    state: MailboxState
    state_reason: str | None
    daily_limit: int
    timezone: str | None
    smtp: str
    imap: str
    # Why the receiving side stopped engaging it (an IMAP login refused); None when it engages.
    engagement_paused: str | None = None
    # Its latest health (`mailbox_health`): HEALTHY when never judged (no mail in the window).
    health: HealthState = HealthState.HEALTHY
    health_reason: str | None = None
    health_figures: Figures | None = None


def list_mailboxes(
    engine: Engine, *, state: MailboxState | None = None, user: str | None = None
) -> list[MailboxView]:
    query = (
        select(Mailbox, User.name, Plan.name, MailboxHealth)
        .join(User, Mailbox.user_id == User.id)
        .join(Plan, User.plan_id == Plan.id)
        .outerjoin(MailboxHealth, MailboxHealth.mailbox_id == Mailbox.id)
        .order_by(User.name, Mailbox.email)
    )
    if state is not None:
        query = query.where(Mailbox.state == state)
    if user is not None:
        query = query.where(User.name == user)
    with Session(engine) as session:
        paused = engagement.paused_reasons(session.connection())
        return [
            MailboxView(
                email=box.email,
                display_name=box.display_name,
                user=user_name,
                plan=plan_name,
                state=box.state,
                state_reason=box.state_reason,
                daily_limit=box.daily_limit,
                timezone=box.timezone,
                smtp=f"{box.smtp_host}:{box.smtp_port}/{box.smtp_security.value}",
                imap=f"{box.imap_host}:{box.imap_port}/{box.imap_security.value}",
                engagement_paused=paused.get(box.id),
                **_health(health),
            )
            for box, user_name, plan_name, health in session.execute(query)
        ]


def _health(row: MailboxHealth | None) -> dict:
    if row is None:
        return {}
    figures = Figures(row.inbox, row.spam, row.not_found, row.bounces, row.auth_failures)
    return {"health": row.state, "health_reason": row.reason, "health_figures": figures}


def set_state(
    engine: Engine, email: str, state: MailboxState, reason: str | None, clock: Clock
) -> MailboxState:
    """Set a mailbox's state with a reason; returns the state it had before.

    Resuming (ACTIVE) also lifts a pause of its engagement (an IMAP login that was refused).

    Raises:
        MailboxNotFound: if no mailbox has that address.
    """
    with Session(engine) as session, session.begin():
        box = session.scalar(select(Mailbox).where(Mailbox.email == email.strip().lower()))
        if box is None:
            raise MailboxNotFound(email)
        before = box.state
        box.state = state
        box.state_reason = reason
        box.state_changed_at = box.updated_at = clock.now()
        if state is MailboxState.ACTIVE:
            engagement.resume(session.connection(), box.id, clock.now())
        return before
