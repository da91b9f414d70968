"""Dagster resources: the bridge from Dagster code to the warmup database and clock."""

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy.engine import Engine

from warmup_dagster.clock import Clock, clock_from_settings
from warmup_dagster.crypto import Cipher
from warmup_dagster.db.engine import make_engine
from warmup_dagster.liveness import Beating
from warmup_dagster.settings import Settings, load_settings


class WarmupDatabase(dg.ConfigurableResource):
    """The warmup application's database, its validated `WARMUP_*` settings and its clock.

    Settings are read from the environment of the process that runs the code (the run worker),
    so every run, on every machine, validates the same variables at start. `database_url`
    overrides `WARMUP_DATABASE_URL` (tests use it); leave it empty in deployments.

    In a run (not a sensor's evaluation) it beats while it is set up, so a run whose process
    died is found and failed (`liveness`).
    """

    database_url: str = ""

    _settings: Settings | None = PrivateAttr(default=None)
    _engine: Engine | None = PrivateAttr(default=None)
    _clock: Clock | None = PrivateAttr(default=None)
    _beating: Beating | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        settings = load_settings()
        if self.database_url:
            # validated and normalized like WARMUP_DATABASE_URL
            settings = settings.model_copy(update={"database_url": self.database_url})
        self._settings = settings
        self._engine = make_engine(settings.database_url)
        self._clock = clock_from_settings(settings, self._engine)
        if context.run is not None:
            run_id = context.run.run_id
            self._beating = Beating(self._engine, self._clock, settings, run_id).start()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._beating is not None:
            self._beating.stop()
        if self._engine is not None:
            self._engine.dispose()

    @property
    def settings(self) -> Settings:
        assert self._settings is not None, "resource used before setup"
        return self._settings

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "resource used before setup"
        return self._engine

    @property
    def clock(self) -> Clock:
        assert self._clock is not None, "resource used before setup"
        return self._clock


class WarmupSecrets(dg.ConfigurableResource):
    """The deployment secret (`WARMUP_SECRET_KEY`): decrypts mailbox credentials and the
    message-token key stored with the key check (`secrets.keycheck`).

    Set it with `dg.EnvVar("WARMUP_SECRET_KEY")`: read at run time, never shown in the UI.
    """

    secret_key: str

    @property
    def cipher(self) -> Cipher:
        return Cipher(self.secret_key)
