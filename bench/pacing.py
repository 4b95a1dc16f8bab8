"""Benchmark: replies at Twilio's pace (burst drain, steady load, a throttling API).

    .venv/bin/python -m bench.pacing [--burst 10000] [--steady-rate 200] ...

Runs this server (2 gunicorn workers, in-process senders, TWILIO_CONCURRENCY_LIMIT=50)
on SQLite and, with BENCH_DATABASE_URL, PostgreSQL, against the local fake API at
--latency seconds (default 0.3), all on 127.0.0.1, bounded in time:

- burst drain: --burst webhooks sent as fast as wrk can (16 connections); ack p50/p99,
  and the time until the last reply arrived next to its physical limit
  (burst x latency / limit);
- steady load: --steady-rate webhooks/s for --steady-seconds (open loop); reply latency
  (webhook sent -> reply created at the fake) p50/p99, and the backlog every 10 s. The
  limit for this phase is --steady-limit (default 80): 200 replies/s at 300 ms need 60
  calls in flight, more than the default 50 carry (50 / 0.3 s = 166/s);
- throttled: the fake answers 429 above --throttle-above calls in flight; a burst of
  --throttled-burst: 429s per reply, drain time next to burst x latency / throttle;
- the most calls the fake saw in flight at once, next to the limit.
Prints a table (markdown), also written to bench/out/pacing.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import threading
import time
from pathlib import Path

import requests

from bench.run import (
    OUT,
    PATH,
    Bench,
    backends,
    commit,
    lua_script,
    machine,
    reset,
    signed_requests,
    worker_memory_mb,
)
from tests.support.servers import gunicorn, reply_counts

LIMIT = 50


def wrk_burst(url: str, reqs, script: Path, connections: int = 16) -> dict:
    """Send each pre-signed request once (two wrk threads, each its half), then stop."""
    lua_script(reqs, script, threads=2)
    share = len(reqs) // 2
    script.write_text(script.read_text() + f"""
local answered = 0
function response(status, headers, body)
  answered = answered + 1
  if answered >= {share} then wrk.thread:stop() end
end
""")
    started = time.monotonic()
    result = subprocess.run(["wrk", "-t2", f"-c{connections}", "-d120s", "--timeout", "10s",
                             "-s", str(script), url], capture_output=True, text=True,
                            timeout=200)
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("RESULT "))
    data = json.loads(line[len("RESULT "):])
    return {"sent_at": started, "requests": data["requests"], "p50": data["p50"] / 1000,
            "p99": data["p99"] / 1000, "errors": data["errors"],
            "send_seconds": data["duration_us"] / 1e6}


def wait_drained(database_url: str, timeout: float) -> int:
    """Wait until no reply is queued or sending; return how many were sent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = reply_counts(database_url)
        if counts and set(counts) <= {"sent", "failed"}:
            return counts.get("sent", 0)
        time.sleep(0.2)
    raise AssertionError(f"not drained within {timeout}s: {reply_counts(database_url)}")


