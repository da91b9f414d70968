"""Benchmark: engagement against Dovecot on this machine, beside a raw IMAP loop as its ceiling.

    python -m benchmarks.bench_engage [--mailboxes 500 --per-mailbox 10]   (make bench-engage)

Setup (not timed): Dovecot on loopback (`testing/imap_server.py`, TLS with a self-signed
certificate), `--mailboxes` users, and a scratch PostgreSQL database with as many mailboxes
(on Dovecot's TLS port) and, for each, `--per-mailbox` warmup messages it received from the
others: their jobs SENT and their send-log rows, as the sender leaves them, two hours ago.
The mail is written straight into the Maildirs (`--junk` of it into Junk, the senders' copies
into Sent), which is what delivery would have left, made fast.

Timed, in one run, holding /tmp/warmup-bench.lock exclusively:

1. The raw loop, the ceiling: imapclient alone, `--runs` x `--concurrency` threads, each
   mailbox once: login, then in Junk and the inbox each message searched by its Message-ID
   header, its flags fetched, `\\Seen` stored and moved to the Warmup folder; the senders'
   copies searched in Sent and moved there too. No database.
2. The Maildirs are written again, the same mail, and `--runs` engagement runs
   (`engagement.run.Engager`, `--concurrency` sessions each) run at once, each in a process
   of its own: intake from the send log, leases, IMAP passes (rescue, seen, flag, file, the
   Sent copies), the records and the replies queued. Wall time from their start to the last
   one's end; each reports its peak memory (`ru_maxrss`).

Both are reported as received messages handled per minute. Goals: the engagement runs at
least 5,000 a minute, at least half the raw loop's rate, and at most 250 MB per run.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pwd
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from imapclient import IMAPClient
from sqlalchemy import func, insert, select, text

from benchmarks.common import machine, scratch_postgres
from warmup_dagster.clock import FixedClock
from warmup_dagster.core.content import job_message_id, token_key
from warmup_dagster.crypto import Cipher
from warmup_dagster.db import migrate
from warmup_dagster.db.engine import make_engine
from warmup_dagster.db.models import (
    Engagement,
    JobKind,
    JobStatus,
    Mailbox,
    MailboxState,
    Placement,
    Security,
    SendLog,
    User,
    WarmupJob,
)
from warmup_dagster.engagement.run import Engager
from warmup_dagster.local_imap import JUNK, SENT
from warmup_dagster.settings import load_settings
from warmup_dagster.testing.certificates import self_signed_cert
from warmup_dagster.testing.imap_server import DovecotServer, to_junk

LOCK = "/tmp/warmup-bench.lock"
SECRET = "benchmark-secret-key-0123456789"
PASSWORD = "bench-pw"
WARMUP = "Warmup"
SENT_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = SENT_AT + timedelta(hours=2)  # every look delay (at most an hour) has passed


@dataclass(frozen=True)
class Message:
    sender: str
    recipient: str
    message_id: str
    junk: bool
    raw: bytes


def email_of(n: int) -> str:
    return f"box{n}@d{n % 50}.example"


def make_mail(mailboxes: int, per_mailbox: int, junk: float) -> list[tuple[int, int, Message]]:
    """(job id, sender index, message) for every message: box i hears from the next ones."""
    key = token_key(SECRET)
    out = []
    job_id = 0
    for r in range(mailboxes):
        for k in range(per_mailbox):
            job_id += 1
            s = (r + 1 + k) % mailboxes
            sender, recipient = email_of(s), email_of(r)
            message_id, _ = job_message_id(key, job_id, job_id * 7919, sender.split("@")[1])
            m = EmailMessage()
            m["From"], m["To"] = sender, recipient
            m["Subject"] = f"Catching up, part {k}"
            m["Message-ID"] = message_id
            m["Date"] = format_datetime(SENT_AT)
            m.set_content("Hello,\n\nA few lines of warmup mail.\n\nBest,\n" + sender + "\n")
            out.append(
                (job_id, s, Message(sender, recipient, message_id, to_junk(message_id, junk),
                                    m.as_bytes()))
            )  # fmt: skip
    return out


def write_database(url: str, mailboxes: int, port: int, mail: list) -> None:
    engine = make_engine(url)
    cipher = Cipher(SECRET)
    password = cipher.encrypt(PASSWORD)
    created = SENT_AT - timedelta(days=30)
    with engine.begin() as conn:
        plan = conn.scalar(text("SELECT id FROM plans WHERE name = 'enterprise'"))
        users = [{"id": u + 1, "name": f"owner{u}", "plan_id": plan, "created_at": created}
                 for u in range(mailboxes // 10 + 1)]  # fmt: skip
        conn.execute(insert(User), users)
        boxes = []
        for n in range(mailboxes):
            email = email_of(n)
            boxes.append(
                dict(id=n + 1, email=email, domain=email.split("@")[1], user_id=n // 10 + 1,
                     smtp_host="127.0.0.1", smtp_port=25, smtp_security=Security.NONE,
                     smtp_username=email, smtp_password_enc=password, imap_host="127.0.0.1",
                     imap_port=port, imap_security=Security.SSL, imap_username=email,
                     imap_password_enc=password, state=MailboxState.ACTIVE, daily_limit=40,
                     ramp_start=10, ramp_step=2, reply_rate=0.3, weekdays_only=False,
                     warmup_start_date=created.date(), created_at=created, updated_at=created)
            )  # fmt: skip
        conn.execute(insert(Mailbox), boxes)
        jobs, log = [], []
        for job_id, s, m in mail:
            r = int(m.recipient.split("@")[0].removeprefix("box"))
            at = SENT_AT + timedelta(seconds=job_id % 600)
            jobs.append(
                dict(id=job_id, kind=JobKind.SEND, mailbox_id=s + 1, user_id=s // 10 + 1,
                     recipient_mailbox_id=r + 1, recipient_email=m.recipient,
                     local_date=at.date(), scheduled_at=at, due_at=at, status=JobStatus.SENT,
                     attempts=1, message_id=m.message_id, subject=f"Catching up, part {job_id}",
                     body="Hello", token="t", sent_at=at, content_seed=job_id, created_at=at,
                     updated_at=at)
            )  # fmt: skip
            log.append(
                dict(job_id=job_id, mailbox_id=s + 1, user_id=s // 10 + 1, kind=JobKind.SEND,
                     recipient_email=m.recipient, message_id=m.message_id,
                     status=JobStatus.SENT, attempt=1, smtp_code=250, claimed_at=at,
                     local_date=at.date(), late=False, created_at=at)
            )  # fmt: skip
        conn.execute(insert(WarmupJob), jobs)
        conn.execute(insert(SendLog), log)
        # The ids were given: the sequences go on after them (the replies take new ones).
        for table in ("users", "mailboxes", "warmup_jobs"):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                )
            )
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


def deliver(dovecot: DovecotServer, mail: list) -> None:
    """Write every message into its recipient's inbox or Junk, and its copy into the
    sender's Sent folder, as Maildir files owned by Dovecot's mail user; earlier mail goes."""
    account = pwd.getpwnam("dovecot" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())[0])
    root = dovecot.mail
    for child in root.iterdir():
        shutil.rmtree(child)
    made: set[Path] = set()

    def folder(login: str, name: str | None) -> Path:
        path = root / login.lower() / (f".{name}" if name else "")
        if path not in made:
            for sub in ("cur", "new", "tmp"):
                (path / sub).mkdir(parents=True, exist_ok=True)
            made.add(path)
        return path

    for n, (_, _, m) in enumerate(mail):
        inbox = folder(m.recipient, JUNK if m.junk else None)
        (inbox / "new" / f"{1_700_000_000 + n}.M{n}P1.bench").write_bytes(m.raw)
        sent = folder(m.sender, SENT)
        (sent / "cur" / f"{1_700_000_000 + n}.M{n}P2.bench:2,S").write_bytes(m.raw)
    for path in sorted(root.rglob("*")):
        os.chown(path, account.pw_uid, account.pw_gid)
    os.chown(root, account.pw_uid, account.pw_gid)


def raw_mailbox(dovecot: DovecotServer, cert: Path, login: str, received: list, sent: list) -> int:
    """The ceiling's work for one mailbox (see the module docstring); messages handled."""
    import ssl

    context = ssl.create_default_context(cafile=str(cert))
    imap = IMAPClient("127.0.0.1", dovecot.ssl_port, ssl=True, ssl_context=context, timeout=30)
    handled = 0
    try:
        imap.login(login, PASSWORD)
        if not imap.folder_exists(WARMUP):
            imap.create_folder(WARMUP)
        for name, wanted in ((JUNK, [m for m in received if m.junk]),
                             ("INBOX", [m for m in received if not m.junk])):  # fmt: skip
            imap.select_folder(name)
            for m in wanted:
                uids = imap.search(["HEADER", "Message-ID", m.message_id])
                if uids:
                    imap.fetch(uids, ["FLAGS"])
                    imap.add_flags(uids, [b"\\Seen"], silent=True)
                    imap.move(uids, WARMUP)
                    handled += 1
        imap.select_folder(SENT)
        for m in sent:
            uids = imap.search(["HEADER", "Message-ID", m.message_id])
            if uids:
                imap.move(uids, WARMUP)
    finally:
        imap.logout()
    return handled


