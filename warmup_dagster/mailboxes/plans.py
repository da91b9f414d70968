"""The owners' plans in an import: the plan each owner ends on, and the rows its limits reject.

Every message about a plan says which column to change and lists the plans to choose from,
read from the `plans` table, so a user who hits a limit can fix the file without looking up
what plans exist.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warmup_dagster.db.models import Mailbox, Plan, User
from warmup_dagster.mailboxes.rows import MailboxRow, RowError

DEFAULT_PLAN = "default"


def plan_choices(plans: Iterable[Plan]) -> str:
    """Every plan with its limits, smallest first: `default (25 / 2,000), pro (500 / 50,000)`."""
    ordered = sorted(plans, key=lambda p: (p.max_mailboxes, p.daily_send_limit, p.name))
    return ", ".join(f"{p.name} ({p.max_mailboxes:,} / {p.daily_send_limit:,})" for p in ordered)


def _limits(plan: Plan) -> str:
    return f"{plan.max_mailboxes:,} mailboxes, {plan.daily_send_limit:,} sends a day"


def resolve_plans(
    rows: list[MailboxRow], plans: dict[str, Plan], users: dict[str, User], errors: list[RowError]
) -> dict[str, Plan]:
    """Each user's plan after the import: named in the file, else kept, else the default.

    Appends an error for each row naming an unknown plan or contradicting an earlier row.
    """
    by_id = {p.id: p for p in plans.values()}
    chosen: dict[str, tuple[Plan, int]] = {}
    result: dict[str, Plan] = {}
    for row in rows:
        if row.plan is not None:
            plan = plans.get(row.plan)
            if plan is None:
                errors.append(
                    RowError(
                        row.line,
                        "plan",
                        f"unknown plan {row.plan!r}; set the plan column to one of "
                        f"(mailboxes / sends a day): {plan_choices(plans.values())}",
                    )
                )
                continue
            earlier = chosen.setdefault(row.user, (plan, row.line))
            if earlier[0].name != plan.name:
                errors.append(
                    RowError(
                        row.line,
                        "plan",
                        f"user {row.user!r} is given plan {earlier[0].name!r} on line "
                        f"{earlier[1]} and {plan.name!r} here",
                    )
                )
            result[row.user] = earlier[0]
        elif row.user not in result:
            user = users.get(row.user)
            result[row.user] = by_id[user.plan_id] if user else plans[DEFAULT_PLAN]
    return result


def check_limits(
    session: Session,
    rows: list[MailboxRow],
    plans: dict[str, Plan],
    users: dict[str, User],
    user_plan: dict[str, Plan],
    existing: dict[str, tuple[int, int]],
) -> list[RowError]:
    """Per-user mailbox counts after the import, and each daily limit, against the plan.

    Every row of a user whose plan cannot hold the user's mailboxes after the import is an
    error: none of them can be imported as they are, and the count of rejected rows must say
    so. The user's first row carries the full message; the others point to it.
    """
    errors = []
    choices = plan_choices(plans.values())
    counts = _counts_after(session, rows, users, existing)
    first_line: dict[str, int] = {}
    for row in rows:
        plan = user_plan.get(row.user)
        if plan is None:  # its plan is unknown or contradicted: reported by `resolve_plans`
            continue
        if row.daily_limit > plan.daily_send_limit:
            errors.append(
                RowError(
                    row.line,
                    "daily_limit",
                    f"{row.daily_limit:,} is above plan {plan.name!r} ({_limits(plan)}); lower "
                    f"daily_limit or set the plan column to one of: {choices}",
                )
            )
        if counts[row.user] <= plan.max_mailboxes:
            continue
        first = first_line.setdefault(row.user, row.line)
        over = f"user {row.user!r} would have {counts[row.user]:,} mailboxes, more than plan"
        if first == row.line:
            message = (
                f"{over} {plan.name!r} ({_limits(plan)}) allows; set the plan column to one of: "
                f"{choices}"
            )
        else:
            message = f"{over} {plan.name!r} allows (see line {first})"
        errors.append(RowError(row.line, "plan", message))
    return errors


def _counts_after(
    session: Session,
    rows: list[MailboxRow],
    users: dict[str, User],
    existing: dict[str, tuple[int, int]],
) -> Counter[str]:
    """How many mailboxes each user would have once the file is imported."""
    name_of = {u.id: u.name for u in users.values()}
    counts: Counter[str] = Counter(
        {
            name_of[user_id]: n
            for user_id, n in session.execute(
                select(Mailbox.user_id, func.count()).group_by(Mailbox.user_id)
            )
        }
    )
    for row in rows:
        if row.email in existing:
            counts[name_of[existing[row.email][1]]] -= 1
        counts[row.user] += 1
    return counts
