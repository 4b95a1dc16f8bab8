"""Chaos, bounded: two instances on one PostgreSQL while processes are killed, the database
is cut and frozen, and Twilio's API fails, throttles, is slow and lands creates late.

A (gunicorn, 2 workers, the sender inside each) and B (gunicorn, 2 workers, a dedicated
`flask --app wsgi sender` beside it) share one PostgreSQL reached through a proxy the
test controls. Two posters send onMessageAdded webhooks over 20 conversations, each
message to both instances at once (as Twilio's retries could reach either), the next
message of a conversation only once both posts of the one before were answered.
Meanwhile, one after the other, with a calm pause between two (run_script):

    sender killed    kill -9 of the dedicated sender, then a new one; while it boots:
      worker killed  kill -9 of a worker of A, its sender with it; gunicorn respawns it
      API 500        creates answered 500, half of them created (unknown outcomes)
      API 429        creates throttled
    database cut     connections reset, new ones refused, for FAULT_SECONDS
    master killed    kill -9 of B's master, then B started again (on a new port; its
                     orphaned workers exit by themselves); while it boots:
      API slow       every answer later than TWILIO_HTTP_TIMEOUT, for FAULT_SECONDS
      late creates   the first create of a few replies lands LATE_SECONDS late (after
                     the timeout, before the settle time), one never lands
    database frozen  the proxy stopped (SIGSTOP): packets held, for FAULT_SECONDS

Then, once every reply has settled, these hold (and one line reports them):
- every message acknowledged 2xx by either instance got exactly one reply, none lost;
- a conversation's replies reached the API in the order its messages were acknowledged;
- no 5xx while the database was reachable: a 503 while it is cut or frozen is the
  documented answer (docs/delivery.md#guarantees), and a request in flight within
  RECOVERY seconds of its return may still get one; no webhook went unanswered or was
  answered later than Twilio's 5 s outside the database faults and the kills of web
  processes (within RECOVERY of their end).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.databases import PG_URL, reset_postgres
from tests.support.servers import Server, flask_cli, gunicorn, reply_counts, sender_process
from tests.support.tcp_proxy import ProxyProcess
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, message_added, sign

pytestmark = pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set: two "
                                "instances on one database need PostgreSQL")

CONVERSATIONS = 20
PER_CONVERSATION = 20  # a bound (400 messages): the script ends the stream well before
PACE = 0.2  # seconds between two messages of a poster (the stream's pace)
FAULT_SECONDS = 3.0  # how long the database is cut or frozen, or the API slow
CALM_SECONDS = 1.5  # healthy, between two faults
TIMEOUT = 2  # TWILIO_HTTP_TIMEOUT
SLOW_SECONDS = 3.0  # the API's latency while slow: above TIMEOUT
LATE_SECONDS = 4.0  # how late the late creates land: above TIMEOUT, below SETTLE
SETTLE = 6  # SEND_SETTLE_SECONDS: above SLOW_SECONDS and LATE_SECONDS, with room for load
BASE_LATENCY = 0.1  # the API's latency otherwise: a kill finds creates in flight
TWILIO_WAIT = 5.0  # Twilio gives a webhook 5 s
# A request in flight within this long after the database came back may still get its
# 503: the app finds its pooled connections dead only when it uses them, PostgreSQL
# releases the row locks of a cut or frozen connection's transaction only once it sees
# that connection closed, and on a loaded machine the proxy needs a moment of CPU to
# close it.
RECOVERY = 2.0
DATABASE_FAULTS = ("database cut", "database frozen")
# Faults that stop a web process: its connections reset, its port refuses for a while.
WEB_KILLS = ("worker killed", "master killed")
SETTINGS = {
    "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "TWILIO_HTTP_TIMEOUT": str(TIMEOUT), "SEND_SETTLE_SECONDS": str(SETTLE),
    # Longer than a look-up and a create (2 x TIMEOUT), short for the test's sake: the
    # replies of a killed sender are taken over after it, then wait SETTLE.
    "SEND_LEASE": "6s",
    "SENDER_POLL_SECONDS": "0.2", "SEND_BACKOFF_SECONDS": "0.1",
    "SEND_BACKOFF_MAX_SECONDS": "1", "SEND_MAX_ATTEMPTS": "100",
    # Every message of a conversation is answered: no cooldown, no hourly budget.
    "AUTO_REPLY_COOLDOWN": "0", "AUTO_REPLY_BUDGET": "1000", "LOG_LEVEL": "INFO",
}


@dataclass(frozen=True)
class Answer:
    """One post of one message to one instance, as the poster saw it (monotonic times)."""

    message: str
    conversation: str
    sent: float
    took: float
    status: int | None  # None: no HTTP answer at all (`error` says what happened)
    error: str = ""
    outcome: str = ""  # X-Webhook-Outcome

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def answered(self) -> float:
        return self.sent + self.took

    @property
    def result(self) -> str:
        return str(self.status) if self.status is not None else self.error


@dataclass(frozen=True)
class Window:
    """One fault, from its start to the moment it was over."""

    kind: str
    start: float
    end: float

    def overlaps(self, answer: Answer, after: float = 0.0) -> bool:
        return answer.sent <= self.end + after and answer.answered >= self.start


class Instance:
    """One gunicorn with 2 workers on the shared database; restarted on a new port."""

    def __init__(self, name: str, env: dict, folder: Path, stack: ExitStack, *,
                 in_process: bool):
        self.name, self.folder, self.in_process = name, folder, in_process
        self.env = {**env, "SENDER_IN_PROCESS": str(in_process).lower()}
        self._stack = stack.enter_context(ExitStack())  # its own: started from any thread
        self.starts = 0
        self.server: Server | None = None

    def start(self) -> None:
        """Start it, and return once both workers serve."""
        self.starts += 1
        run = f"{self.name}{self.starts}"
        # The metrics folder in the test's own: a master killed cannot remove it.
        env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.folder / f"metrics-{run}")}
        server = self._stack.enter_context(gunicorn(env, self.folder / f"{run}.log", workers=2))
        if self.in_process:
            server.wait_workers(2)
        else:  # no sender in the workers: nothing of the app's own to wait for
            server.wait_booted(2)
        self.server = server

    def kill(self) -> None:
        """kill -9 of the master, then of its workers."""
        workers = self.workers()
        self.server.process.kill()
        self.server.process.wait(10)
        for pid in filter(alive, workers):
            os.kill(pid, signal.SIGKILL)

    @property
    def url(self) -> str:
        return self.server.url

    def workers(self) -> list[int]:
        children = subprocess.run(["pgrep", "-P", str(self.server.process.pid)],
                                  capture_output=True, text=True).stdout
        return [int(pid) for pid in children.split()]


class DedicatedSender:
    """`flask --app wsgi sender`, restarted with a log of its own each time."""

    def __init__(self, env: dict, folder: Path, stack: ExitStack):
        self.env, self.folder = env, folder
        self._stack = stack.enter_context(ExitStack())
        self.starts = 0
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start it, and return once it sends."""
        self.starts += 1
        log_path = self.folder / f"sender{self.starts}.log"
        process = self.process = sender_process(self.env, log_path)
        self._stack.callback(lambda: process.poll() is None
                             and (process.terminate(), process.wait(30)))
        wait_for(lambda: "background work started" in log_path.read_text(), timeout=60,
                 interval=0.1)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


