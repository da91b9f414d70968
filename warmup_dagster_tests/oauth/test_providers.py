"""Which endpoints, scopes and client each provider has, and the settings' checks."""

from __future__ import annotations

import pytest

from warmup_dagster.oauth.providers import (
    BROWSER,
    DEVICE,
    ProviderNotConfigured,
    provider,
)
from warmup_dagster.settings import SettingsError, load_settings


def test_google_and_microsoft_endpoints_scopes_and_flows():
    settings = load_settings(
        {
            "WARMUP_OAUTH_GOOGLE_CLIENT_ID": "g-id",
            "WARMUP_OAUTH_GOOGLE_CLIENT_SECRET": "g-secret",
            "WARMUP_OAUTH_MICROSOFT_CLIENT_ID": "m-id",
            "WARMUP_OAUTH_MICROSOFT_TENANT": "contoso.onmicrosoft.com",
        }
    )
    google = provider(settings, "google")
    assert google.token_url == "https://oauth2.googleapis.com/token"
    assert google.scopes == "https://mail.google.com/" and google.flow == BROWSER
    assert ("access_type", "offline") in google.authorize_params
    assert google.client_secret == "g-secret" and "g-secret" not in repr(google)
    microsoft = provider(settings, "microsoft")
    assert microsoft.token_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert microsoft.scopes.split() == [
        "https://outlook.office.com/SMTP.Send",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "offline_access",
    ]
    assert microsoft.flow == DEVICE and microsoft.client_secret == ""


def test_a_provider_without_its_client_names_the_variable():
    settings = load_settings({})
    for name, variable in (
        ("google", "WARMUP_OAUTH_GOOGLE_CLIENT_ID"),
        ("microsoft", "WARMUP_OAUTH_MICROSOFT_CLIENT_ID"),
        ("generic", "WARMUP_OAUTH_GENERIC_TOKEN_URL"),
    ):
        with pytest.raises(ProviderNotConfigured, match=variable):
            provider(settings, name)
    with pytest.raises(ProviderNotConfigured, match="unknown OAuth2 provider 'aol'"):
        provider(settings, "aol")


def test_endpoints_must_be_https_and_secrets_are_never_shown():
    with pytest.raises(SettingsError) as excinfo:
        load_settings(
            {
                "WARMUP_OAUTH_GENERIC_TOKEN_URL": "http://idp.example/token",
                "WARMUP_OAUTH_GENERIC_DEVICE_URL": "ftp://idp.example/device",
                "WARMUP_OAUTH_GENERIC_CLIENT_SECRET": "hunter2-secret",
                "WARMUP_OAUTH_MICROSOFT_TENANT": "a/b",
            }
        )
    message = str(excinfo.value)
    assert "WARMUP_OAUTH_GENERIC_TOKEN_URL='http://idp.example/token' must be an https://" in (
        message
    )
    assert "WARMUP_OAUTH_GENERIC_DEVICE_URL" in message
    assert "WARMUP_OAUTH_MICROSOFT_TENANT" in message
    assert "hunter2" not in message
    local = load_settings({"WARMUP_OAUTH_GENERIC_TOKEN_URL": "http://127.0.0.1:8080/token"})
    assert local.oauth_generic_token_url == "http://127.0.0.1:8080/token"
    shown = load_settings({"WARMUP_OAUTH_GENERIC_CLIENT_SECRET": "hunter2-secret"})
    assert "hunter2" not in str(shown.oauth_generic_client_secret)
    assert "hunter2" not in repr(shown)
