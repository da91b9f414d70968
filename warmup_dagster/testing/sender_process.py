"""A real sender run in a child process, for tests and benchmarks that SIGKILL it.

`SenderProcess` forks a child (`run_process.RunProcess`) that opens its own database engine,
loads its settings from the given `WARMUP_*` values and runs one `Sender` on a scaled clock.
The parent waits until the child is about to claim (`wait_ready`), then lets it run, kills it
with SIGKILL or asks it to stop with SIGTERM (`terminate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from multiprocessing.synchronize import Event

from warmup_dagster.clock import ScaledClock
from warmup_dagster.core.content import token_key
from warmup_dagster.crypto import Cipher
from warmup_dagster.db.engine import make_engine
from warmup_dagster.sending.worker import Sender
from warmup_dagster.settings import load_settings
from warmup_dagster.testing.run_process import FAILED, RunProcess

__all__ = ["FAILED", "SenderProcess"]


class SenderProcess(RunProcess):
    """One sender run in a forked child process (see the module docstring).

    Args:
        db_url: The application database.
        values: The `WARMUP_*` settings of the run (as `settings.load_settings` takes them).
        secret: `WARMUP_SECRET_KEY`: decrypts the passwords, derives the Message-IDs.
        worker_id: The run's worker id (its leases are under it).
        start: The clock's time when the child starts.
        speed: The clock's speed (clock seconds per real second).
        max_seconds: The run's lifetime, clock seconds.
    """

    def __init__(
        self,
        db_url: str,
        values: Mapping[str, str],
        secret: str,
        worker_id: str,
        start: datetime,
        speed: float,
        max_seconds: float,
    ) -> None:
        values = dict(values)

        def body(ready: Event) -> None:
            settings = load_settings(values)
            engine = make_engine(db_url)
            clock = ScaledClock(start, datetime.now(UTC), speed)
            sender = Sender(
                engine,
                clock,
                settings,
                Cipher(secret),
                token_key(secret),
                worker_id,
                max_seconds=max_seconds,
            )
            ready.set()
            sender.run()

        super().__init__(f"sender process {worker_id}", body)
        self.worker_id = worker_id
