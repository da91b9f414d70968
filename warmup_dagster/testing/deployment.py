"""A Dagster deployment as `dagster dev` runs it, without the web server, for tests and benchmarks.

The production `dagster.yaml` (PostgreSQL storage, the run queue's tag limits) goes into a
temporary DAGSTER_HOME and `dagster-daemon run` runs in a subprocess. The end-to-end tests and
the send benchmark use it. It needs the repository checkout the package is installed from
(`make install` installs it in place): `dagster.yaml` and `workspace.yaml` live beside the
package, not in it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from types import TracebackType

import dagster as dg
import yaml

from warmup_dagster.clock import RealClock
from warmup_dagster.sensors.dispatch import ACTIVE

REPO = Path(__file__).resolve().parents[2]
DAEMON = Path(sys.executable).parent / "dagster-daemon"


def dagster_env() -> dict[str, str]:
    """The Dagster settings of `deploy/dagster.env`, which every deployment runs with."""
    lines = (REPO / "deploy" / "dagster.env").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


class ProcessGroup:
    """A child process in a session (process group) of its own, its output in `log_path`;
    stopped by the group, so nothing it started outlives it."""

    log_path: Path
    _process: subprocess.Popen[bytes] | None = None

    def _start(self, command: list[str], env: Mapping[str, str]) -> None:
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """`SIGTERM` to the group, then `SIGKILL` if it has not exited within 30 s."""
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=30)
        # A code server may ignore SIGTERM and outlive its parent: nothing of the group stays.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()

    def kill(self) -> None:
        """`SIGKILL` to the whole group at once, as a crash takes it: nothing ends cleanly."""
        assert self._process is not None, "not started"
        os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class DagsterDeployment(ProcessGroup):
    """Start with `with DagsterDeployment(home, storage_url, env) as d:`; stops on exit.

    Args:
        home: An empty folder to be DAGSTER_HOME.
        storage_url: Dagster's PostgreSQL storage (`postgresql+psycopg2://...`).
        env: `WARMUP_*` and other variables for the daemon and the runs it launches.
        sender_limit: The run queue's limit of sender runs (production's, if None).
        stopped_sensors: Sensors to switch off before the daemon starts (a benchmark that
            writes its own due jobs keeps planning out of its way).
    """

    def __init__(
        self,
        home: Path,
        storage_url: str,
        env: Mapping[str, str],
        sender_limit: int | None = None,
        stopped_sensors: tuple[str, ...] = (),
    ) -> None:
        self.home = home
        # Domain checks query DNS servers outside the machine unless a test gives its own
        # (WARMUP_DNS_NAMESERVERS), and engagement (with health) needs an IMAP side: both
        # off unless `env` turns them on. An open date's fill-rate runs come every clock
        # hour, every 2 real s at 1800x: off unless `env` asks for them.
        off = {
            "WARMUP_DOMAIN_CHECKS": "false",
            "WARMUP_ENGAGE": "false",
            "WARMUP_FILL_RATE_REFRESH_SECONDS": "0",
        }
        self.env = {**dagster_env(), **off, **os.environ, **env, "DAGSTER_HOME": str(home)}
        self.env["WARMUP_DAGSTER_POSTGRES_URL"] = storage_url
        config = yaml.safe_load((REPO / "dagster.yaml").read_text())
        if sender_limit is not None:
            for limit in config["concurrency"]["runs"]["tag_concurrency_limits"]:
                if limit["value"] == "sender":
                    limit["limit"] = sender_limit
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        self.log_path = home / "daemon.log"
        self.stopped_sensors = stopped_sensors

    def stop_sensors(self, names: tuple[str, ...]) -> None:
        """Stop each sensor with `dagster sensor stop`, all at once: each command loads the
        code location in a code server of its own, seconds apiece."""
        commands = [
            subprocess.Popen(
                [str(DAEMON.parent / "dagster"), "sensor", "stop", name, "-w", "workspace.yaml"],
                cwd=REPO,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for name in names
        ]
        for name, command in zip(names, commands, strict=True):
            output, _ = command.communicate()
            if command.returncode:
                raise AssertionError(f"could not stop {name}:\n{output.decode(errors='replace')}")

    def wait_for_tick(self, sensor: str, timeout: float) -> None:
        """Wait until the daemon has evaluated `sensor` once: the deployment is up."""
        line = f"Checking for new runs for sensor: {sensor}"
        self.wait_for(lambda: line in self.log_path.read_text(errors="replace"), timeout, line)

    def drain(self, sensors: tuple[str, ...], timeout: float) -> None:
        """Stop `sensors`, then wait until no run is queued or in progress."""
        self.stop_sensors(sensors)
        instance = self.instance()
        busy = dg.RunsFilter(statuses=ACTIVE)
        self.wait_for(lambda: instance.get_runs_count(busy) == 0, timeout, "idle instance")

    def __enter__(self) -> DagsterDeployment:
        # The first instance on a new storage creates its tables: here, once, before the
        # processes below open it (at once they raced: "relation instance_info already exists").
        self.instance().dispose()
        self.stop_sensors(self.stopped_sensors)
        # The daemon's group includes its code server; runs are their own processes.
        self._start([str(DAEMON), "run", "-w", str(REPO / "workspace.yaml")], self.env)
        return self

    def instance(self) -> dg.DagsterInstance:
        os.environ["WARMUP_DAGSTER_POSTGRES_URL"] = self.env["WARMUP_DAGSTER_POSTGRES_URL"]
        return dg.DagsterInstance.from_config(str(self.home))

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `condition` until true; fail with the daemon's log if it never is."""
        # Wall time: the daemon is a real process, whatever clock the deployment runs on.
        clock = RealClock()
        deadline = clock.now() + timedelta(seconds=timeout)
        while clock.now() < deadline:
            if condition():
                return
            if self._process is not None and self._process.poll() is not None:
                raise AssertionError(
                    f"the daemon exited while waiting for {what}:\n{self.log_tail()}"
                )
            clock.sleep(0.5)
        raise AssertionError(f"no {what} within {timeout:.0f} s; daemon log:\n{self.log_tail()}")