def raw_loop(dovecot: DovecotServer, cert: Path, mail: list, threads: int) -> tuple[int, float]:
    by_login: dict[str, tuple[list, list]] = {}
    for _, _, m in mail:
        by_login.setdefault(m.recipient, ([], []))[0].append(m)
        by_login.setdefault(m.sender, ([], []))[1].append(m)
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        counts = pool.map(
            lambda item: raw_mailbox(dovecot, cert, item[0], *item[1]), by_login.items()
        )
        handled = sum(counts)
    return handled, time.perf_counter() - started


def engage_child(args: argparse.Namespace) -> None:
    """One engagement run in this process: its summary and peak memory as JSON on stdout."""
    settings = load_settings(
        {
            "WARMUP_IMAP_CA_FILE": args.ca_file,
            "WARMUP_ENGAGE_CONCURRENCY": str(args.concurrency),
            "WARMUP_ENGAGE_MAILBOXES_PER_RUN": str(args.per_run),
            "WARMUP_SEND_WINDOW_START_HOUR": "0",
            "WARMUP_SEND_WINDOW_END_HOUR": "24",
        }
    )
    engine = make_engine(args.child)
    started, began = time.perf_counter(), time.time()
    summary = Engager(
        engine, FixedClock(NOW), settings, Cipher(SECRET), token_key(SECRET), args.worker
    ).run()
    out = {
        "began": began,
        "ended": time.time(),
        "seconds": time.perf_counter() - started,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **summary.metadata(),
    }
    print(json.dumps(out))


