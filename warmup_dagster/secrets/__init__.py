"""The deployment secret's bookkeeping: which key the stored credentials are encrypted with
(`keycheck`), the encrypted columns (`columns`), re-keying them all (`rotate`, `warmup secrets
rotate` in `cli`), and keeping credentials out of every text a server or library hands back
(`redact`). The encryption itself is `warmup_dagster.crypto`."""
