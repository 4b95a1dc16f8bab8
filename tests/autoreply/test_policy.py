"""Policy: built from settings values, refusing values no setting should produce."""

from __future__ import annotations

from datetime import timedelta

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
