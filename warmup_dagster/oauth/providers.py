"""The OAuth2 providers a mailbox can sign in with, and the deployment's client at each.

Google and Microsoft have fixed endpoints and the scopes their SMTP and IMAP servers want;
the generic provider takes its endpoints and scopes from the settings (a provider this
project does not know, or the tests' local server). The client id and secret of each come
from the `WARMUP_OAUTH_<PROVIDER>_*` settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from warmup_dagster.settings import Settings

GOOGLE = "google"
MICROSOFT = "microsoft"
GENERIC = "generic"
PROVIDERS = (GOOGLE, MICROSOFT, GENERIC)

GOOGLE_SCOPES = "https://mail.google.com/"
MICROSOFT_SCOPES = (
    "https://outlook.office.com/SMTP.Send https://outlook.office.com/IMAP.AccessAsUser.All "
    "offline_access"
)


class ProviderNotConfigured(ValueError):
    """A mailbox names a provider whose client the deployment has not configured."""


# How `warmup mailboxes connect` gets a refresh token: the device-code flow (a code entered
# on any device), or a browser's authorization-code flow back to a loopback port (RFC 8252).
DEVICE = "device"
BROWSER = "browser"
FLOWS = (DEVICE, BROWSER)


@dataclass(frozen=True)
class Provider:
    """One provider's endpoints, scopes and the deployment's client there.

    `flow` is the connect flow it takes by default: Google's device-code flow does not allow
    the mail scope, so Google signs in through the browser.
    """

    name: str
    token_url: str
    device_url: str
    authorize_url: str
    scopes: str
    client_id: str
    client_secret: str = field(repr=False)
    flow: str = DEVICE
    # Extra authorization parameters: Google gives a refresh token only when asked so.
    authorize_params: tuple[tuple[str, str], ...] = ()


def provider(settings: Settings, name: str) -> Provider:
    """The provider `name` as this deployment is configured for it.

    Raises:
        ProviderNotConfigured: `name` is unknown, or a setting it needs is empty (named).
    """
    if name == GOOGLE:
        found = Provider(
            GOOGLE,
            "https://oauth2.googleapis.com/token",
            "https://oauth2.googleapis.com/device/code",
            "https://accounts.google.com/o/oauth2/v2/auth",
            GOOGLE_SCOPES,
            settings.oauth_google_client_id,
            settings.oauth_google_client_secret.get_secret_value(),
            flow=BROWSER,
            authorize_params=(("access_type", "offline"), ("prompt", "consent")),
        )
    elif name == MICROSOFT:
        base = f"https://login.microsoftonline.com/{settings.oauth_microsoft_tenant}/oauth2/v2.0"
        found = Provider(
            MICROSOFT,
            f"{base}/token",
            f"{base}/devicecode",
            f"{base}/authorize",
            MICROSOFT_SCOPES,
            settings.oauth_microsoft_client_id,
            settings.oauth_microsoft_client_secret.get_secret_value(),
        )
    elif name == GENERIC:
        found = Provider(
            GENERIC,
            settings.oauth_generic_token_url,
            settings.oauth_generic_device_url,
            settings.oauth_generic_authorize_url,
            settings.oauth_generic_scopes,
            settings.oauth_generic_client_id,
            settings.oauth_generic_client_secret.get_secret_value(),
        )
        if not found.token_url:
            raise ProviderNotConfigured(
                f"OAuth2 provider {GENERIC} needs WARMUP_OAUTH_GENERIC_TOKEN_URL"
            )
    else:
        raise ProviderNotConfigured(
            f"unknown OAuth2 provider {name!r} (known: {', '.join(PROVIDERS)})"
        )
    if not found.client_id:
        raise ProviderNotConfigured(
            f"OAuth2 provider {name} needs WARMUP_OAUTH_{name.upper()}_CLIENT_ID"
        )
    return found
