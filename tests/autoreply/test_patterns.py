"""The operator's regular expressions: bounded whatever they say, on whatever customers send.

CPU time is measured with `time.thread_time()` (this thread's CPU, not the wall clock),
so a loaded machine does not make these tests flaky: the bounds asserted are 10 to 100
times what the fixed code needs and a fraction of what the old code took.
"""

from __future__ import annotations

import logging
import threading
import time
import tomllib

import pytest
import regex
import requests

from app.autoreply import Reason, decide, patterns
from app.autoreply.patterns import MAX_TEXT
from tests.support.decisions import NOW, message, policy, state
from tests.support.servers import ROOT, gunicorn
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, message_added, sign

# rules.example.toml's order-status pattern as it shipped: two `\s*` around an optional
# group, so a run of n spaces after "order" costs n² steps (13.6 s for 32,000 spaces).
QUADRATIC = r'\b(order|tracking)\s*(number|no\.?|#)?\s*\d{6,}\b'


def rules_with(pattern: str, extra: str = "") -> str:
    return (f"{extra}[[rules]]\nname = \"order-status\"\npattern = '{pattern}'\n"
            "text = \"Your order\"\n[fallback]\ntext = \"Thanks\"\n")


def cpu_seconds(call):
    """(result, CPU seconds this thread spent in `call`)."""
    start = time.thread_time()
    result = call()
    return result, time.thread_time() - start


def warnings_about(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and text in r.getMessage()]


def test_a_catastrophic_pattern_is_bounded_and_logged_once(caplog):
    """`(a+)+$` loads; against a hostile text it gives up quickly, counts as no match (the
    fallback answers), and says so once per pattern and process, not per message."""
    hostile = policy(rules_with("(a+)+$"))
    text = "a" * 4000 + "!"
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            decision, spent = cpu_seconds(lambda: decide(message(text), state(), hostile, NOW))
            assert (decision.reason, decision.rule) == (Reason.REPLY, "fallback")
            assert spent < 2.0  # the search gives up after MATCH_TIMEOUT (50 ms of CPU)
        assert decide(message("aaaa"), state(), hostile, NOW).rule == "order-status"
    [warning] = warnings_about(caplog, "(a+)+$")
    assert "rules[0] 'order-status' .pattern" in warning and "no match" in warning


def test_an_agent_pattern_is_bounded_too(caplog):
    """agent_patterns search the author: the same bound, the same single warning."""
    hostile = policy(rules_with("x", extra="agent_patterns = ['(a+)+$']\n"))
    author = "a" * 4000 + "!"
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            decision, spent = cpu_seconds(
                lambda: decide(message("hi", author=author), state(), hostile, NOW))
            assert decision.reason is Reason.REPLY and spent < 2.0
    [warning] = warnings_about(caplog, "(a+)+$")
    assert "agent_patterns[0]" in warning


def test_an_author_is_judged_once_unless_the_search_ran_out_of_time(monkeypatch):
    """A customer's many messages cost one search of agent_patterns, not one each; but a
    search that ran out of time is no verdict: the same author is judged again later."""
    rules = policy(rules_with("x", extra="agent_patterns = ['^agent:']\n")).rules
    searches = []
    real = patterns.Pattern.find
    monkeypatch.setattr(patterns.Pattern, "find",
                        lambda self, *a: searches.append(a[0]) or real(self, *a))
    assert [rules.is_agent("+15558675310") for _ in range(3)] == [False] * 3
    assert [rules.is_agent("agent:bob") for _ in range(3)] == [True] * 3
    assert searches == ["+15558675310", "agent:bob"]

    monkeypatch.setattr(patterns, "_budget_warned", False)  # its once-per-process warning
    monkeypatch.setattr(patterns, "MATCH_TIMEOUT", 0)  # every search runs out at once
    assert rules.is_agent("agent:alice") is False
    monkeypatch.setattr(patterns, "MATCH_TIMEOUT", 0.05)
    assert rules.is_agent("agent:alice") is True


def test_many_slow_patterns_share_one_budget_per_message(caplog):
    """A hundred catastrophic patterns cost a message one MESSAGE_BUDGET of CPU, not a
    hundred MATCH_TIMEOUTs (5 s, past Twilio's webhook timeout): once it is spent, the
    remaining patterns count as no match, and that is logged once."""
    slow = "".join(f"[[rules]]\nname = \"slow-{i}\"\npattern = '(a+)+b{i}'\ntext = \"x\"\n"
                   for i in range(100))
    hostile = policy(slow + "[fallback]\ntext = \"Thanks\"\n")
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            decision, spent = cpu_seconds(lambda: decide(message("a" * 4000), state(),
                                                         hostile, NOW))
            assert (decision.reason, decision.rule) == (Reason.REPLY, "fallback")
            assert spent < 1.0  # MESSAGE_BUDGET is 0.2 s; unbounded, this took 5 s
    assert len(warnings_about(caplog, "patterns of one message")) == 1


def test_a_quadratic_pattern_sees_at_most_max_text_characters():
    """The shipped order-status pattern against "order" and 32,000 spaces: rules see the
    first MAX_TEXT characters, and the search is bounded, so the decision is prompt."""
    rules = policy(rules_with(QUADRATIC))
    decision, spent = cpu_seconds(
        lambda: decide(message("order" + " " * 32_000), state(), rules, NOW))
    assert decision.rule == "fallback" and spent < 2.0  # was 13.6 s


