"""The FAQ's cost: decision latency with 200 and 5,000 entries, start-up, memory per worker.

    python -m bench.faq            # about a minute; prints a table, writes nothing

- Decision p50/p99: `decide()` (the webhook's decision, the FAQ step included) on the
  CLINC150-derived test questions, against knowledge bases of 200 and 5,000 entries of 3
  phrasings each (recombined from eval/clinc150's queries, for a realistic vocabulary).
- Start-up: a new Python process that imports the app and loads a rules file with 200
  entries (the model memory-mapped, every phrasing embedded and indexed), and the same
  without [[faq]]: the difference is what the knowledge base adds to a worker's boot.
- Memory: WORKERS processes like gunicorn's workers (each loads the rules file itself,
  no --preload) with and without the FAQ; private memory (Private_Clean + Private_Dirty,
  /proc/<pid>/smaps_rollup) per process: the difference is what each worker costs more.
  The model's 16 MB table is a read-only file mapping, shared by all of them.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "eval" / "clinc150" / "test.jsonl"
POOL = [ROOT / "eval" / "clinc150" / name for name in ("tune.jsonl", "test.jsonl")]
WORKERS = 3

WORKER = """
import sys, time
t = time.perf_counter()
import app.autoreply as autoreply
rules = autoreply.load_rules(sys.argv[1])
if rules.knowledge is not None:
    rules.knowledge.match("warm up: where is my card", "SMS")
print(f"{time.perf_counter() - t:.3f}", flush=True)
sys.stdin.read()  # stay alive until the parent measured us
"""


def rules_text(entries: int, seed: int = 5) -> str:
    pool = [json.loads(line)["text"] for path in POOL for line in path.read_text().splitlines()]
    rng = random.Random(seed)
    blocks = ['[fallback]\ntext = "We\'ll get back to you."\n']
    for number in range(entries):
        questions = [" ".join(rng.sample(t.split(), len(t.split()))) if rng.random() < 0.5
                     else t for t in rng.sample(pool, 3)]
        blocks.append(f'[[faq]]\nid = "entry-{number}"\nquestions = {json.dumps(questions)}\n'
                      f'answer = "Answer {number}."\n')
    return "\n".join(blocks)


def decision_latency(path: Path, texts: list[str]) -> tuple[float, float, float]:
    from app.autoreply import ConversationState, Inbound, Policy, decide, load_rules
    started = time.perf_counter()
    rules = load_rules(path)
    built = time.perf_counter() - started
    policy = Policy.build(bot_identity="bot", agent_identities=[], auto_reply_text="x",
                          cooldown=timedelta(0), budget=0, handoff_window=timedelta(0),
                          rules=rules)
    state = ConversationState(1, None, 0, None, False)
    now = datetime.now(UTC)
    timings = []
    for text in texts:
        message = Inbound(text, "+15558675310", "SMS", None, None, now)
        start = time.perf_counter()
        decide(message, state, policy, now)
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99) - 1], built


def start_workers(path: Path, count: int) -> tuple[list[float], list[int]]:
    """Start `count` processes loading `path`; their boot seconds and private KB."""
    processes = [subprocess.Popen([sys.executable, "-c", WORKER, str(path)], cwd=ROOT,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
                 for _ in range(count)]
    try:
        boots = [float(p.stdout.readline()) for p in processes]
        private = [_private_kb(p.pid) for p in processes]
    finally:
        for process in processes:
            process.stdin.close()
            process.wait(timeout=30)
    return boots, private


def _private_kb(pid: int) -> int:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value)
    return fields["Private_Clean"] + fields["Private_Dirty"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=1000)
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in CASES.read_text().splitlines()]
    texts = (texts * (args.decisions // len(texts) + 1))[:args.decisions]
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for entries in (0, 200, 5000):
            paths[entries] = Path(folder) / f"rules-{entries}.toml"
            paths[entries].write_text(rules_text(entries))
        print("| entries | decision p50 ms | decision p99 ms | index built in s |")
        print("|---|---|---|---|")
        for entries in (200, 5000):
            p50, p99, built = decision_latency(paths[entries], texts)
            print(f"| {entries:,} | {p50:.2f} | {p99:.2f} | {built:.2f} |")
        print()
        print(f"| rules file | worker boot s (median of {WORKERS}) | private MB per worker "
              "(median) |")
        print("|---|---|---|")
        results = {}
        for entries in (0, 200):
            boots, private = start_workers(paths[entries], WORKERS)
            results[entries] = (statistics.median(boots), statistics.median(private) / 1024)
            label = "no [[faq]]" if entries == 0 else f"{entries} entries"
            print(f"| {label} | {results[entries][0]:.2f} | {results[entries][1]:.1f} |")
        print()
        print(f"FAQ adds {results[200][0] - results[0][0]:.2f} s to a worker's boot and "
              f"{results[200][1] - results[0][1]:.1f} MB of private memory per worker.")


if __name__ == "__main__":
    main()
