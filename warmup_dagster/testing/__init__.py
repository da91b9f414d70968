"""Real servers for tests and benchmarks, shipped with the package like `procrastinate.testing`.

`postgres`: throwaway databases on a PostgreSQL server (`WARMUP_TEST_POSTGRES_URL`).
`smtp_server`: a loopback SMTP server that misbehaves on request (`FaultySmtpServer`).
`certificates`: a self-signed certificate for that server's TLS modes.
`deployment`: a Dagster deployment as `dagster dev` runs it, without the web server.

Nothing else in the package imports this one, and it imports no test framework: the test
suite and the benchmarks use it, a deployment never does.
"""
