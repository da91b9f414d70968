"""The mailbox pool as Dagster sees it: a summary asset operators can refresh from the UI."""

from typing import Any

import dagster as dg
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warmup_dagster.db.models import Mailbox, MailboxState, Plan, User
from warmup_dagster.resources import WarmupDatabase


@dg.asset(group_name="pool", kinds={"sql"})
def mailbox_pool(
    context: dg.AssetExecutionContext, warmup_db: WarmupDatabase
) -> dg.MaterializeResult:
    """The pool of mailboxes that send each other warmup mail.

    Counts mailboxes by state, owners, and each plan's use. Refresh it after an import
    (`warmup mailboxes import`) to see the pool's shape; paused mailboxes and their reasons
    are listed in the run's log.
    """
    with Session(warmup_db.engine) as session:
        by_state = dict(
            session.execute(select(Mailbox.state, func.count()).group_by(Mailbox.state)).all()
        )
        users = session.scalar(select(func.count()).select_from(User)) or 0
        domains = session.scalar(select(func.count(func.distinct(Mailbox.domain)))) or 0
        per_plan = session.execute(
            select(Plan.name, func.count(func.distinct(User.id)), func.count(Mailbox.id))
            .join(User, User.plan_id == Plan.id)
            .outerjoin(Mailbox, Mailbox.user_id == User.id)
            .group_by(Plan.name)
        ).all()
        paused = session.execute(
            select(Mailbox.email, Mailbox.state, Mailbox.state_reason)
            .where(Mailbox.state != MailboxState.ACTIVE)
            .order_by(Mailbox.email)
            .limit(50)
        ).all()
    for email, state, reason in paused:
        context.log.info(f"{email} is {state.value}: {reason or 'no reason given'}")
    metadata: dict[str, Any] = {
        "mailboxes": sum(by_state.values()),
        "users": users,
        "domains": domains,
        **{f"state_{s.value.lower()}": by_state.get(s, 0) for s in MailboxState},
        "plans": dg.MetadataValue.md(
            "| plan | users | mailboxes |\n|---|---|---|\n"
            + "\n".join(f"| {name} | {u} | {m} |" for name, u, m in per_plan)
        ),
    }
    return dg.MaterializeResult(metadata=metadata)
