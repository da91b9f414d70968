"""Progress for long work: a bar on a terminal, one line per stage otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from tqdm import tqdm


class Progress(Protocol):
    def update(self, n: int = 1) -> None: ...
    def __enter__(self) -> Progress: ...
    def __exit__(self, *exc: object) -> None: ...


ProgressFactory = Callable[[str, int | None], Progress]


class SilentProgress:
    """Counts and says nothing (library calls, tests)."""

    def __init__(self, stage: str = "", total: int | None = None) -> None:
        self.count = 0

    def update(self, n: int = 1) -> None:
        self.count += n

    def __enter__(self) -> SilentProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class StageLine(SilentProgress):
    """Writes `stage: N in X.Ys` when the stage ends: readable in CI logs and pipes."""

    def __init__(self, stage: str, total: int | None, stream: TextIO) -> None:
        super().__init__()
        self.stage, self.stream, self.started = stage, stream, time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.started
        self.stream.write(f"{self.stage}: {self.count:,} in {elapsed:.1f}s\n")
        self.stream.flush()


def progress_for(stream: TextIO = sys.stderr) -> ProgressFactory:
    """A bar when `stream` is a terminal, stage lines otherwise."""
    if stream.isatty():
        return lambda stage, total: tqdm(total=total, desc=stage, unit="row", file=stream)
    return lambda stage, total: StageLine(stage, total, stream)
