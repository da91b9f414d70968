"""`warmup mailboxes connect`, driven as an owner would, against the local OAuth2 provider's
device-code flow: the import leaves an OAuth2 mailbox waiting, connecting stores its refresh
token (encrypted) and resumes it."""

from __future__ import annotations

import threading
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from warmup_dagster.cli import main
from warmup_dagster.clock import RealClock
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import Mailbox, MailboxOAuth, MailboxState
from warmup_dagster.oauth.connect import ConnectFailed, connect
from warmup_dagster.oauth.tokens import TokenStore
from warmup_dagster.settings import load_settings
from warmup_dagster_tests.conftest import MONDAY_5AM, TEST_SECRET
from warmup_dagster_tests.factories import add_mailbox, add_user
from warmup_dagster_tests.mailboxes.csvdata import csv_text, row

EMAIL = "ann@oauth.example"


@pytest.fixture
def warmup(empty_db_url, tmp_path, provider):
    runner = CliRunner()
    env = {
        "WARMUP_DATABASE_URL": empty_db_url,
        "WARMUP_SECRET_KEY": TEST_SECRET,
        "DAGSTER_HOME": str(tmp_path),
        **provider.settings(),
    }

    def run(*args: str):
        return runner.invoke(main, list(args), env=env)

    run.env = env
    return run


def test_import_waits_for_connect_which_stores_the_token_and_resumes(
    warmup, tmp_path, provider, cipher, empty_db_url
):
    assert warmup("db", "upgrade").exit_code == 0
    path = tmp_path / "boxes.csv"
    path.write_text(
        csv_text([row(EMAIL, auth="oauth2", oauth_provider="generic", smtp_password="",
                      imap_password="")])
    )  # fmt: skip
    result = warmup("mailboxes", "import", str(path))
    assert result.exit_code == 0, result.output
    listing = warmup("mailboxes", "list", "--state", "paused").output
    assert f"warmup mailboxes connect {EMAIL} --provider generic" in listing

    provider.auto_approve = EMAIL  # the owner enters the code and consents
    result = warmup("mailboxes", "connect", EMAIL, "--provider", "generic")
    assert result.exit_code == 0, result.output
    assert f"{provider.url}/verify and enter the code " in result.output
    assert f"{EMAIL}: connected with generic; resumed" in result.output

    engine = make_engine(empty_db_url)
    try:
        with Session(engine) as session:
            box = session.scalar(select(Mailbox).where(Mailbox.email == EMAIL))
            stored = session.get(MailboxOAuth, box.id)
            assert box.state is MailboxState.ACTIVE and box.state_reason is None
            refresh = cipher.decrypt(stored.refresh_token_enc)
            assert refresh.startswith("rt-") and refresh not in result.output
        # The flow's first access token is stored too: the first send needs no refresh.
        settings = load_settings(warmup.env)
        login = TokenStore(engine, RealClock(), settings, cipher).login(box.id)
        assert login is not None and not login.fresh and provider.validate(login.token) == EMAIL
        assert sum(provider.refreshes.values()) == 0
    finally:
        engine.dispose()

    # The client secret is a secret: `warmup config` never shows it.
    config = warmup("config").output
    assert "WARMUP_OAUTH_GENERIC_CLIENT_ID=warmup-test-client" in config
    assert provider.client_secret not in config


def test_connect_names_what_is_missing(warmup, provider, tmp_path):
    assert warmup("db", "upgrade").exit_code == 0
    result = warmup("mailboxes", "connect", "nobody@oauth.example", "--provider", "generic")
    assert result.exit_code == 1 and "no mailbox 'nobody@oauth.example'" in result.output
    path = tmp_path / "boxes.csv"
    path.write_text(csv_text([row(EMAIL)]))
    assert warmup("mailboxes", "import", str(path)).exit_code == 0
    result = warmup("mailboxes", "connect", EMAIL, "--provider", "google")
    assert result.exit_code == 1
    assert "OAuth2 provider google needs WARMUP_OAUTH_GOOGLE_CLIENT_ID" in result.output


def _browser(opened: list[str]):
    """The owner's browser: opens the URL shown (the last line), follows the provider's
    redirect back to the command's loopback port."""

    def show(text: str) -> None:
        url = text.splitlines()[-1]
        opened.append(url)
        threading.Thread(target=lambda: urllib.request.urlopen(url, timeout=10).read()).start()

    return show


def test_the_browser_flow_comes_back_with_a_code_checked_by_pkce(engine, cipher, provider):
    with Session(engine) as session, session.begin():
        box_id = add_mailbox(session, add_user(session, "ann", MONDAY_5AM), EMAIL,
                             MONDAY_5AM, cipher).id  # fmt: skip
    settings = load_settings(provider.settings())
    provider.auto_approve = EMAIL
    opened: list[str] = []
    done = connect(engine, RealClock(), settings, cipher, EMAIL, "generic", _browser(opened),
                   flow="browser", wait=30)  # fmt: skip
    assert done.email == EMAIL and not done.resumed
    query = parse_qs(urlsplit(opened[0]).query)
    assert query["code_challenge_method"] == ["S256"] and query["redirect_uri"][0].startswith(
        "http://127.0.0.1:"
    )
    login = TokenStore(engine, RealClock(), settings, cipher).login(box_id)
    assert login is not None and provider.validate(login.token) == EMAIL

    provider.auto_approve = None  # the owner declines
    with pytest.raises(ConnectFailed, match="access_denied"):
        connect(engine, RealClock(), settings, cipher, EMAIL, "generic", _browser([]),
                flow="browser", wait=30)  # fmt: skip
