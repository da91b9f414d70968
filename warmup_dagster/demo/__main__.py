"""Write the demo pool for a sandbox port: python -m warmup_dagster.demo --smtp-port N --out F."""

from pathlib import Path

import click

from warmup_dagster.demo import pool_csv


@click.command()
@click.option("--smtp-port", required=True, type=click.IntRange(1, 65535), help="Sandbox port.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def main(smtp_port: int, out: Path) -> None:
    """Write the demo pool to OUT with every mailbox sending to the sandbox on SMTP_PORT."""
    out.write_text(pool_csv(smtp_port), encoding="utf-8")


if __name__ == "__main__":
    main()
