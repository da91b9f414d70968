"""OAuth2 sign-in (XOAUTH2) for mailboxes whose providers no longer take passwords.

`providers` says where each provider's endpoints are and which client the deployment uses,
`client` talks to them (authlib), `tokens` hands sender and engagement runs the mailbox's
current access token, refreshed once per lifetime for every run on every machine, and
`connect` walks an owner through the device-code flow to store a refresh token.
"""