def together(*calls) -> None:
    """Run `calls` at once and wait for all (processes booting side by side get more of
    a loaded machine than one after the other)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()


class Stream:
    """Two posters, each owning half the conversations and posting their messages in
    turn, each message to every instance at once; every answer is recorded."""

    def __init__(self, instances: list[Instance], conversations: dict[str, list[str]]):
        self.instances = instances
        self.conversations = conversations
        self.answers: list[Answer] = []
        self.posted: Counter = Counter()  # conversation -> messages begun
        self._lock = threading.Lock()
        self._stop = threading.Event()
        sids = list(conversations)
        self._threads = [threading.Thread(target=self._post, args=(sids[i::2],), daemon=True)
                         for i in range(2)]

    def __enter__(self) -> Stream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _post(self, owned: list[str]) -> None:
        with ThreadPoolExecutor(len(self.instances)) as pool:
            for turn in range(PER_CONVERSATION):
                for conversation in owned:
                    if self._stop.wait(PACE):  # the stream's pace, not a synchronisation
                        return
                    with self._lock:
                        self.posted[conversation] += 1
                    params = message_added(conversation_sid=conversation,
                                           message_sid=self.conversations[conversation][turn])
                    answers = list(pool.map(partial(deliver, params), self.instances))
                    with self._lock:
                        self.answers += answers

    def upcoming(self, count: int) -> list[str]:
        """The message after the next one of `count` conversations: none is posted yet,
        nor will be for a while (each poster takes its conversations in turn)."""
        with self._lock:
            return [messages[self.posted[sid] + 1]
                    for sid, messages in self.conversations.items()
                    if self.posted[sid] + 1 < len(messages)][:count]

    def recorded(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)


def deliver(params: dict, instance: Instance) -> Answer:
    """Post `params` to the instance's current address, signed as Twilio signs it."""
    url = instance.url + "/webhooks/conversations"
    sent = time.monotonic()
    try:
        response = requests.post(url, data=params, timeout=10,
                                 headers={"X-Twilio-Signature": sign(params, url)})
    except requests.RequestException as exc:
        return Answer(params["MessageSid"], params["ConversationSid"], sent,
                      time.monotonic() - sent, None, type(exc).__name__)
    return Answer(params["MessageSid"], params["ConversationSid"], sent,
                  time.monotonic() - sent, response.status_code,
                  outcome=response.headers.get("X-Webhook-Outcome", ""))


