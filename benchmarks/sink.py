"""An SMTP sink in its own process for `bench_send`: python -m benchmarks.sink PORT DELAY."""

import signal
import sys
import threading

from warmup_dagster.testing.smtp_server import FaultySmtpServer


def main() -> None:
    port, delay = int(sys.argv[1]), float(sys.argv[2])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FaultySmtpServer(port=port, data_delay=delay, keep_messages=False) as server:
        print("ready", flush=True)
        stop.wait()
        print(f"accepted {server.transactions}", flush=True)


if __name__ == "__main__":
    main()
