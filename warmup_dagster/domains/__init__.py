"""Domain checks: each sending domain's MX, SPF, DKIM, DMARC and blocklist listings.

`checker` runs the checks of many domains at once over dnspython (`resolver`), `store` keeps
each domain's latest results in `domain_checks`, `gate` is what planning reads of them, and
`cli` is `warmup domains check`. `config` parses the settings' values; it imports nothing of the
rest, so `settings` can validate with it.
"""