class Pacing:
    def __init__(self, bench: Bench, args):
        self.bench = bench
        self.args = args
        self.fake = bench.fake

    def _reset_fake(self, throttle_above: int | None = None) -> None:
        fake = self.fake
        with fake._lock:
            fake.created.clear()
            fake.requests.clear()
            fake.messages.clear()
            fake.max_in_flight = fake.throttled = 0
            fake.throttle_above = throttle_above
        self.bench.arrivals.clear()

    def burst(self, name: str, env: dict, count: int, throttle_above: int | None = None) -> dict:
        self._reset_fake(throttle_above)
        reqs = signed_requests(count)
        bench = self.bench
        tag = "throttled" if throttle_above else "burst"
        with gunicorn({**bench.env, **env}, bench.tmp / f"{name}-{tag}.log") as server:
            server.wait_workers(2)
            load = wrk_burst(server.url + PATH, reqs, bench.tmp / f"{name}-{tag}.lua")
            sent = wait_drained(env["DATABASE_URL"], timeout=600)
            last = max(bench.arrivals.values(), default=load["sent_at"])
            memory = worker_memory_mb(server.process.pid)
        drain = last - load["sent_at"]
        bound = throttle_above or LIMIT
        limit_seconds = sent * self.args.latency / bound
        result = {"acked": load["requests"], "sent": sent, "ack_p50": load["p50"],
                  "ack_p99": load["p99"], "errors": load["errors"],
                  "send_seconds": load["send_seconds"], "drain": drain,
                  "limit_seconds": limit_seconds, "ratio": drain / limit_seconds,
                  "max_in_flight": self.fake.max_in_flight, "throttled": self.fake.throttled,
                  "memory_mb": memory}
        print(f"  {name} {tag}: {sent} replies in {drain:.1f}s (limit {limit_seconds:.1f}s, "
              f"x{result['ratio']:.2f}), ack p99 {load['p99']:.1f} ms, max in flight "
              f"{result['max_in_flight']}, 429s {result['throttled']}, {memory:.0f} MB",
              flush=True)
        return result

    def steady(self, name: str, env: dict) -> dict:
        self._reset_fake()
        rate, seconds = self.args.steady_rate, self.args.steady_seconds
        reqs = signed_requests(int(rate * seconds))
        bench = self.bench
        sent: dict[str, float] = {}
        backlog: list[int] = []
        env = {**env, "TWILIO_CONCURRENCY_LIMIT": str(self.args.steady_limit)}
        with gunicorn({**bench.env, **env}, bench.tmp / f"{name}-steady.log") as server:
            server.wait_workers(2)
            start = time.monotonic()
            senders = 4
            def post(offset: int) -> None:
                session = requests.Session()
                for i in range(offset, len(reqs), senders):
                    time.sleep(max(0.0, start + i / rate - time.monotonic()))
                    body, sig = reqs[i]
                    sid = body.split("MessageSid=", 1)[1].split("&", 1)[0]
                    sent[sid] = time.monotonic()
                    session.post(server.url + PATH, data=body, timeout=10, headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "X-Twilio-Signature": sig})
            threads = [threading.Thread(target=post, args=(k,)) for k in range(senders)]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                time.sleep(10 - (time.monotonic() - start) % 10)
                counts = reply_counts(env["DATABASE_URL"])
                backlog.append(counts.get("queued", 0) + counts.get("sending", 0))
            for t in threads:
                t.join()
            wait_drained(env["DATABASE_URL"], timeout=120)
        latencies = sorted((bench.arrivals[s] - t) * 1000 for s, t in sent.items()
                           if s in bench.arrivals)
        result = {"reply_p50": statistics.median(latencies),
                  "reply_p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
                  "missing": len(sent) - len(latencies), "backlog": backlog,
                  "achieved_rate": len(sent) / (max(sent.values()) - min(sent.values()))}
        print(f"  {name} steady {rate:.0f}/s: reply p50 {result['reply_p50']:.0f} ms, "
              f"p99 {result['reply_p99']:.0f} ms, backlog {backlog}", flush=True)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--steady-rate", type=float, default=200.0)
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument("--steady-limit", type=int, default=80)
    parser.add_argument("--throttle-above", type=int, default=20)
    parser.add_argument("--throttled-burst", type=int, default=3000)
    parser.add_argument("--servers", default="sqlite,postgresql")
    parser.add_argument("--skip", default="", help="phases to skip: burst,steady,throttled")
    args = parser.parse_args()
    bench_args = argparse.Namespace(latency=args.latency, python_load=False)
    bench = Bench(bench_args)
    skip = set(filter(None, args.skip.split(",")))
    pacing = Pacing(bench, args)
    print(f"machine: {machine()}\nfake API latency {args.latency}s, limit {LIMIT}", flush=True)
    rows = []
    for name, url in backends(bench.tmp):
        if name.split()[-1] not in args.servers.split(","):
            continue
        env = {"INSTANCE_DIR": bench.tmp / name.replace(" ", "-"),
               "DATABASE_AUTO_UPGRADE": "true", "TWILIO_CONCURRENCY_LIMIT": str(LIMIT)}
        row = {"name": name}
        if "burst" not in skip:
            env["DATABASE_URL"] = reset(url, bench.tmp, name + "-burst")
            row["burst"] = pacing.burst(name, env, args.burst)
        if "steady" not in skip:
            env["DATABASE_URL"] = reset(url, bench.tmp, name + "-steady")
            row["steady"] = pacing.steady(name, env)
        if "throttled" not in skip:
            env["DATABASE_URL"] = reset(url, bench.tmp, name + "-throttled")
            row["throttled"] = pacing.burst(name, env, args.throttled_burst,
                                            throttle_above=args.throttle_above)
        rows.append(row)
    bench.fake.stop()
    report = render(rows, args)
    print("\n" + report)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "pacing.md").write_text(report)


def render(rows: list[dict], args) -> str:
    lines = [f"Code at {commit()}; {machine()}; fake API latency {args.latency * 1000:.0f} "
             f"ms; TWILIO_CONCURRENCY_LIMIT={LIMIT}; 2 workers with in-process senders.", "",
             "| server | burst: replies | ack p50 / p99 ms | drain s | limit s | drain/limit | "
             "max in flight | RSS/worker MB |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if b := row.get("burst"):
            lines.append(f"| {row['name']} | {b['sent']} | {b['ack_p50']:.1f} / "
                         f"{b['ack_p99']:.1f} | {b['drain']:.1f} | {b['limit_seconds']:.1f} | "
                         f"{b['ratio']:.2f} | {b['max_in_flight']} | {b['memory_mb']:.0f} |")
    lines += ["", f"| server | steady {args.steady_rate:.0f}/s for {args.steady_seconds:.0f} s "
              f"(limit {args.steady_limit}): "
              "reply p50 ms | reply p99 ms | backlog every 10 s | missing |", "|---|---|---|---|---|"]
    for row in rows:
        if s := row.get("steady"):
            lines.append(f"| {row['name']} | {s['reply_p50']:.0f} | {s['reply_p99']:.0f} | "
                         f"{', '.join(map(str, s['backlog']))} | {s['missing']} |")
    lines += ["", f"| server | throttled above {args.throttle_above}: replies | 429s | "
              "429s per reply | drain s | limit s | drain/limit | max in flight |",
              "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if t := row.get("throttled"):
            lines.append(f"| {row['name']} | {t['sent']} | {t['throttled']} | "
                         f"{t['throttled'] / max(t['sent'], 1):.3f} | {t['drain']:.1f} | "
                         f"{t['limit_seconds']:.1f} | {t['ratio']:.2f} | {t['max_in_flight']} |")
    lines += ["", "Targets: burst drain <= 1.15 x limit with ack p99 <= 50 ms; steady reply "
              "p50 <= 400 ms, p99 <= 1 s, backlog flat; throttled 429s <= 10% of replies; "
              f"max in flight <= {LIMIT}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
