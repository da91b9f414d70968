"""A run in a forked child process, for tests and benchmarks that SIGKILL it.

`RunProcess` forks a child (the parent's imports already loaded, so it starts in milliseconds)
that runs a body given to it: the body builds what its run needs (its own database engine, its
settings, a scaled clock), sets the ready event, and runs. The parent waits until the child is
ready (`wait_ready`), then lets it run or kills it with SIGKILL: no cleanup, no `finally`, no
last write, as an out-of-memory kill or a lost machine leaves a run; or asks it to stop with
SIGTERM (`terminate`). `SenderProcess` (`sender_process`) and `EngagerProcess`
(`engager_process`) are its two runs.

Fork, not spawn: a spawned interpreter spends seconds importing on a busy machine, which would
decide where the kills land more than the test does. The child touches nothing of the parent's
but what its body opens itself (a forked engine's pooled connections are the parent's sockets).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.synchronize import Event

# Exit code of a child whose run raised (a bug, or a setting it refused).
FAILED = 3

Body = Callable[[Event], None]


def _child(name: str, body: Body, ready: Event) -> None:
    try:
        logging.basicConfig(level=logging.WARNING, force=True)
        body(ready)
    except Exception:
        logging.getLogger(__name__).exception(f"{name} failed")
        os._exit(FAILED)
    os._exit(0)  # no atexit handlers: they belong to the parent (pytest, its servers)


class RunProcess:
    """One run in a forked child process (see the module docstring).

    Args:
        name: What the run is called in its errors (`sender process w1`).
        body: Runs in the child: sets the event once its run is about to start, then runs it.
    """

    def __init__(self, name: str, body: Body) -> None:
        context = multiprocessing.get_context("fork")
        self._ready = context.Event()
        self.name = name
        self._process = context.Process(
            target=_child, args=(name, body, self._ready), name=name, daemon=True
        )

    def start(self) -> None:
        self._process.start()

    def wait_ready(self, timeout: float) -> None:
        """Wait until the child is about to start its run.

        Raises:
            RuntimeError: It ended or did not get there within `timeout` real seconds.
        """
        if not self._ready.wait(timeout):
            code = self._process.exitcode
            raise RuntimeError(f"{self.name} not ready (exit code {code})")

    def is_alive(self) -> bool:
        return self._process.is_alive()

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
            raise RuntimeError(f"{self.name} still running after {timeout} s")
        return self._process.exitcode