class Script:
    """The faults, one after the other, each recorded as a window."""

    def __init__(self):
        self.windows: list[Window] = []

    @contextmanager
    def fault(self, kind: str):
        start = time.monotonic()
        try:
            yield
        finally:
            self.windows.append(Window(kind, start, time.monotonic()))

    def during(self, answer: Answer, kinds: tuple[str, ...], after: float = 0.0) -> bool:
        return any(w.kind in kinds and w.overlaps(answer, after) for w in self.windows)


def hold(seconds: float) -> None:
    """Let a fault (or the calm between two) last: a duration, not a synchronisation."""
    time.sleep(seconds)


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def sender_pids(log: str) -> set[str]:
    """The workers whose sender started, from gunicorn's log."""
    return set(re.findall(r"background work started pid=(\d+)", log))


def run_script(script: Script, stream: Stream, fake_api, proxy: ProxyProcess,
               a: Instance, b: Instance, sender: DedicatedSender) -> None:
    """The faults of the module docstring, in its order. A process that boots again
    overlaps faults of the API only: never the database's, since a worker or a sender
    that cannot check the schema at boot exits (gunicorn with it)."""
    hold(CALM_SECONDS)
    with script.fault("sender killed"), ThreadPoolExecutor(1) as pool:
        sender.kill()
        restarted = pool.submit(sender.start)
        with script.fault("worker killed"):
            before = sender_pids(a.server.log)
            os.kill(a.workers()[0], signal.SIGKILL)
            wait_for(lambda: sender_pids(a.server.log) - before, timeout=60, interval=0.1)
        hold(CALM_SECONDS)
        with script.fault("API 500"):
            for _ in range(4):
                fake_api.fail(1, 500)
                fake_api.fail(1, 500, accepted=True)
            wait_for(lambda: fake_api.faults_left == 0, timeout=30, interval=0.05)
        hold(CALM_SECONDS)
        with script.fault("API 429"):
            fake_api.fail(10, 429)
            wait_for(lambda: fake_api.faults_left == 0, timeout=30, interval=0.05)
        restarted.result()
    hold(CALM_SECONDS)
    with script.fault("database cut"):
        proxy.cut()
        hold(FAULT_SECONDS)
        proxy.restore()
    hold(CALM_SECONDS)
    with script.fault("master killed"), ThreadPoolExecutor(1) as pool:
        orphans = b.workers()
        b.server.process.kill()
        b.server.process.wait(10)
        restarted = pool.submit(b.start)
        with script.fault("API slow"):
            fake_api.latency = SLOW_SECONDS
            hold(FAULT_SECONDS)
            fake_api.latency = BASE_LATENCY
        with script.fault("late creates"):
            *late, never = chosen = stream.upcoming(4)
            fake_api.land_late(LATE_SECONDS, late)
            fake_api.land_late(LATE_SECONDS, [never], lands=False)

            def tried_and_landed() -> bool:
                tried = {c.in_reply_to for c in (*fake_api.created, *fake_api.dropped)}
                return set(chosen) <= tried and not fake_api.holding & set(chosen)

            wait_for(tried_and_landed, timeout=60, interval=0.1)
        restarted.result()
        try:
            wait_for(lambda: not any(alive(pid) for pid in orphans), timeout=30, interval=0.1)
        finally:
            for pid in filter(alive, orphans):  # the test fails: leave nothing behind
                os.kill(pid, signal.SIGKILL)
    hold(CALM_SECONDS)
    with script.fault("database frozen"):
        proxy.freeze()
        try:
            hold(FAULT_SECONDS)
        finally:
            proxy.thaw()
    hold(CALM_SECONDS)


