"""The FAQ's cost: decision latency with 200 and 5,000 entries, start-up, memory per worker.

    python -m bench.faq            # about a minute; prints a table, writes nothing
    python -m bench.faq --sentence # the sentence model with 1 and 4 threads encoding at once

- Decision p50/p99 (wall clock, and CPU time of the deciding thread, which a busy
  machine's preemption does not inflate): `decide()` (the webhook's decision, the FAQ step included) on the
  CLINC150-derived test questions, against knowledge bases of 200 and 5,000 entries of 3
  phrasings each (recombined from eval/clinc150's queries, for a realistic vocabulary).
- Start-up: a new Python process that imports the app and loads a rules file with 200
  entries (the model memory-mapped, every phrasing embedded and indexed), and the same
  without [[faq]]: the difference is what the knowledge base adds to a worker's boot.
- Memory: a master that forks WORKERS workers, as gunicorn does (the master loads the
  model when the rules file has an FAQ, gunicorn.conf.py's on_starting; each worker
  loads the rules file itself, no --preload), with and without the FAQ; private memory
  (Private_Clean + Private_Dirty, /proc/<pid>/smaps_rollup) per worker: the difference
  is what each worker costs more. The model's 16 MB table is a read-only file mapping
  and the tokenizer is the master's, shared by all of them.
- --sentence: faq_model = "sentence", 60 customers' messages (eval/dev1) encoded by 1 and
  by 4 threads at once (a worker's request threads), with BLAS on one thread per caller
  (sentence.py's setting) and on one per core (numpy's default): latency per message,
  messages per second, CPU per message.
"""

from __future__ import annotations

import argparse
import json
import random
import re
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

MASTER = """
import os, sys, time
from app.autoreply.preload import preload_for
if sys.argv[3] == "preload":
    preload_for(sys.argv[1])  # what gunicorn.conf.py's on_starting does
children = []
for _ in range(int(sys.argv[2])):
    read, write = os.pipe()
    import gc
    gc.freeze()  # what gunicorn.conf.py's pre_fork does
    pid = os.fork()
    if pid == 0:  # a worker: loads the rules file itself, like gunicorn's (no --preload)
        os.close(read)
        t = time.perf_counter()
        import app.autoreply as autoreply
        from app.autoreply.preload import preloaded
        rules = preloaded(sys.argv[1]) or autoreply.load_rules(sys.argv[1])  # as build_policy
        if rules.knowledge is not None:
            rules.knowledge.match("warm up: where is my card", "SMS")
        boot = time.perf_counter() - t
        # A real worker's collector soon walks (and so copies) the master's objects: make
        # both cases pay that now, so the difference is the FAQ's own.
        import gc
        gc.collect()
        os.write(write, f"{boot:.3f}".encode())
        os.close(write)
        sys.stdin.read()  # stay alive until the parent measured us
        os._exit(0)
    os.close(write)
    children.append((pid, read))
for pid, read in children:
    print(pid, os.read(read, 100).decode(), flush=True)
sys.stdin.read()
for pid, _ in children:
    os.waitpid(pid, 0)
"""


def rules_text(entries: int, seed: int = 5) -> str:
    pool = [json.loads(line)["text"] for path in POOL for line in path.read_text().splitlines()]
    rng = random.Random(seed)
    blocks = ['[fallback]\ntext = "We\'ll get back to you."\n']
    used = set()  # the loader refuses a question two entries share (the same words)
    for number in range(entries):
        questions = []
        while len(questions) < 3:
            text = rng.choice(pool)
            if rng.random() < 0.5:
                text = " ".join(rng.sample(text.split(), len(text.split())))
            key = " ".join(re.findall(r"\w+", text.casefold()))
            if key not in used:
                used.add(key)
                questions.append(text)
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
    timings, cpu = [], []
    for text in texts:
        message = Inbound(text, "+15558675310", "SMS", None, None, now)
        start, start_cpu = time.perf_counter(), time.thread_time()
        decide(message, state, policy, now)
        timings.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
    timings.sort()
    cpu.sort()
    return (statistics.median(timings), _p99(timings), _p99(cpu), built)