def test_rules_see_the_first_max_text_characters_only():
    """A keyword past the cap is not seen; one inside it is."""
    rules = policy('[[rules]]\nname = "hours"\nkeywords = ["hours"]\ntext = "9 to 5"\n'
                   '[fallback]\ntext = "Thanks"\n')
    inside = "x" * (MAX_TEXT - len(" hours")) + " hours"
    beyond = "x" * MAX_TEXT + " hours"
    assert decide(message(inside), state(), rules, NOW).rule == "hours"
    assert decide(message(beyond), state(), rules, NOW).rule == "fallback"


def test_patterns_keep_pythons_unicode_semantics():
    """\\b, \\w and \\d are Unicode-aware, as with Python's re (RE2's are ASCII-only)."""
    rules = policy(rules_with(r"\bÖffnungszeiten\b|\d{3}"))
    assert decide(message("Öffnungszeiten?"), state(), rules, NOW).rule == "order-status"
    assert decide(message("٣٤٥"), state(), rules, NOW).rule == "order-status"  # Arabic digits


def _hostile_texts(size: int):
    """Long runs of what the example's patterns look for, after their anchors."""
    heads = ["", "order", "tracking", "order no", "order #", "when are you", "agent:"]
    atoms = [" ", "1", "a", "#", ".", "no", "order ", "when ", "@support.example.com"]
    for head in heads:
        for atom in atoms:
            for tail in ("", "!", "x"):
                yield head + atom * (size // len(atom)) + tail


def test_the_example_files_patterns_are_linear():
    """Each pattern in rules.example.toml searches 32,000 hostile characters well within
    a quarter second of CPU (linear: about 1 ms; the quadratic one it replaced: 5 s)."""
    example = tomllib.loads((ROOT / "rules.example.toml").read_text())
    patterns = [r["pattern"] for r in example["rules"] if "pattern" in r]
    patterns += example["agent_patterns"]
    assert len(patterns) == 4
    for source in patterns:
        compiled = regex.compile(source, regex.IGNORECASE)
        for text in _hostile_texts(32_000):
            compiled.search(text, timeout=0.25)  # TimeoutError fails the test


def test_the_linearity_check_catches_the_old_pattern():
    """The check above is not vacuous: the pattern as it shipped fails it."""
    compiled = regex.compile(QUADRATIC, regex.IGNORECASE)
    with pytest.raises(TimeoutError):
        compiled.search("order" + " " * 32_000, timeout=0.25)


def test_two_hostile_webhooks_at_once_are_answered_promptly(tmp_path, fake_api):
    """Through a real gunicorn worker: two signed webhooks of "order" and 32,000 spaces,
    against the quadratic pattern, both answered 200 within seconds (they took 13.6 s
    each, one after the other, holding the worker's GIL), and no worker is killed."""
    path = tmp_path / "rules.toml"
    path.write_text(rules_with(QUADRATIC))
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_API_BASE_URL": fake_api.url, "INSTANCE_DIR": tmp_path / "instance",
           "RESPONDER_RULES": path, "AUTO_REPLY_COOLDOWN": "0"}
    with gunicorn(env, tmp_path / "server.log", workers=1) as server:
        url = server.url + "/webhooks/conversations"
        answers = {}

        def post(n: int) -> None:
            params = message_added(body="order" + " " * 32_000,
                                   conversation_sid=f"CH{n:032x}", message_sid=f"IM{n:032x}")
            answers[n] = requests.post(url, data=params, timeout=120,
                                       headers={"X-Twilio-Signature": sign(params, url)})

        started = time.monotonic()
        threads = [threading.Thread(target=post, args=(n,)) for n in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        assert [answers[n].status_code for n in (1, 2)] == [200, 200]
        assert all("fallback" in answers[n].headers["X-Webhook-Outcome"] for n in (1, 2))
        assert elapsed < 10.0, elapsed  # one uncut search alone took 13.6 s
        assert "WORKER TIMEOUT" not in server.log


@pytest.mark.parametrize("source", ["(?:a{2000}){2000}", "(?:a{65535}){65535}",
                                    r"(?:\p{L}{2000}){2000}", "((?:ab){600}|c){200}",
                                    "x{2000000,4000000}",  # the minimum is written out
                                    r"(?:a{2000}){2000}\m",  # regex's own syntax: bounded
                                    r"(?:\\p{2000}){2000}"])  # an escaped backslash, then p
def test_a_pattern_that_repeats_too_much_is_refused_at_once(source):
    """Compiling writes out counted repeats: the first took 1.7 GB and 4.5 s at start-up,
    the second over a minute. Refused before compiling, naming the size."""
    with pytest.raises(ValueError, match="repeats too much"):
        patterns.check(source)


@pytest.mark.parametrize("source", [r"\b(order|tracking)(\s*(number|no\.?|#))?\s*\d{6,}\b",
                                    r"[A-Z]{2}\d{6,12}", ".{0,4096}", r"\p{Lu}{2}\d{1,20}",
                                    "(?>a{100}){100}", ".{0,30000}", r"\d{1,65535}",
                                    r"(?:\w{1,30}\s+){0,1000}",  # a maximum costs nothing
                                    "[[:digit:]]+"])
def test_patterns_of_a_reasonable_size_load(source):
    patterns.check(source)
    assert patterns.expanded_size(source) <= patterns.MAX_EXPANDED
