"""The receiving side: engagement over IMAP (see docs/ENGAGEMENT.md).

`intake` takes delivered warmup mail in from the send log, `mailboxes` finds and leases the
mailboxes with work due, `imap` is one mailbox's IMAP session, `record` writes what a session
did and queues the replies (through `warmup_dagster.queue`), `run` is one engagement run.
The package is the one writer of `engagements` and `engagement_mailboxes`.
"""
