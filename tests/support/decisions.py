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


# A rules file using every feature (tests/autoreply/test_decision.py, test_handoff.py).
TEMPLATE_SID = "HX" + "1" * 32
RULE_TEMPLATE_SID = "HX" + "2" * 32
CARD_SID = "HX" + "3" * 32

RULES = f"""
compliance_keywords = ["ARRET"]
agent_patterns = ['^agent:']

[constants]
company = "Acme"

[whatsapp_template]
content_sid = "{TEMPLATE_SID}"
content_variables = {{ 1 = "{{{{ customer }}}}" }}

[hours]
timezone = "Europe/Berlin"
monday = "09:00-17:00"
tuesday = "09:00-17:00"
wednesday = "09:00-17:00"
thursday = "09:00-17:00"
friday = "09:00-17:00"
holidays = [2026-12-24]

[greeting]
text = "Welcome to {{{{ company }}}}, {{{{ customer }}}}!"

[after_hours]
text = "Closed; back {{{{ next_open }}}}."

[fallback]
text = "Thanks from {{{{ company }}}}."

[fallback.per_channel.WHATSAPP]
text = "Thanks on {{{{ channel }}}}."

[[rules]]
name = "hours"
keywords = ["opening hours", "hours"]
bypass_cooldown = true
text = "We're open 9 to 5."

[rules.whatsapp_template]
content_sid = "{RULE_TEMPLATE_SID}"

[[rules]]
name = "refund"
pattern = 'refund(s|ed)?\\b'
channels = ["SMS"]
text = "Refunds take 5 days."

[[rules]]
name = "vip"
keywords = ["VIP"]
case_sensitive = true
text = "Hello VIP."

[[rules]]
name = "urgent"
keywords = ["urgent"]
when = "closed"
text = "Call us at night."

[[rules]]
name = "card"
keywords = ["catalogue"]
content_sid = "{CARD_SID}"
content_variables = {{ 1 = "{{{{ customer }}}}", 2 = "{{{{ company }}}}" }}
"""


# Two FAQ entries close enough that "i lost my card or it was stolen" asks which one.
# A fallback and the card-delivery entry: the FAQ of the webhook and dashboard tests.
CARD_DELIVERY = """
[fallback]
text = "We'll get back to you soon."

[[faq]]
id = "card-delivery"
questions = ["When will my card arrive?", "My card hasn't arrived yet",
             "How long does it take to get my card?"]
answer = "Cards arrive within 7 working days."
"""
CARD_LOST_OR_STOLEN = """
[[faq]]
id = "card-lost"
questions = ["I lost my card", "My card is lost"]
answer = "Block it in the app right away."

[[faq]]
id = "card-stolen"
questions = ["My card was stolen", "Someone stole my card"]
answer = "Block it in the app and report the theft to the police."
"""
