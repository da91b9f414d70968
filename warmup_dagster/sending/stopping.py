"""Ending a sender run cleanly when it is asked to stop (SIGTERM, SIGINT).

A container stop, a deployment's rolling restart and Kubernetes send SIGTERM; Dagster's "terminate
run" sends SIGINT, and maps SIGTERM onto its SIGINT handler, which raises inside whatever runs.
Raised inside the run's event loop, that would abandon the SMTP sessions in flight and the
outcomes not written yet: their jobs would wait out their leases, and a message accepted but
not recorded would be looked for (or sent) again. So while a run's loop runs, both signals only
ask it to stop claiming; the sessions in flight end and every outcome is written before it
returns (`worker.Sender._finish`), and the previous handlers are back afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(loop: asyncio.AbstractEventLoop, stop: Callable[[str], None]) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT call `stop(signal name)` in `loop` instead of their
    handlers. Signals can be caught only in the main thread: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop, sig.name)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)
