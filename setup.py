from setuptools import find_packages, setup

DAGSTER_VERSION = "1.13.27"
DAGSTER_LIB_VERSION = "0.29.27"

setup(
    name="warmup_dagster",
    version="0.1.0",
    description="Email warmup on Dagster: mailboxes mail each other on a rising quota.",
    packages=find_packages(exclude=["warmup_dagster_tests*"]),
    package_data={"warmup_dagster": ["migrations/*.ini", "migrations/*.mako", "demo/*.csv"]},
    include_package_data=True,
    python_requires=">=3.11,<3.14",
    install_requires=[
        f"dagster=={DAGSTER_VERSION}",
        f"dagster-webserver=={DAGSTER_VERSION}",
        f"dagster-graphql=={DAGSTER_VERSION}",
        f"dagster-postgres=={DAGSTER_LIB_VERSION}",
        "sqlalchemy>=2.0,<2.2",
        "pydantic>=2,<3",
        "alembic>=1.13,<2",
        "psycopg2-binary>=2.9,<3",
        "cryptography>=42",
        "pyyaml>=6",
        "aiosmtplib>=5.1,<6",  # 5.1: auth_xoauth2
        "imapclient>=3,<5",
        "aiosmtpd>=1.4,<2",
        "click>=8",
        "tqdm>=4.66",
        "pydantic-settings>=2.6,<3",
        "pandas>=2.2,<4",
        "prometheus-client>=0.20,<1",
        # Domain checks: DNS lookups, SPF evaluation (RFC 7208), the Public Suffix List
        # (DMARC's organizational domain, shipped with the package); dnslib is the tests'
        # authoritative DNS server (warmup_dagster/testing/dns_server.py).
        "dnspython>=2.6,<3",
        "pyspf>=2.0.14,<2.1",
        "publicsuffixlist>=1.0,<2",
        "dnslib>=0.9.24,<0.10",
        # OAuth2 sign-in (XOAUTH2): authlib's token refresh and device-code flow, on its
        # requests integration.
        "authlib>=1.3,<2",
        "requests>=2.31,<3",
        # The mailbox CSV stores internationalised domains in IDNA 2008 form (mailboxes/addresses).
        "idna>=3.6,<4",
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            # the suite runs on every core (pyproject: -n); most of its time is waiting
            "pytest-xdist>=3.6,<4",
            "hypothesis>=6.100",
            "ruff>=0.6",
            "selenium>=4.20,<5",
        ],
    },
    entry_points={"console_scripts": ["warmup=warmup_dagster.cli:main"]},
)
