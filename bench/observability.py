"""Benchmark of the read path: the dashboard, the API and /metrics on 1,000,000 stored
events, and webhook ack latency with and without those reads running.

    .venv/bin/python -m bench.observability [--rows 1000000] [--seconds 10] [--write]

For SQLite and, with BENCH_DATABASE_URL (or TEST_DATABASE_URL), PostgreSQL (**its
public schema is wiped**): fills the database in bulk (SQL-generated rows: `--rows`
processed events over 30 days, a fifth as many replies, their receipts and twice as
many receipt-history rows), starts gunicorn (gunicorn.conf.py) on 127.0.0.1 with a
local fake Twilio API, then measures each read alone (median and max of --reads), and
webhooks posted at --rate per second for --seconds: once alone, once while two threads
each load every dashboard page, the API's statistics and /metrics, then wait
--read-pause seconds (an operator's reloads and a scraper, faster than real ones). Prints a table;
`--write` appends it to bench/RESULTS.md. Loopback only; a few minutes in all.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import requests
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

from app.cli import sample_events
from app.store.database import Database
from bench.run import PATH, PUBLIC, SID, TOKEN, backends, commit, machine, reset
from tests.support.fake_conversations import FakeConversationsAPI
from tests.support.servers import ROOT, gunicorn

ADMIN = "bench-admin-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {ADMIN}"}
READS = {"dashboard /admin/": "/admin/", "dashboard /admin/failures": "/admin/failures",
         "dashboard thread /admin/conversations/<CH>": "/admin/conversations/CH{:032d}",
         "dashboard /admin/?state=not_answered": "/admin/?state=not_answered",
         "dashboard /admin/?channel=WHATSAPP": "/admin/?channel=WHATSAPP",
         "dashboard /admin/?state=opted_out (none: reads MAX_SCAN)":
             "/admin/?state=opted_out",
         "dashboard search /admin/?q=<phone>": "/admin/?q=%2B1555{:07d}",
         "dashboard search /admin/?q=<IM>": "/admin/?q=IM{:032d}",
         "GET /api/conversations?state=not_answered": "/api/conversations?state=not_answered",
         "GET /api/conversations?q=<phone>": "/api/conversations?q=%2B1555{:07d}",
         "GET /api/stats?since=24h": "/api/stats?since=24h",
         "GET /api/stats?since=7d": "/api/stats?since=7d",
         "GET /api/conversations/<CH>/timeline": "/api/conversations/CH{:032d}/timeline",
         "GET /metrics": "/metrics"}


def fill(url: str, rows: int) -> float:
    """Bulk-insert `rows` processed events over 30 days (messages with their author,
    channel and text: 20,000 customers, one in ten on WhatsApp), rows/5 replies (some
    failed or undelivered), one receipt each and two receipt-history rows each; then
    ANALYZE."""
    started = time.monotonic()
    Database(url).upgrade()
    engine = create_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    step = 30 * 86400 / rows

    def series(n):
        if sqlite:
            return f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) "
        return f"WITH n(i) AS (SELECT generate_series(1, {n})) "

    def ago(seconds):
        if sqlite:
            return f"datetime('now', printf('-%d seconds', CAST({seconds} AS INTEGER)))"
        return f"(now() at time zone 'utc') - ({seconds}) * interval '1 second'"

    def later(t, seconds):
        return (f"datetime({t}, '+{seconds} seconds')" if sqlite
                else f"{t} + interval '{seconds} seconds'")

    sid = "printf('%032d', i)" if sqlite else "lpad(i::text, 32, '0')"
    chat = "printf('%032d', i % 20000)" if sqlite else "lpad((i % 20000)::text, 32, '0')"
    phone = "printf('%07d', i % 20000)" if sqlite else "lpad((i % 20000)::text, 7, '0')"
    replies = rows // 5
    with engine.begin() as conn:
        conn.execute(text(series(rows) + f"""
            INSERT INTO processed_events (key, event_type, conversation_sid, message_sid,
                outcome, outcome_kind, reason, rule, received_at, author, channel, body)
            SELECT 'k' || {sid},
                CASE WHEN i % 5 < 2 THEN 'onMessageAdded' ELSE 'onDeliveryUpdated' END,
                'CH' || {chat}, 'IM' || {sid},
                CASE WHEN i % 5 < 2 THEN 'reply queued: rule fallback' ELSE 'receipt delivered' END,
                CASE WHEN i % 5 < 2 THEN 'REPLY_QUEUED' ELSE 'RECEIPT' END,
                CASE WHEN i % 5 >= 2 THEN NULL WHEN i % 10 < 7 THEN 'REPLY'
                     WHEN i % 10 = 7 THEN 'COOLDOWN' ELSE 'AGENT_ACTIVE' END,
                CASE WHEN i % 5 < 2 THEN 'fallback' END,
                {ago(f"i * {step}")},
                CASE WHEN i % 5 < 2 THEN
                    CASE WHEN (i % 20000) % 10 = 5 THEN 'whatsapp:' ELSE '' END
                    || '+1555' || {phone} END,
                CASE WHEN i % 5 < 2 THEN
                    CASE WHEN (i % 20000) % 10 = 5 THEN 'WHATSAPP' ELSE 'SMS' END END,
                CASE WHEN i % 5 < 2 THEN 'Where is my order? It was due on Monday.' END
            FROM n"""))
        status = "CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'sent' END"
        delivery = ("CASE WHEN i % 50 = 0 THEN NULL WHEN i % 20 = 1 THEN 'undelivered' "
                    "WHEN i % 7 = 0 THEN 'read' ELSE 'delivered' END")
        conn.execute(text(series(replies) + f"""
            INSERT INTO replies (in_reply_to, conversation_sid, author, body, status,
                attempts, retry_from, next_attempt_at, twilio_message_sid, error_code,
                error_message, delivery_status, delivery_error_code, created_at, sent_at)
            SELECT 'IM' || {sid}, 'CH' || {chat}, 'support-bot', 'Thanks!', {status}, 1, 0,
                {ago(f"i * {step * 5}")},
                CASE WHEN i % 50 = 0 THEN NULL ELSE 'IMr' || {sid} END,
                CASE WHEN i % 50 = 0 THEN 30007 END,
                CASE WHEN i % 50 = 0 THEN 'filtered' END, {delivery},
                CASE WHEN i % 20 = 1 AND i % 50 <> 0 THEN 30003 END,
                {ago(f"i * {step * 5}")},
                CASE WHEN i % 50 = 0 THEN NULL ELSE {later(ago(f"i * {step * 5}"), 1)} END
            FROM n"""))
        conn.execute(text("""
            INSERT INTO delivery_receipts (receipt_sid, message_sid, conversation_sid,
                participant_sid, status, status_rank, error_code, error_status, updated_at)
            SELECT 'DY' || twilio_message_sid, twilio_message_sid, conversation_sid, 'MB1',
                delivery_status, CASE delivery_status WHEN 'read' THEN 4
                WHEN 'delivered' THEN 2 ELSE 3 END, delivery_error_code,
                CASE WHEN delivery_status = 'undelivered' THEN 'undelivered' END, sent_at
            FROM replies WHERE twilio_message_sid IS NOT NULL"""))
        for first in ("sent", None):
            conn.execute(text(f"""
                INSERT INTO receipt_events (receipt_sid, message_sid, conversation_sid,
                    participant_sid, status, error_code, source, received_at)
                SELECT receipt_sid, message_sid, conversation_sid, participant_sid,
                    {f"'{first}'" if first else "status"}, error_code, 'webhook', updated_at
                FROM delivery_receipts"""))
        if sqlite:
            conn.execute(text("ANALYZE"))
    if not sqlite:  # what autovacuum does soon after a bulk load (index-only scans need it)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return time.monotonic() - started


def timed_get(session: requests.Session, url: str, **kwargs) -> float:
    started = time.perf_counter()
    response = session.get(url, timeout=30, **kwargs)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: HTTP {response.status_code}")
    return elapsed


def dashboard_session(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(base + "/admin/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    session.post(base + "/admin/login", data={"token": ADMIN, "csrf": csrf})
    return session


def read_all(base: str, session: requests.Session, have_metrics: bool) -> dict[str, float]:
    times = {}
    for name, path in READS.items():
        if name == "GET /metrics" and not have_metrics:
            continue
        path = path.format(5 if "{:032d}" in path and "IM" not in path else 1005)
        api = not path.startswith("/admin")
        times[name] = timed_get(session, base + path, headers=BEARER if api else {})
    return times


def webhooks(base: str, rate: int, seconds: float) -> list[float]:
    """Post signed onMessageAdded webhooks at `rate` per second; return ack latencies."""
    validator = RequestValidator(TOKEN)
    bodies = []
    for _ in range(int(rate * seconds)):
        params = sample_events.build("onMessageAdded", account_sid=SID, body="Where is my order?")
        bodies.append((urlencode(params), validator.compute_signature(PUBLIC + PATH, params)))
    latencies, threads = [], 4
    start = time.monotonic() + 0.1

    def run(k):
        session = requests.Session()
        for j in range(k, len(bodies), threads):
            pause = start + j / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            body, signature = bodies[j]
            t = time.perf_counter()
            r = session.post(base + PATH, data=body, timeout=10, headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded"})
            latencies.append(time.perf_counter() - t)
            assert r.status_code == 200, r.status_code

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return latencies


def pct(values: list[float], p: int) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, len(values) * p // 100)] * 1000


def measure(name: str, url: str, args, fake, tmp: Path) -> list[str]:
    fill_s = fill(url, args.rows)
    print(f"{name}: filled in {fill_s:.0f} s", flush=True)
    env = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
           "TWILIO_API_BASE_URL": fake.url, "PUBLIC_BASE_URL": PUBLIC,
           "DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://"),
           "ADMIN_TOKEN": ADMIN, "INSTANCE_DIR": tmp / "instance", "LOG_LEVEL": "WARNING"}
    lines = []
    with gunicorn(env, tmp / f"{name}.log", workers=2) as server:
        base = server.url
        session = dashboard_session(base)
        have_metrics = requests.get(base + "/metrics", headers=BEARER).status_code == 200
        alone = [read_all(base, session, have_metrics) for _ in range(args.reads)]
        quiet = webhooks(base, args.rate, args.seconds)
        stop, during = threading.Event(), []

        def reader():
            own = dashboard_session(base)
            while not stop.is_set():
                during.append(read_all(base, own, have_metrics))
                stop.wait(args.read_pause)

        readers = [threading.Thread(target=reader) for _ in range(2)]
        for r in readers:
            r.start()
        busy = webhooks(base, args.rate, args.seconds)
        stop.set()
        for r in readers:
            r.join()
    for read in alone[0]:
        runs = [a[read] * 1000 for a in alone]
        under = [d[read] * 1000 for d in during if read in d]
        lines.append(f"| {name} | {read} | {statistics.median(runs):.0f} | {max(runs):.0f} | "
                     f"{statistics.median(under):.0f} |" if under else "")
    loops = len(during)
    lines.append(f"| {name} | webhook ack, no reads | p50 {pct(quiet, 50):.1f} | "
                 f"p99 {pct(quiet, 99):.1f} | ({len(quiet)} at {args.rate}/s) |")
    lines.append(f"| {name} | webhook ack, reads running | p50 {pct(busy, 50):.1f} | "
                 f"p99 {pct(busy, 99):.1f} | ({len(busy)} at {args.rate}/s, {loops} read "
                 f"rounds) |")
    return lines


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=5, help="rounds of reads, alone")
    parser.add_argument("--rate", type=int, default=50, help="webhooks per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--read-pause", type=float, default=1.0,
                        help="seconds each of the two reading threads waits between rounds "
                        "(0: back to back)")
    parser.add_argument("--write", action="store_true", help="append to bench/RESULTS.md")
    return parser


def run(args: argparse.Namespace) -> str:
    """Measure every backend; return the results as a RESULTS.md section (bench/run.py
    may call this with `parser().parse_args([...])`)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-obs-"))
    fake = FakeConversationsAPI(SID, TOKEN, check_auth=False, any_conversation=True).start()
    rows = ["| database | read | alone, median ms | alone, max ms | during webhooks, "
            "median ms |", "|---|---|---|---|---|"]
    try:
        for name, url in backends(tmp):
            rows += [line for line in measure(name.removeprefix("C "),
                                              reset(url, tmp, name), args, fake, tmp) if line]
    finally:
        fake.stop()
    return (f"\n## Read path at {args.rows:,} events (bench/observability.py)\n\n"
            f"Commit {commit()}; {machine()}. `python -m bench.observability`: gunicorn "
            f"(2 workers), {args.rows:,} processed events over 30 days, {args.rows // 5:,} "
            f"replies, their receipts and receipt history. Webhooks at {args.rate}/s for "
            f"{args.seconds:g} s, alone and while two threads each load every page and API "
            f"read below, then pause {args.read_pause:g} s (ack latency in ms).\n\n"
            + "\n".join(rows) + "\n")


def main() -> None:
    args = parser().parse_args()
    section = run(args)
    print(section)
    if args.write:
        with open(ROOT / "bench" / "RESULTS.md", "a") as out:
            out.write(section)


if __name__ == "__main__":
    main()