def _p99(values: list[float]) -> float:
    return values[int(len(values) * 0.99) - 1]


def start_workers(path: Path, count: int,
                  preload: bool = True) -> tuple[list[float], list[int]]:
    """A master that forks `count` workers loading `path`: their boot seconds (import and
    load) and private KB."""
    master = subprocess.Popen([sys.executable, "-c", MASTER, str(path), str(count),
                               "preload" if preload else "no"], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        lines = [master.stdout.readline().split() for _ in range(count)]
        boots = [float(boot) for _, boot in lines]
        private = [_private_kb(int(pid)) for pid, _ in lines]
    finally:
        master.stdin.close()
        master.wait(timeout=60)
    return boots, private


def _private_kb(pid: int) -> int:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value)
    return fields["Private_Clean"] + fields["Private_Dirty"]


def sentence_concurrency() -> None:
    import os
    import threading

    from threadpoolctl import threadpool_limits

    from app.knowledge import sentence

    encoder = sentence.load()
    texts = [json.loads(line)["text"] for line in
             (ROOT / "eval" / "dev1" / "cases.jsonl").read_text().splitlines()][:60]
    encoder.embed(texts[:5])  # warm
    print("| BLAS threads per call | threads encoding | p50 ms | p99 ms | messages/s | "
          "CPU ms per message |")
    print("|---|---|---|---|---|---|")
    for blas in (1, os.cpu_count()):
        for callers in (1, 4):
            latencies, lock = [], threading.Lock()

            def encode(done=latencies, guard=lock):
                for text in texts:
                    start = time.perf_counter()
                    encoder.embed([text])
                    with guard:
                        done.append((time.perf_counter() - start) * 1000)

            with threadpool_limits(limits=blas, user_api="blas"):
                wall, cpu = time.perf_counter(), time.process_time()
                threads = [threading.Thread(target=encode) for _ in range(callers)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            latencies.sort()
            print(f"| {blas} | {callers} | {statistics.median(latencies):.1f} | "
                  f"{_p99(latencies):.1f} | {len(latencies) / wall:.0f} | "
                  f"{cpu * 1000 / len(latencies):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--sentence", action="store_true",
                        help="only the sentence model's cost with concurrent callers")
    args = parser.parse_args()
    if args.sentence:
        sentence_concurrency()
        return
    texts = [json.loads(line)["text"] for line in CASES.read_text().splitlines()]
    texts = (texts * (args.decisions // len(texts) + 1))[:args.decisions]
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for entries in (0, 200, 5000):
            paths[entries] = Path(folder) / f"rules-{entries}.toml"
            paths[entries].write_text(rules_text(entries))
        print("| entries | decision p50 ms | decision p99 ms | decision p99 CPU ms | "
              "index built in s |")
        print("|---|---|---|---|---|")
        for entries in (200, 5000):
            p50, p99, cpu99, built = decision_latency(paths[entries], texts)
            print(f"| {entries:,} | {p50:.2f} | {p99:.2f} | {cpu99:.2f} | {built:.2f} |")
        print()
        print(f"| rules file | worker boot s (median of {WORKERS}) | private MB per worker "
              "(median) |")
        print("|---|---|---|")
        results = {}
        for label, entries, preload in (("no [[faq]]", 0, True),
                                        ("200 entries, model loaded in the master", 200, True),
                                        ("200 entries, model loaded in each worker", 200, False)):
            boots, private = start_workers(paths[entries], WORKERS, preload)
            results[label] = (statistics.median(boots), statistics.median(private) / 1024)
            print(f"| {label} | {results[label][0]:.2f} | {results[label][1]:.1f} |")
        print()
        base, shared = results["no [[faq]]"], results["200 entries, model loaded in the master"]
        print(f"FAQ adds {shared[0] - base[0]:.2f} s to a worker's boot and "
              f"{shared[1] - base[1]:.1f} MB of private memory per worker.")


if __name__ == "__main__":
    main()
