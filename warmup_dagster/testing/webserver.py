"""The Dagster webserver on a Dagster home, in its own process group, for the UI check.

`dagster-webserver -w workspace.yaml` serves the UI and its GraphQL API; it starts the code
location as a child process. Started with `with DagsterWebserver(home, env) as web:`, it is
ready once GraphQL reports the code location loaded, and it is stopped by its process group
(`SIGTERM`, then `SIGKILL`), so its code server never outlives it.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from warmup_dagster.clock import RealClock
from warmup_dagster.local_smtp import free_port
from warmup_dagster.testing.deployment import REPO, ProcessGroup, dagster_env

WEBSERVER = Path(sys.executable).parent / "dagster-webserver"
HOST = "127.0.0.1"
# The code location's state, as the UI's own status page asks for it.
LOCATIONS = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


class DagsterWebserver(ProcessGroup):
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
        self._start([*command, "-h", HOST, "-p", str(self.port)], self.env)
        try:
            self._wait_until_loaded()
        except BaseException:
            self.stop()
            raise
        return self

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
