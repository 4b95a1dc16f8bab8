"""Benchmark: the floor (A), the naive design (B) and this server (C), side by side.

    make bench                       # or: .venv/bin/python -m bench.run --help

Everything runs on 127.0.0.1 and stops by itself. Each server runs under the same
gunicorn settings (gunicorn.conf.py: 2 workers x 4 threads; A and B through
bench/gunicorn.conf.py, the same without this app's hooks). A local fake Conversations
API answers after --latency seconds (default 0.3). Load: wrk with a Lua script over
pre-signed onMessageAdded webhooks, each with its own MessageSid (a Python load
generator when wrk is not installed). Prints a table and writes bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

from app.cli import sample_events
from app.store.database import Database
from tests.support.fake_conversations import FakeConversationsAPI
from tests.support.servers import BIN, ROOT, clean_env, free_port, gunicorn

SID = "AC" + "b2" * 16
TOKEN = "fedcba9876543210fedcba9876543210"
PUBLIC = "http://bench.local"
PATH = "/webhooks/conversations"
ALL_SERVERS = "A,B,sqlite,postgresql"
RULES_EXAMPLE = "rules.example.toml"
OUT = ROOT / "bench" / "out"
# A and B: the production settings and worker without this app's hooks.
OTHER_APPS = ("-c", "bench/gunicorn.conf.py")


# -- signed requests and load ----------------------------------------------------------

def signed_requests(n: int) -> list[tuple[str, str]]:
    """n onMessageAdded webhooks (form body, signature), each with a new MessageSid."""
    from urllib.parse import urlencode

    validator = RequestValidator(TOKEN)
    out = []
    for _ in range(n):
        params = sample_events.build("onMessageAdded", account_sid=SID, body="Where is my order?")
        out.append((urlencode(params), validator.compute_signature(PUBLIC + PATH, params)))
    return out


def lua_script(reqs: list[tuple[str, str]], path: Path, threads: int) -> Path:
    """A wrk script: each thread walks its own share of the pre-signed requests."""
    data = path.with_suffix(".txt")
    data.write_text("".join(f"{body}\t{sig}\n" for body, sig in reqs))
    path.write_text(f"""
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  reqs = {{}}
  for line in io.lines("{data}") do
    local tab = line:find("\t", 1, true)
    reqs[#reqs + 1] = {{line:sub(1, tab - 1), line:sub(tab + 1)}}
  end
  n = id
end
function request()
  local r = reqs[(n % #reqs) + 1]
  n = n + {threads}
  return wrk.format("POST", "{PATH}", {{["Content-Type"]="application/x-www-form-urlencoded",
    ["X-Twilio-Signature"]=r[2]}}, r[1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {{"requests": %d, "duration_us": %d, "p50": %d, "p99": %d, "max": %d, '
    .. '"errors": %d}}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status + e.connect + e.read + e.write + e.timeout))
end
""")
    return path


def load_wrk(url: str, duration: int, connections: int, reqs, script: Path) -> dict:
    lua_script(reqs, script, threads=2)
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s",
         str(script), url], capture_output=True, text=True, timeout=duration + 60)
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("RESULT "))
    data = json.loads(line[len("RESULT "):])
    seconds = data["duration_us"] / 1e6
    return {"rps": data["requests"] / seconds, "p50": data["p50"] / 1000,
            "p99": data["p99"] / 1000, "max": data["max"] / 1000,
            "errors": data["errors"], "requests": data["requests"]}


def load_python(url: str, duration: int, connections: int, reqs, _script) -> dict:
    """Closed-loop load from threads with keep-alive connections (when wrk is missing)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    latencies, errors, index = [], [0], itertools.count()  # wraps, as the wrk script does
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    def worker():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        while time.monotonic() < deadline:
            with lock:
                body, sig = reqs[next(index) % len(reqs)]
            start = time.perf_counter()
            try:
                conn.request("POST", PATH, body, {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": sig})
                response = conn.getresponse()
                response.read()
                ok = response.status < 300
            except OSError:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                ok = False
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed)
                errors[0] += not ok

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {"rps": len(latencies) / seconds, "p50": pick(0.5), "p99": pick(0.99),
            "max": latencies[-1], "errors": errors[0], "requests": len(latencies)}


def wait_for_shares(server, workers: int, limit: int = 50, timeout: float = 20.0) -> None:
    """Wait until each worker's sender holds its share of TWILIO_CONCURRENCY_LIMIT. Just
    after a start, a sender that finds another holding the whole limit gets its share
    only once the other has given it up, a heartbeat or two later (~2 s): replies queued
    meanwhile in that worker wait for it. The end-to-end figure is the steady state's."""
    share = f"share={limit // workers} "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = {line.split("[", 1)[1].split("]", 1)[0] for line in server.log.splitlines()
                if "sending concurrency" in line and share in line}
        if len(pids) >= workers:
            return
        time.sleep(0.05)
    raise AssertionError(f"the senders did not settle their shares within {timeout}s")


def worker_pids(master_pid: int) -> list[str]:
    """The gunicorn workers of `master_pid`."""
    return subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True,
                          text=True).stdout.split()


def worker_cpu_seconds(master_pid: int) -> float:
    """CPU time (user + system) used so far by the gunicorn workers of `master_pid`."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in worker_pids(master_pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def worker_memory_mb(master_pid: int) -> float:
    """Peak resident memory (VmHWM) of the largest gunicorn worker, in MB."""
    peaks = []
    for pid in worker_pids(master_pid):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=0.0)


def worker_private_mb(master_pid: int) -> tuple[float, float]:
    """(PSS, private dirty) of the largest gunicorn worker now, in MB: what a worker costs
    the machine, pages shared with the master and the other workers counted once."""
    found = []
    for pid in worker_pids(master_pid):
        fields = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, value, *_ = line.split()
            fields[name.rstrip(":")] = int(value) / 1024
        found.append((fields["Pss"], fields["Private_Dirty"]))
    return max(found, default=(0.0, 0.0))


# -- phases --------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake API's access log
        self.load = load_wrk if shutil.which("wrk") and not args.python_load else load_python
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-"))
        self.fake = FakeConversationsAPI(SID, TOKEN, latency=args.latency,
                                         check_auth=False, any_conversation=True).start()
        self.arrivals: dict[str, float] = {}
        self.fake.on_create = self._arrived
        self.env = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
                    "TWILIO_API_BASE_URL": self.fake.url, "PUBLIC_BASE_URL": PUBLIC}

    def _arrived(self, record) -> None:
        self.arrivals[json.loads(record.form.get("Attributes", "{}")).get("inReplyTo")] = \
            time.monotonic()

    def throughput(self, name: str, env: dict, app: str = "wsgi:app") -> dict:
        """Median of --repeat load runs (by webhooks/s), each on a fresh server process."""
        runs = []
        for i in range(self.args.repeat):
            reqs = signed_requests(self.args.max_requests)
            warm = signed_requests(3000)
            with gunicorn({**self.env, **env}, self.tmp / f"{name}-{i}.log", app=app,
                          args=() if app == "wsgi:app" else OTHER_APPS) as server:
                # Every worker up and warm, or wrk's connections all land on the first one.
                server.wait_booted(2)
                self.load(server.url + PATH, 2, self.args.connections, warm,
                          self.tmp / "warm.lua")
                cpu = worker_cpu_seconds(server.process.pid)
                result = self.load(server.url + PATH, self.args.duration,
                                   self.args.connections, reqs, self.tmp / f"{name}.lua")
                cpu = worker_cpu_seconds(server.process.pid) - cpu
                result["cpu_ms"] = cpu * 1000 / max(result["requests"], 1)
                result["memory_mb"] = worker_memory_mb(server.process.pid)
                result["pss_mb"], result["dirty_mb"] = worker_private_mb(server.process.pid)
            runs.append(result)
        runs.sort(key=lambda r: r["rps"])
        result = dict(runs[len(runs) // 2])
        result["all_rps"] = [round(r["rps"]) for r in runs]
        result["memory_mb"] = max(r["memory_mb"] for r in runs)
        result["pss_mb"] = max(r["pss_mb"] for r in runs)
        result["dirty_mb"] = max(r["dirty_mb"] for r in runs)
        print(f"  {name}: {result['rps']:.0f} req/s (runs {result['all_rps']}), "
              f"p99 {result['p99']:.1f} ms, {result['cpu_ms']:.2f} ms CPU/webhook, "
              f"errors {result['errors']}, worker RSS peak {result['memory_mb']:.0f} MB, "
              f"PSS {result['pss_mb']:.0f} MB, private dirty {result['dirty_mb']:.0f} MB",
              flush=True)
        return result

    def end_to_end(self, name: str, env: dict) -> dict:
        """Webhook sent -> reply created at the fake API, at a moderate open-loop rate."""
        reqs = signed_requests(int(self.args.e2e_rate * self.args.e2e_seconds))
        sent: dict[str, float] = {}
        self.arrivals.clear()
        with gunicorn({**self.env, **env}, self.tmp / f"{name}-e2e.log") as server:
            wait_for_shares(server, workers=2)
            session = requests.Session()
            start = time.monotonic()
            for i, (body, sig) in enumerate(reqs):
                time.sleep(max(0.0, start + i / self.args.e2e_rate - time.monotonic()))
                sid = dict(p.split("=", 1) for p in body.split("&"))["MessageSid"]
                sent[sid] = time.monotonic()
                session.post(server.url + PATH, data=body, headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": sig}, timeout=10)
            deadline = time.monotonic() + 30
            while len(self.arrivals) < len(sent) and time.monotonic() < deadline:
                time.sleep(0.05)
        latencies = sorted((self.arrivals[s] - t) * 1000 for s, t in sent.items()
                           if s in self.arrivals)
        result = {"e2e_p50": statistics.median(latencies),
                  "e2e_p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
                  "e2e_missing": len(sent) - len(latencies)}
        print(f"  {name} end-to-end: p50 {result['e2e_p50']:.0f} ms, "
              f"p99 {result['e2e_p99']:.0f} ms", flush=True)
        return result

    def sender_rate(self, name: str, env: dict) -> float:
        """Replies per second one sender process sustains against an instant fake API."""
        n = self.args.sender_replies
        db = Database(env["DATABASE_URL"])
        db.upgrade()
        from app.delivery import outbox

        with db.transaction() as session:
            for i in range(n):
                outbox.queue_reply(session, outbox.NewReply(
                    conversation_sid=f"CH{i:032x}", in_reply_to=f"IMsender{name}{i:024x}",
                    author="support-bot", body="Thanks!"))
        port = free_port()
        with ExitStack() as stack:
            fake = subprocess.Popen([sys.executable, "-m", "tests.support.fake_conversations",
                                     "--port", str(port), "--no-auth", "--any-conversation"], cwd=ROOT,
                                    stdout=subprocess.DEVNULL)
            stack.callback(lambda: (fake.terminate(), fake.wait()))
            time.sleep(0.5)
            sender_env = {**self.env, **env, "TWILIO_API_BASE_URL": f"http://127.0.0.1:{port}",
                          "LOG_LEVEL": "WARNING"}
            sender = subprocess.Popen([str(BIN / "flask"), "--app", "wsgi", "sender"],
                                      cwd=ROOT, env=clean_env(sender_env),
                                      stderr=subprocess.DEVNULL)
            stack.callback(lambda: (sender.terminate(), sender.wait()))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with db.engine.connect() as conn:
                    done = conn.execute(text(
                        "SELECT count(*) FROM replies WHERE status = 'sent' "
                        "AND in_reply_to LIKE :p"), {"p": f"IMsender{name}%"}).scalar()
                if done >= n:
                    break
                time.sleep(0.2)
            with db.engine.connect() as conn:
                first, last = conn.execute(text(
                    "SELECT min(sent_at), max(sent_at) FROM replies WHERE status = 'sent' "
                    "AND in_reply_to LIKE :p"), {"p": f"IMsender{name}%"}).one()
        db.engine.dispose()
        if isinstance(first, str):  # SQLite returns text for raw SQL
            from datetime import datetime
            first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
        rate = (done - 1) / max((last - first).total_seconds(), 1e-6)
        print(f"  {name} sender: {rate:.0f} replies/s ({done} sent)", flush=True)
        return rate

    def grow(self, database_url: str, rows: int) -> float:
        """Fill the database with `rows` processed events and as many receipts."""
        started = time.monotonic()
        engine = create_engine(database_url)
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                series = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                          f"WHERE i < {rows}) ")
                now = "datetime('now')"
                sid = "printf('%032d', i)"
            else:
                series = f"WITH n(i) AS (SELECT generate_series(1, {rows})) "
                now = "now() at time zone 'utc'"
                sid = "lpad(i::text, 32, '0')"
            conn.execute(text(
                series + "INSERT INTO processed_events (key, event_type, conversation_sid, "
                "message_sid, outcome, received_at) SELECT 'message:IMfill' || " + sid +
                ", 'onMessageAdded', 'CHfill', 'IMfill' || " + sid + ", 'reply queued', "
                + now + " FROM n"))
            conn.execute(text(
                series + "INSERT INTO delivery_receipts (receipt_sid, message_sid, "
                "conversation_sid, status, status_rank, error_code, updated_at) "
                "SELECT 'DYfill' || " + sid + ", 'IMfill' || " + sid + ", 'CHfill', "
                "'delivered', 2, 0, " + now + " FROM n"))
        engine.dispose()
        return time.monotonic() - started


def backends(tmp: Path) -> list[tuple[str, str]]:
    out = [("C sqlite", f"sqlite:///{tmp / 'c.sqlite3'}")]
    pg = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if pg:
        out.append(("C postgresql", pg.replace("postgresql://", "postgresql+psycopg://", 1)))
    return out


def reset(database_url: str, tmp: Path, name: str) -> str:
    """A new, empty database with the current schema, migrated before the server starts
    as the documented deployments do (Heroku's release phase, systemd's ExecStartPre):
    the workers find the schema current and never load Alembic."""
    if database_url.startswith("sqlite"):
        path = tmp / f"{name.replace(' ', '-')}.sqlite3"
        database_url = f"sqlite:///{path}"
    else:
        engine = create_engine(database_url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    db = Database(database_url)
    try:
        db.upgrade()
    finally:
        db.dispose()
    return database_url


def commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor())
    mem = next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
               if ln.startswith("MemTotal"))
    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({model}), "
            f"{int(mem) / 1024 / 1024:.1f} GiB RAM, Python {platform.python_version()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per load run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per server (median)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.3, help="fake API latency, s")
    parser.add_argument("--max-requests", type=int, default=40000,
                        help="pre-signed requests per run (each a new MessageSid)")
    parser.add_argument("--e2e-rate", type=float, default=20.0, help="webhooks/s")
    parser.add_argument("--e2e-seconds", type=float, default=8.0)
    parser.add_argument("--sender-replies", type=int, default=3000)
    parser.add_argument("--growth-rows", type=int, default=1_000_000)
    parser.add_argument("--python-load", action="store_true", help="do not use wrk")
    parser.add_argument("--servers", default=ALL_SERVERS,
                        help="which to run, comma-separated (a partial run writes nothing)")
    parser.add_argument("--skip", default="", help="phases to skip: e2e,growth,sender,rules")
    parser.add_argument("--rules", type=Path, default=ROOT / RULES_EXAMPLE,
                        help="the rules file of the rules phase (a partial run with another)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()

    servers = set(args.servers.split(","))
    skip = set(filter(None, args.skip.split(",")))
    bench = Bench(args)
    print(f"machine: {machine()}\nload: {bench.load.__name__}, {args.connections} "
          f"connections, {args.duration}s per run; fake API latency {args.latency}s", flush=True)
    results: dict[str, dict] = {}
    if "A" in servers:
        results["A floor"] = bench.throughput("A floor", {}, app="bench.floor_app:app")
    if "B" in servers:
        results["B naive"] = bench.throughput("B naive", {}, app="bench.naive_app:app")
    for name, url in backends(bench.tmp):
        if name.split()[-1] not in servers:
            continue
        env = {"INSTANCE_DIR": bench.tmp / name.replace(" ", "-"),
               "DATABASE_AUTO_UPGRADE": "true"}
        result = {}
        if "e2e" not in skip:
            env["DATABASE_URL"] = reset(url, bench.tmp, name + "-e2e")
            result.update(bench.end_to_end(name, env))
        env["DATABASE_URL"] = url = reset(url, bench.tmp, name)
        result.update(bench.throughput(name, env))
        if args.growth_rows and "growth" not in skip:
            grow_seconds = bench.grow(url, args.growth_rows)
            grown = bench.throughput(f"{name} +{args.growth_rows:,} rows", env)
            result["grown_rps"] = grown["rps"]
            result["grown_p99"] = grown["p99"]
            result["grow_seconds"] = grow_seconds
        if "sender" not in skip:
            env["DATABASE_URL"] = reset(url, bench.tmp, name + "-sender")
            result["sender_rps"] = bench.sender_rate(name.replace(" ", "-"), env)
        results[name] = result
        if "rules" not in skip:  # the example rules file: rules, hours, templates, an FAQ
            ruled = f"{name} + {args.rules.name}"
            results[ruled] = bench.throughput(ruled, {
                **env, "RESPONDER_RULES": args.rules.resolve(),
                "DATABASE_URL": reset(url, bench.tmp, name + "-rules")})
    bench.fake.stop()
    if servers != set(ALL_SERVERS.split(",")) or skip or args.rules != ROOT / RULES_EXAMPLE:
        print("\n(partial run: bench/RESULTS.md left as it was)")
        return
    report = render(results, args, bench)
    print("\n" + report)
    # The table is replaced; the sections below it (before/after pairs, other
    # benchmarks' results) stay.
    earlier = args.out.read_text() if args.out.exists() else ""
    kept = earlier[earlier.index("\n## "):] if "\n## " in earlier else ""
    args.out.write_text(report + kept)
    print(f"written to {args.out}")


def render(results: dict, args, bench) -> str:
    a, b = results["A floor"], results["B naive"]
    lines = [
        "# Benchmark results", "",
        f"Machine: {machine()}.  ",
        f"Load: {'wrk (Lua, pre-signed requests)' if bench.load is load_wrk else 'Python threads'}"
        f", {args.connections} connections, median of {args.repeat} runs of {args.duration} s "
        f"(2 s warm-up each), each webhook a new MessageSid.  ",
        "Servers: gunicorn.conf.py for all (2 workers x 4 threads, gthread); C as deployed "
        f"by default (sender threads in the web workers, the schema migrated before the "
        f"start as in the release phase), code at {commit()}.  ",
        f"Fake Conversations API latency: {args.latency * 1000:.0f} ms; end-to-end at "
        f"{args.e2e_rate:.0f} webhooks/s; sender rate against an instant fake API.", "",
        "| server | webhooks/s (all runs) | ack p50 ms | ack p99 ms | ack max ms | errors | "
        "worker CPU ms/webhook | peak RSS/worker MB | PSS / private dirty per worker MB | "
        "C/A rps | C/B rps |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        ratios = ("", "")
        if name.startswith("C"):
            ratios = (f"{r['rps'] / a['rps']:.2f}", f"{r['rps'] / b['rps']:.1f}")
        lines.append(f"| {name} | {r['rps']:.0f} ({', '.join(map(str, r['all_rps']))}) | "
                     f"{r['p50']:.1f} | {r['p99']:.1f} | "
                     f"{r['max']:.1f} | {r['errors']} | {r['cpu_ms']:.2f} | {r['memory_mb']:.0f} | "
                     f"{r['pss_mb']:.0f} / {r['dirty_mb']:.0f} | {ratios[0]} | {ratios[1]} |")
    lines += ["", "| server | e2e reply p50 ms | e2e reply p99 ms | sender replies/s | "
              "webhooks/s with 1M+1M rows | change |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        if not name.startswith("C") or " + " in name:
            continue
        grown = (f"{r['grown_rps']:.0f} | {(r['grown_rps'] / r['rps'] - 1) * 100:+.0f}%"
                 if "grown_rps" in r else "- | -")
        lines.append(f"| {name} | {r['e2e_p50']:.0f} | {r['e2e_p99']:.0f} | "
                     f"{r['sender_rps']:.0f} | {grown} |")
    lines += ["", "Targets (2 cores, fake API at 300 ms): C ack p99 <= 50 ms; C >= 50% of A's "
              "webhooks/s; e2e p50 <= latency + 100 ms; sender >= 200 replies/s; <= 120 MB "
              "per worker; with 1M rows within 20% of empty; with rules.example.toml at most 0.1 ms "
              "more worker CPU per webhook than without (issue 21).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
