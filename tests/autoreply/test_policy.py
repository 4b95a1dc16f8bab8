"""Policy: built from settings values, refusing values no setting should produce."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from app.autoreply import Policy, parse_rules
from app.autoreply.keywords import COMPLIANCE

BASE = dict(bot_identity="support-bot", agent_identities=["alice"], auto_reply_text="Thanks!",
            cooldown=timedelta(hours=1), budget=5, handoff_window=timedelta(minutes=30))


def test_build_from_values():
    """build() freezes the agent identities and keeps the start-up switch default."""
    policy = Policy.build(**BASE)
    assert policy.agent_identities == frozenset({"alice"})
    assert policy.enabled is True and policy.rules is None
    assert policy.compliance_keywords == COMPLIANCE


@pytest.mark.parametrize(("override", "message"), [
    ({"bot_identity": ""}, "bot_identity"),
    ({"auto_reply_text": "  "}, "auto_reply_text"),
    ({"cooldown": timedelta(seconds=-1)}, "cooldown"),
    ({"handoff_window": timedelta(seconds=-1)}, "handoff_window"),
    ({"budget": -1}, "budget"),
])
def test_build_refuses(override, message):
    """Empty identities or texts and negative limits are programming errors."""
    with pytest.raises(ValueError, match=message):
        Policy.build(**{**BASE, **override})


@pytest.mark.parametrize(("default", "stored", "expected"), [
    (True, None, True), (False, None, False), (True, False, False), (False, True, True),
])
def test_switch(default, stored, expected):
    """The runtime switch, when set, wins over the start-up default."""
    assert Policy.build(**BASE, enabled=default).switch(stored) is expected


@pytest.mark.parametrize(("author", "expected"), [
    ("alice", True), ("agent:bob", True), ("Agent:bob", False), ("bob", False),
    ("+15558675310", False),
])
def test_is_agent(author, expected):
    """Agents are AGENT_IDENTITIES plus the rules file's patterns (case-sensitive)."""
    rules = parse_rules("agent_patterns = ['^agent:']\ncompliance_keywords = ['arret']")
    policy = Policy.build(**BASE, rules=rules)
    assert policy.is_agent(author) is expected
    assert policy.compliance_keywords == COMPLIANCE | {"ARRET"}


def test_rules_libraries_load_only_with_a_rules_file(tmp_path):
    """A server without a rules file never imports pydantic, the holiday calendars or
    `regex` (each worker ~10 MB smaller); one with a rules file loads them."""
    import subprocess
    import sys

    from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN

    script = (
        "import sys; from app import create_app; create_app(); "
        "print(sorted(m for m in ('pydantic', 'holidays', 'regex') if m in sys.modules))")
    env = {"PATH": "/usr/bin:/bin", "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
           "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_BASE_URL": "https://bot.example.com",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
           "INSTANCE_DIR": str(tmp_path), "SENDER_IN_PROCESS": "false"}

    def loaded(**extra) -> str:
        return subprocess.run([sys.executable, "-c", script], env={**env, **extra},
                              capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[2]).stdout.splitlines()[-1]

    assert loaded() == "[]"
    rules = tmp_path / "rules.toml"
    rules.write_text('[fallback]\ntext = "Thanks, we will answer soon."\n')
    assert loaded(RESPONDER_RULES=str(rules)) == "['holidays', 'pydantic', 'regex']"
