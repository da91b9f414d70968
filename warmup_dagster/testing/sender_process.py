"""A real sender run in a child process, for tests and benchmarks that SIGKILL it.

`SenderProcess` forks a child (the parent's imports already loaded, so it starts in
milliseconds) that opens its own database engine, loads its settings from the given
`WARMUP_*` values and runs one `Sender` on a scaled clock. The parent waits until the child is
about to claim (`wait_ready`), then lets it run or kills it with SIGKILL: no cleanup, no
`finally`, no last outcome write, as an out-of-memory kill or a lost machine leaves a run; or
asks it to stop with SIGTERM (`terminate`).

Fork, not spawn: a spawned interpreter spends seconds importing on a busy machine, which would
decide where the kills land more than the test does. The child touches nothing of the parent's
but its own new engine (a forked engine's pooled connections are the parent's sockets).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Mapping
from datetime import UTC, datetime
from multiprocessing.synchronize import Event

from warmup_dagster.clock import ScaledClock
from warmup_dagster.core.content import token_key
from warmup_dagster.crypto import Cipher
from warmup_dagster.db.engine import make_engine
from warmup_dagster.sending.worker import Sender
from warmup_dagster.settings import load_settings

# Exit code of a child whose run raised (a bug, or a setting it refused).
FAILED = 3


def _child(
    db_url: str,
    values: dict[str, str],
    secret: str,
    worker_id: str,
    start: datetime,
    speed: float,
    max_seconds: float,
    ready: Event,
) -> None:
    """The child's body: one sender run, its clock at `start` now and going at `speed`."""
    try:
        logging.basicConfig(level=logging.WARNING, force=True)
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
    except Exception:
        logging.getLogger(__name__).exception(f"sender process {worker_id} failed")
        os._exit(FAILED)
    os._exit(0)  # no atexit handlers: they belong to the parent (pytest, its servers)


class SenderProcess:
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
        context = multiprocessing.get_context("fork")
        self._ready = context.Event()
        self.worker_id = worker_id
        self._process = context.Process(
            target=_child,
            args=(db_url, dict(values), secret, worker_id, start, speed, max_seconds, self._ready),
            name=f"sender-{worker_id}",
            daemon=True,
        )

    def start(self) -> None:
        self._process.start()

    def wait_ready(self, timeout: float) -> None:
        """Wait until the child is about to start its run (its settings loaded, its engine
        made).

        Raises:
            RuntimeError: It ended or did not get there within `timeout` real seconds.
        """
        if not self._ready.wait(timeout):
            code = self._process.exitcode
            raise RuntimeError(f"sender process {self.worker_id} not ready (exit code {code})")

    def kill(self) -> bool:
        """SIGKILL the child; returns whether it was still running (a run that ended before
        its kill was not killed)."""
        running = self._process.is_alive()
        if running and self._process.pid is not None:
            os.kill(self._process.pid, signal.SIGKILL)
        self._process.join()
        return running and self._process.exitcode == -signal.SIGKILL

    def terminate(self) -> None:
        """Send the child SIGTERM, as a container stop or Dagster's run termination would."""
        if self._process.pid is not None:
            os.kill(self._process.pid, signal.SIGTERM)

    def join(self, timeout: float) -> int:
        """Wait for the child to end on its own; returns its exit code.

        Raises:
            RuntimeError: Still running after `timeout` real seconds (it is killed then).
        """
        self._process.join(timeout)
        if self._process.exitcode is None:
            self.kill()
            raise RuntimeError(f"sender process {self.worker_id} still running after {timeout} s")
        return self._process.exitcode
