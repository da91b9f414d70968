"""The demo pool: 20 mailboxes of 5 owners that send through the local sandbox SMTP server.

`mailboxes.csv` says port 2525, the sandbox's default. `make demo` runs the sandbox on
`WARMUP_SANDBOX_PORT`, so it imports the pool through `pool_csv` with that port instead
(`python -m warmup_dagster.demo --smtp-port PORT --out FILE`).
"""

from __future__ import annotations

import csv
import io
from importlib.resources import files

POOL_FILE = "mailboxes.csv"


def pool_csv(smtp_port: int) -> str:
    """The demo pool as CSV text, every mailbox sending to the sandbox on `smtp_port`.

    Args:
        smtp_port: The sandbox server's port, 1-65535.

    Returns:
        The packaged `mailboxes.csv` with its `smtp_port` column set to `smtp_port`.

    Raises:
        ValueError: The port is outside 1-65535.
    """
    if not 1 <= smtp_port <= 65535:
        raise ValueError(f"smtp_port must be 1-65535, not {smtp_port}")
    source = files(__name__).joinpath(POOL_FILE).read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(source))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames or [], lineterminator="\n")
    writer.writeheader()
    for row in reader:
        writer.writerow({**row, "smtp_port": str(smtp_port)})
    return out.getvalue()
