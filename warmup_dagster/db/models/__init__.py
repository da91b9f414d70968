"""The data model, one module per plane: the pool (`pool`), the send queue and its counts
(`queue`), the receiving side (`engagement`), and what operating it keeps (`operations`), on
what they share (`base`). Importing this package defines every table on `Base.metadata`.

Statuses and other closed vocabularies are Python enums stored by name (upper case) in a
VARCHAR with a CHECK constraint, identical on SQLite and PostgreSQL: the database refuses
`sent` as firmly as it refuses `banana`, and adding a value is an ordinary migration.
"""

from warmup_dagster.db.models.base import Base
from warmup_dagster.db.models.engagement import (
    Engagement,
    EngagementMailbox,
    ImapRefusal,
    MailboxHealth,
    Placement,
    SentCopy,
)
from warmup_dagster.db.models.operations import (
    ClockAnchor,
    DomainCheck,
    DomainStatus,
    RunBeat,
    SecretKeyCheck,
)
from warmup_dagster.db.models.pool import Mailbox, MailboxOAuth, MailboxState, Plan, Security, User
from warmup_dagster.db.models.queue import (
    DailyQuota,
    JobKind,
    JobStatus,
    SendCounter,
    SendLog,
    SendTotal,
    Total,
    WarmupJob,
)

__all__ = [
    "Base",
    "ClockAnchor",
    "DailyQuota",
    "DomainCheck",
    "DomainStatus",
    "Engagement",
    "EngagementMailbox",
    "ImapRefusal",
    "JobKind",
    "JobStatus",
    "Mailbox",
    "MailboxHealth",
    "MailboxOAuth",
    "MailboxState",
    "Placement",
    "Plan",
    "RunBeat",
    "SecretKeyCheck",
    "Security",
    "SendCounter",
    "SendLog",
    "SendTotal",
    "SentCopy",
    "Total",
    "User",
    "WarmupJob",
]
