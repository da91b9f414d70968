"""The project's partitions: one per mailbox for `send_plan`, one per local date for `fill_rate`.

`mailbox_partitions` is keyed by address and kept in step by `mailbox_partitions_sensor`.

`fill_days` is daily, from `WARMUP_FILL_RATE_START_DATE`, read when the definitions load.
Dagster bounds daily partitions by real time: a date is a partition once it has begun in
real time in UTC+14, where every date begins first, so each local date of every mailbox is
one as soon as it has begun anywhere. A scaled clock running behind real time (a benchmark's
fixed start) finds its dates there; one running ahead (the demo at 12x) reaches dates that
are no partitions yet: `WARMUP_FILL_RATE_DAYS_AHEAD` adds that many days past real time.
"""

import re
from collections.abc import Iterable
from datetime import date

import dagster as dg

from warmup_dagster.settings import Settings, load_settings

mailbox_partitions = dg.DynamicPartitionsDefinition(name="mailboxes")

# What the UI's partition selection (Dagster 1.13) takes unquoted; an address has a dot, so
# it is quoted, as the UI writes keys itself.
_BARE_KEY = re.compile(r"[-a-zA-Z0-9_:/@]+")


def selection_text(keys: Iterable[str]) -> str:
    """Partition keys as the UI's partition-selection box takes a list: `"a", "b"`."""

    def quoted(key: str) -> str:
        if _BARE_KEY.fullmatch(key):
            return key
        return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return ", ".join(quoted(key) for key in keys)


# UTC+14 all year: the first place each date begins.
EARLIEST_TIMEZONE = "Pacific/Kiritimati"


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """Local dates from the start date up to the one begun in UTC+14, plus the days ahead."""
    return dg.DailyPartitionsDefinition(
        start_date=settings.fill_rate_start_date.isoformat(),
        timezone=EARLIEST_TIMEZONE,
        end_offset=1 + settings.fill_rate_days_ahead,
    )


def last_day(partitions: dg.DailyPartitionsDefinition) -> date | None:
    """The latest date that is a partition now (in real time)."""
    key = partitions.get_last_partition_key()
    return date.fromisoformat(key) if key else None


fill_days = daily_partitions(load_settings())
