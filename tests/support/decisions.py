"""What decide() takes, built for tests: a policy, a customer's message, a conversation's
state. The clock is injected: NOW is a Wednesday noon in Berlin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.autoreply import ConversationState, Inbound, Policy, parse_rules

NOW = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)  # Wed 12:00 CEST: open
CUSTOMER = "+15558675310"


def policy(rules: str | None = None, **overrides) -> Policy:
    """The policy of a bot `support-bot` with agent `alice`, and `rules` when given."""
    settings = dict(bot_identity="support-bot", agent_identities={"alice"},
                    auto_reply_text="Thanks!", cooldown=timedelta(hours=1), budget=5,
                    handoff_window=timedelta(minutes=30))
    settings.update(overrides)
    return Policy.build(**settings, rules=parse_rules(rules, "rules.toml") if rules else None)


def message(body: str = "Hello", *, now: datetime = NOW, **fields) -> Inbound:
    """A customer's SMS received at `now` unless said otherwise."""
    values = dict(body=body, author=CUSTOMER, channel="SMS", attributes="{}",
                  participant_sid="MB" + "0" * 32, received_at=now)
    values.update(fields)
    return Inbound(**values)


def state(**fields) -> ConversationState:
    """A conversation with one earlier message, no reply yet, no agent, not opted out."""
    values = dict(inbound_before=1, last_reply_at=None, replies_last_hour=0,
                  last_agent_at=None, opted_out=False)
    values.update(fields)
    return ConversationState(**values)
