"""Instructions per webhook, counted by valgrind's callgrind: a measure that does not move
with the neighbours on a shared machine, where wall-clock CPU per webhook moved 2x between
runs minutes apart (bench/PROFILE.md, ninth round).

    .venv/bin/python -m bench.instructions                 # the table below, ~3 minutes
    .venv/bin/python -m bench.instructions --webhooks 100 --only "no rules"
    .venv/bin/python -m bench.instructions --keep          # and keep callgrind's files
    .venv/bin/python -m bench.instructions --rules my.toml # also with another rules file

Each configuration runs in its own process under `valgrind --tool=callgrind
--instr-atstart=no`: signed onMessageAdded webhooks (the same as `make bench` sends, each a
new conversation) go through the WSGI app in one thread, the first --warm uncounted, then
the process turns callgrind's counting on (`callgrind_control -i on`) for the next
--webhooks and off again. SQLite, the sender apart (`SENDER_IN_PROCESS=false`): what one
gunicorn worker thread spends on a webhook, from the WSGI call to its return.
`PYTHONHASHSEED=0`: two runs of one configuration agree to within ~0.1% (each webhook
has new random ids).
With --keep, `callgrind_annotate bench/out/callgrind.<name>.out` shows where they go.

Needs valgrind (Debian: `apt-get install valgrind`); without it, says so and exits 2.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
# name -> (WSGI app, extra environment)
CONFIGURATIONS = {
    "A floor (signature, 204)": ("bench.floor_app:app", {}),
    "C no rules": ("wsgi:app", {}),
    "C rules.example.toml": ("wsgi:app", {"RESPONDER_RULES": str(ROOT / "rules.example.toml")}),
}


def inside(app_path: str, webhooks: int, warm: int) -> None:
    """Runs under callgrind: the app, warm-up, then the counted webhooks."""
    from importlib import import_module

    from bench.run import PATH, signed_requests

    module, name = app_path.split(":")
    app = getattr(import_module(module), name)
    client = app.test_client()
    requests = signed_requests(warm + webhooks)

    def send(batch) -> None:
        for body, signature in batch:
            response = client.post(PATH, data=body, headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded"})
            if response.status_code >= 300:
                raise SystemExit(f"webhook answered {response.status_code}")

    send(requests[:warm])
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True,
                   capture_output=True)
    send(requests[warm:])
    subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True,
                   capture_output=True)


def count(name: str, app_path: str, extra: dict, args, tmp: Path) -> int:
    """Total instructions callgrind counted while `webhooks` webhooks ran."""
    from bench.run import PUBLIC, SID, TOKEN

    out = tmp / f"callgrind.{re.sub(r'[^a-z0-9.]+', '-', name.lower())}.out"
    inherited = {k: v for k, v in os.environ.items() if k != "RESPONDER_RULES"}
    env = {**inherited, "PYTHONHASHSEED": "0", "TWILIO_ACCOUNT_SID": SID,
           "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC,
           "TWILIO_API_BASE_URL": "http://127.0.0.1:9",  # never called: the sender is apart
           "SENDER_IN_PROCESS": "false",
           "DATABASE_URL": f"sqlite:///{tmp / (out.stem + '.sqlite3')}",
           "INSTANCE_DIR": str(tmp / out.stem), **extra}
    run = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                          f"--callgrind-out-file={out}", sys.executable, "-m",
                          "bench.instructions", "--inside", app_path,
                          "--webhooks", str(args.webhooks), "--warm", str(args.warm)],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"{name}: exit {run.returncode}\n{run.stderr[-3000:]}")
    totals = re.search(r"^totals:\s+(\d+)", out.read_text(), re.MULTILINE)
    if args.keep:
        OUT.mkdir(exist_ok=True)
        shutil.copy(out, OUT / out.name)
    return int(totals.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=300, help="counted webhooks")
    parser.add_argument("--warm", type=int, default=200, help="webhooks before counting")
    parser.add_argument("--only", default="", help="configurations whose name contains this")
    parser.add_argument("--keep", action="store_true", help="keep callgrind's files in bench/out")
    parser.add_argument("--rules", action="append", default=[], metavar="FILE",
                        help="also count the server with this rules file (repeatable)")
    parser.add_argument("--inside", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configurations = dict(CONFIGURATIONS)
    for rules in args.rules:
        configurations[f"C {Path(rules).name}"] = (
            "wsgi:app", {"RESPONDER_RULES": str(Path(rules).resolve())})
    if args.inside:
        inside(args.inside, args.webhooks, args.warm)
        return
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        sys.exit("bench.instructions needs valgrind (Debian: apt-get install valgrind)")
    print(f"{'configuration':34s} {'instructions per webhook':>26s}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        for name, (app_path, extra) in configurations.items():
            if args.only and args.only not in name:
                continue
            total = count(name, app_path, extra, args, Path(tmp))
            print(f"{name:34s} {total / args.webhooks:>26,.0f}", flush=True)


if __name__ == "__main__":
    main()