def first_acknowledgements(answers: list[Answer]) -> dict[str, float]:
    """Each acknowledged message and when its first 2xx came."""
    first: dict[str, float] = {}
    for answer in answers:
        if answer.acknowledged:
            first[answer.message] = min(answer.answered, first.get(answer.message, answer.answered))
    return first


@dataclass
class Findings:
    """What went wrong, by the module docstring's rules (each empty when all is well)."""

    duplicates: dict[str, int]  # message -> how many replies it got
    lost: list[str]  # acknowledged, never answered
    disordered: dict[str, tuple]  # conversation -> (the acknowledged order, the replies')
    bad_5xx: list[Answer]  # any 5xx but a 503 while the database was away
    unanswered: list[Answer]  # no HTTP answer outside the database faults and web kills
    slow: list[Answer]  # answered after TWILIO_WAIT outside them


def judge(answers: list[Answer], acknowledged: dict[str, float], replies_to, created,
          conversations: dict[str, list[str]], script: Script) -> Findings:
    """Hold the stream's answers and the replies the API received to the rules."""
    landed: dict[str, list[str]] = defaultdict(list)  # conversation -> first creates
    for record in created:
        if record.in_reply_to not in landed[record.conversation_sid]:
            landed[record.conversation_sid].append(record.in_reply_to)
    disordered = {}
    for conversation, messages in conversations.items():
        expected = sorted((m for m in messages if m in acknowledged), key=acknowledged.get)
        got = [m for m in landed[conversation] if m in acknowledged]
        if got != expected:
            disordered[conversation] = (expected, got)
    excused = DATABASE_FAULTS + WEB_KILLS
    return Findings(
        duplicates={sid: n for sid, n in replies_to.items() if n > 1},
        lost=sorted(set(acknowledged) - set(replies_to)),
        disordered=disordered,
        bad_5xx=[a for a in answers if a.status is not None and a.status >= 500
                 and not (a.status == 503 and script.during(a, DATABASE_FAULTS, RECOVERY))],
        unanswered=[a for a in answers
                    if a.status is None and not script.during(a, excused, RECOVERY)],
        slow=[a for a in answers
              if a.took > TWILIO_WAIT and not script.during(a, excused, RECOVERY)])


def report(findings: Findings, answers: list[Answer], acknowledged: dict[str, float],
           replies_to, replies: dict, script: Script, logs: Path, times: str) -> str:
    """One line: the findings' counts, then what happened (answers, outcomes, faults)."""
    unavailable = [a.took for a in answers if a.status == 503]
    outcomes = Counter(a.outcome.split(":")[0].split(";")[0] for a in answers if a.outcome)
    tracebacks = {path.name: text.count("Traceback") for path in sorted(logs.glob("*.log"))
                  if "Traceback" in (text := path.read_text(errors="replace"))}
    return (
        f"chaos: {times}; {len({a.message for a in answers})} messages ({len(answers)} "
        f"posts) over {CONVERSATIONS} conversations, {len(acknowledged)} acknowledged, "
        f"{sum(replies_to.values())} replies ({len(set(replies_to) - set(acknowledged))} to "
        f"messages not acknowledged); duplicates {len(findings.duplicates)}, losses "
        f"{len(findings.lost)}, out-of-order {len(findings.disordered)}, 5xx-while-healthy "
        f"{len(findings.bad_5xx)}, unanswered-while-healthy {len(findings.unanswered)}, "
        f"slow-while-healthy {len(findings.slow)}; answers "
        f"{dict(sorted(Counter(a.result for a in answers).items()))} (the slowest 503 in "
        f"{max(unavailable, default=0):.1f} s); outcomes {dict(outcomes)}; replies "
        f"{replies}; tracebacks {tracebacks or 'none'}; faults "
        + ", ".join(f"{w.kind} {w.end - w.start:.1f} s" for w in script.windows))


