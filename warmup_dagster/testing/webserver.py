"""The Dagster webserver on a Dagster home, in its own process group, for the UI check.

`dagster-webserver -w workspace.yaml` serves the UI and its GraphQL API; it starts the code
location as a child process. Started with `with DagsterWebserver(home, env) as web:`, it is
ready once GraphQL reports the code location loaded, and it is stopped by its process group
(`SIGTERM`, then `SIGKILL`), so its code server never outlives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from types import TracebackType

from warmup_dagster.clock import RealClock
from warmup_dagster.local_smtp import free_port
from warmup_dagster.testing.deployment import REPO, dagster_env

WEBSERVER = Path(sys.executable).parent / "dagster-webserver"
HOST = "127.0.0.1"
# The code location's state, as the UI's own status page asks for it.
LOCATIONS = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


class DagsterWebserver:
    """Start with `with DagsterWebserver(home, env) as web:`; `web.url` is the UI's address.

    Args:
        home: DAGSTER_HOME (with its `dagster.yaml`).
        env: `WARMUP_*` and other variables for the webserver and its code server.
        port: The port to serve on; a free one when None.
        timeout: Seconds to wait for the code location to load.
    """

    def __init__(
        self,
        home: Path,
        env: Mapping[str, str],
        port: int | None = None,
        timeout: float = 180,
    ) -> None:
        self.home = home
        self.port = port or free_port(HOST)
        self.timeout = timeout
        self.env = {**dagster_env(), **os.environ, **env, "DAGSTER_HOME": str(home)}
        self.log_path = home / "webserver.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def graphql(self, query: str, variables: Mapping[str, object] | None = None) -> dict:
        """POST a GraphQL query to the webserver; returns its `data`."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        if answer.get("errors"):
            raise AssertionError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]

    def __enter__(self) -> DagsterWebserver:
        command = [str(WEBSERVER), "-w", str(REPO / "workspace.yaml")]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [*command, "-h", HOST, "-p", str(self.port)],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_until_loaded()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_loaded(self) -> None:
        clock = RealClock()  # wall time: the webserver is a real process
        deadline = clock.now() + timedelta(seconds=self.timeout)
        state = "no answer"
        while clock.now() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise AssertionError(f"the webserver exited:\n{self.log_tail()}")
            try:
                entries = self.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                state = f"no answer ({exc})"
            else:
                state = repr(entries)
                loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
                if entries and len(loaded) == len(entries):
                    errors = [
                        e for e in loaded if e["locationOrLoadError"]["__typename"] == "PythonError"
                    ]
                    if errors:
                        raise AssertionError(f"the code location failed to load: {errors}")
                    return
            clock.sleep(0.5)
        raise AssertionError(
            f"the webserver did not load the code location within {self.timeout:.0f} s "
            f"({state}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=30)
        # Its code server may ignore SIGTERM: nothing of the group stays.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
