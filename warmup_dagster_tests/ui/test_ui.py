"""The Dagster UI as a user sees it: the webserver on demo days, in headless Chromium.

Three days of the demo pool are planned, sent and reported by the project's own code
(`warmup_dagster.testing.ui_demo`); on the last one an owner's mail server is down. The test
loads the `send_plan` partitions, the `fill_rate` plots and its checks, asserts on what the
page rendered (text that is there only once the data is), and does the clicks the README gives
for rerunning the mailboxes that missed: the backfill they launch is checked through GraphQL.
Screenshots go to `--ui-screenshots` (`make ui-check` writes `docs/images/`), else to the
test's temporary folder.
"""

from datetime import UTC, datetime, timedelta

import pytest

from warmup_dagster.testing.ui_demo import DOWN_OWNER, build_history
from warmup_dagster.testing.webserver import DagsterWebserver
from warmup_dagster_tests.ui.browser import chromium

PNG = b"\x89PNG\r\n\x1a\n"
SCREENSHOTS = (
    "ui-send-plan-partitions.png",
    "ui-fill-rate-plots.png",
    "ui-fill-rate-checks.png",
    "ui-send-plan-backfill.png",
)
CHECKS = ("counters_agree", "no_stuck_jobs", "plan_feasible", "quota_met", "rules_held")
BACKFILLS = """
{ partitionBackfillsOrError { __typename ... on PartitionBackfills {
    results { id isAssetBackfill partitionNames assetSelection { path } } } } }
"""


@pytest.fixture
def screenshots(request, tmp_path):
    chosen = request.config.getoption("ui_screenshots")
    return chosen.resolve() if chosen else tmp_path / "screenshots"


@pytest.mark.slow(110)
def test_the_ui_shows_plans_fill_rate_plots_and_checks_and_reruns_the_missed(tmp_path, screenshots):
    today = datetime.now(UTC).date()  # the UI's daily partitions end in real time
    days = [today - timedelta(days=n) for n in (3, 2, 1)]
    history = build_history(tmp_path / "dagster_home", days)
    missed = history.missed
    last = days[-1].isoformat()
    with DagsterWebserver(history.home, history.env) as web:
        # a new Dagster home: the community dialog is due, and the first page skips it
        assert web.graphql("{ shouldShowNux }")["shouldShowNux"] is True
        with chromium(web.url, community_dialog=True) as page:
            # Assets -> send_plan -> Partitions: a partition per mailbox, each planned
            page.open("/assets/send_plan?view=partitions")
            page.wait_for_text(
                f"{len(history.mailboxes)} Partitions Selected",
                f"Materialized ({len(history.mailboxes)})",
                "Failed (0)",
                "Missing (0)",
                *history.mailboxes,
            )
            page.click_text(missed[0])
            text = page.wait_for_text(
                "Latest materialization", "plan_mailboxes", "run_mailboxes", "first_slot"
            )
            assert f"local_date\n{last}" in text  # the last day's plan of that mailbox
            page.screenshot(screenshots / SCREENSHOTS[0])

            # Assets -> fill_rate -> Overview -> Metadata -> Plots: each figure across dates
            page.open("/assets/fill_rate")
            page.wait_for_text("Latest materialization", last, "mean_fill")
            page.click_button("Plots")
            text = page.wait_for_text(
                "mean_fill", "mailboxes_under_quota", "lateness_p95_min", "emails_sent"
            )
            assert "Key Timestamp Value" not in text  # the table gave way to the plots
            page.scroll_to_text("mailboxes_under_quota")
            page.screenshot(screenshots / SCREENSHOTS[1])

            # Assets -> fill_rate -> Checks -> quota_met: the five checks and who missed
            page.open("/assets/fill_rate?view=checks")
            page.click_text("quota_met")
            text = page.wait_for_text(
                "Checks (5)",
                "quota_met\nFailed",
                *(f"{name}\nSucceeded" for name in CHECKS if name != "quota_met"),
                f"{last}: 16 of 20 mailboxes (80.0%) sent at least 100% of their quota",
                "mailboxes_below 4",
                *(f"{email}: 0 of" for email in missed),
            )
            page.screenshot(screenshots / SCREENSHOTS[2])

            # The README's clicks to rerun them: Materialize... -> the partition field -> tick
            # each -> Launch backfill
            page.open("/assets/send_plan?view=partitions")
            page.wait_for_text(f"Materialized ({len(history.mailboxes)})")
            page.click_button("Materialize…")
            # opened on the Custom selection, empty
            page.wait_for_text(
                "Launch runs to materialize send_plan", "Partition selection\n0 partitions"
            )
            page.click_text("Select a partition or create one")
            page.wait_for_text(f"Select all ({len(history.mailboxes)})")  # the list is open
            for email in missed:
                page.type_into("Filter partitions", email)
                page.wait_for_text("Select all (1)")
                page.click_menu_item(email)
            page.type_into("Filter partitions", DOWN_OWNER)  # the ticked ones, for the picture
            page.wait_for_text(f"Partition selection\n{len(missed)} partitions")
            page.screenshot(screenshots / SCREENSHOTS[3])
            page.press_escape()
            page.click_button("Launch backfill")
            page.wait_until_gone("Launch runs to materialize send_plan")
            backfills = web.graphql(BACKFILLS)["partitionBackfillsOrError"]["results"]
            assert len(backfills) == 1, backfills
            # Runs -> Backfills lists it
            page.open("/runs?view=backfills")
            page.wait_for_text(backfills[0]["id"], f"{len(missed)} partitions", "send_plan")
    [backfill] = backfills
    assert backfill["isAssetBackfill"] is True
    assert backfill["assetSelection"] == [{"path": ["send_plan"]}]
    assert sorted(backfill["partitionNames"]) == sorted(missed)
    for name in SCREENSHOTS:
        data = (screenshots / name).read_bytes()
        assert data.startswith(PNG), name
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width >= 1200 and height >= 700, (name, width, height)
