"""Mailbox health (see docs/ENGAGEMENT.md, "Placement and health").

`placement` reads what happened to each mailbox's mail (where the receiving side found it,
bounces, refused logins) per local date or over a window: grouped queries, no table of its
own. `store` judges every mailbox over the window (`core.health`) and keeps the verdicts in
`mailbox_health`, of which it is the one writer; `gate` is what planning reads of them.
"""
