"""A real engagement run in a child process, for tests that SIGKILL it mid-pass.

`EngagerProcess` forks a child (`run_process.RunProcess`) that opens its own database engine,
loads its settings from the given `WARMUP_*` values and runs one `Engager` (intake, leases,
one IMAP session per mailbox) on a scaled clock. The parent waits until the child is about to
start (`wait_ready`), then watches the database and kills it with SIGKILL where it wants it
dead: mid-session, between a pass's writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from multiprocessing.synchronize import Event

from warmup_dagster.clock import ScaledClock
from warmup_dagster.core.content import token_key
from warmup_dagster.crypto import Cipher
from warmup_dagster.db.engine import make_engine
from warmup_dagster.engagement.run import Engager
from warmup_dagster.settings import load_settings
from warmup_dagster.testing.run_process import RunProcess


class EngagerProcess(RunProcess):
    """One engagement run in a forked child process (see the module docstring).

    Args:
        db_url: The application database.
        values: The `WARMUP_*` settings of the run (as `settings.load_settings` takes them).
        secret: `WARMUP_SECRET_KEY`: decrypts the IMAP passwords, recognises warmup mail.
        worker_id: The run's worker id (its mailbox leases are under it).
        start: The clock's time when the child starts.
        speed: The clock's speed (clock seconds per real second).
    """

    def __init__(
        self,
        db_url: str,
        values: Mapping[str, str],
        secret: str,
        worker_id: str,
        start: datetime,
        speed: float = 1.0,
    ) -> None:
        values = dict(values)

        def body(ready: Event) -> None:
            settings = load_settings(values)
            engine = make_engine(db_url)
            clock = ScaledClock(start, datetime.now(UTC), speed)
            engager = Engager(engine, clock, settings, Cipher(secret), token_key(secret), worker_id)
            ready.set()
            engager.run()

        super().__init__(f"engagement process {worker_id}", body)
        self.worker_id = worker_id