def test_chaos_every_acknowledged_message_answered_once_in_order(tmp_path, fake_api):
    """Kills, the database cut and frozen, the API failing, throttling, slow and late,
    with webhooks arriving at two instances: one reply per acknowledged message, in
    order; no 5xx while the database was reachable."""
    began = time.monotonic()
    reset_postgres(PG_URL)
    target = urlsplit(PG_URL)
    conversations = {fake_api.add_conversation(): [f"IM{os.urandom(16).hex()}"
                                                   for _ in range(PER_CONVERSATION)]
                     for _ in range(CONVERSATIONS)}
    script = Script()
    with ExitStack() as stack:
        proxy = stack.enter_context(ProxyProcess(target.hostname, target.port or 5432))
        url = PG_URL.replace(target.netloc,
                             f"{target.username or 'postgres'}@127.0.0.1:{proxy.port}")
        env = {**SETTINGS, "TWILIO_API_BASE_URL": fake_api.url, "DATABASE_URL": url,
               "INSTANCE_DIR": str(tmp_path)}
        assert flask_cli(env, "db", "upgrade").returncode == 0  # the release phase
        fake_api.latency = BASE_LATENCY
        a = Instance("a", env, tmp_path, stack, in_process=True)
        b = Instance("b", env, tmp_path, stack, in_process=False)
        sender = DedicatedSender(env, tmp_path, stack)
        together(a.start, b.start, sender.start)
        booted = time.monotonic()

        with Stream([a, b], conversations) as stream:
            run_script(script, stream, fake_api, proxy, a, b, sender)
        streamed = time.monotonic()
        answers = stream.recorded()
        acknowledged = first_acknowledgements(answers)

        def settled() -> bool:
            return (set(acknowledged) <= set(fake_api.answers())
                    and set(reply_counts(PG_URL)) <= {"sent"}
                    and fake_api.in_flight == 0 and not fake_api.holding)

        try:
            wait_for(settled, timeout=90, interval=0.2)
        except AssertionError:
            pass  # what never settled is reported below
        replies = reply_counts(PG_URL)
        settled_at = time.monotonic()
        # Nothing is left to send: kill -9 is quick (stopping gracefully is proved by
        # test_graceful_shutdown.py).
        together(a.kill, b.kill, sender.kill)
    # Every process is gone: once the API has answered what it holds, nothing more can
    # reach it.
    wait_for(lambda: fake_api.in_flight == 0, timeout=30, interval=0.1)
    ended = time.monotonic()

    replies_to = fake_api.answers()
    findings = judge(answers, acknowledged, replies_to, list(fake_api.created), conversations,
                     script)
    times = (f"{ended - began:.0f} s (boot {booted - began:.0f}, stream {streamed - booted:.0f}, "
             f"settle {settled_at - streamed:.0f}, stop {ended - settled_at:.0f})")
    line = report(findings, answers, acknowledged, replies_to, replies, script, tmp_path, times)
    print(line)
    assert findings.duplicates == {}, line
    assert findings.lost == [], line
    assert set(replies) == {"sent"}, line
    assert findings.disordered == {}, line
    assert findings.bad_5xx == [], f"{line}\n{findings.bad_5xx}"
    assert findings.unanswered == [], f"{line}\n{findings.unanswered}"
    assert findings.slow == [], f"{line}\n{findings.slow}"