def engage_runs(url: str, ca_file: Path, runs: int, concurrency: int, per_run: int) -> tuple:
    command = [sys.executable, "-m", "benchmarks.bench_engage", "--child", url,
               "--ca-file", str(ca_file), "--concurrency", str(concurrency),
               "--per-run", str(per_run)]  # fmt: skip
    children = [
        subprocess.Popen([*command, "--worker", f"bench-{i}"], stdout=subprocess.PIPE, text=True)
        for i in range(runs)
    ]
    outputs = []
    for child in children:
        stdout, _ = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"an engagement run failed (exit {child.returncode})")
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    # From the first run's start to the last one's end: the runs' work, not the interpreters'
    # start (a Dagster run's own start is docs/BENCHMARKS.md's "Sending" figure).
    return outputs, max(o["ended"] for o in outputs) - min(o["began"] for o in outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mailboxes", type=int, default=500)
    parser.add_argument("--per-mailbox", type=int, default=10, help="messages each receives")
    parser.add_argument("--junk", type=float, default=0.3, help="share delivered into Junk")
    parser.add_argument("--runs", type=int, default=2, help="engagement runs at once")
    parser.add_argument("--concurrency", type=int, default=10, help="IMAP sessions per run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--ca-file", help=argparse.SUPPRESS)
    parser.add_argument("--per-run", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engage_child(args)
        return
    print(f"machine: {machine()}; date: {datetime.now(UTC):%Y-%m-%d}")
    mail = make_mail(args.mailboxes, args.per_mailbox, args.junk)
    total = len(mail)
    junk = sum(m.junk for _, _, m in mail)
    print(f"{args.mailboxes:,} mailboxes, {total:,} messages received ({junk:,} in Junk), "
          f"as many Sent copies; {args.runs} runs x {args.concurrency} sessions")  # fmt: skip
    with tempfile.TemporaryDirectory() as tls, scratch_postgres("warmup_bench_engage") as url:
        cert, key = self_signed_cert(Path(tls))
        users = {email_of(n): PASSWORD for n in range(args.mailboxes)}
        with DovecotServer(users, cert=cert, key=key) as dovecot:
            migrate.upgrade(url)
            write_database(url, args.mailboxes, dovecot.ssl_port, mail)
            deliver(dovecot, mail)
            with open(LOCK, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # until nobody is testing; then keep them out
                try:
                    handled, raw_s = raw_loop(dovecot, cert, mail, args.runs * args.concurrency)
                    deliver(dovecot, mail)
                    per_run = -(-args.mailboxes // args.runs)
                    outputs, engage_s = engage_runs(url, cert, args.runs, args.concurrency, per_run)
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
            engine = make_engine(url)
            with engine.connect() as conn:
                placed = dict(
                    conn.execute(
                        select(Engagement.placement, func.count()).group_by(Engagement.placement)
                    ).all()
                )
                replies = conn.scalar(select(func.count()).where(WarmupJob.kind == JobKind.REPLY))
            engine.dispose()
    raw_rate = handled / raw_s * 60
    engaged = placed.get(Placement.INBOX, 0) + placed.get(Placement.SPAM, 0)
    rate = engaged / engage_s * 60
    print(f"raw loop: {handled:,} messages in {raw_s:.1f} s = {raw_rate:,.0f}/min")
    print(
        f"engagement: {engaged:,} messages in {engage_s:.1f} s = {rate:,.0f}/min "
        f"({rate / raw_rate:.0%} of the raw loop); placements "
        f"{ {p.name: n for p, n in placed.items()} }, {replies:,} replies queued"
    )
    for n, out in enumerate(outputs):
        print(
            f"  run {n}: {out['mailboxes']} mailboxes, {out['inbox']} inbox, "
            f"{out['spam (rescued)']} spam, {out['sent copies filed']} copies filed, "
            f"{out['seconds']:.1f} s, peak {out['peak_mb']:.0f} MB"
        )
    wrong = []
    if handled != total:
        wrong.append(f"the raw loop handled {handled:,} of {total:,}")
    if engaged != total or placed.get(Placement.SPAM, 0) != junk:
        wrong.append(f"engagement placed {engaged:,} of {total:,} ({placed})")
    if wrong:
        raise SystemExit("; ".join(wrong))


if __name__ == "__main__":
    main()
