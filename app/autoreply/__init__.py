"""Auto-reply decisions: what to say to a customer, or why to stay silent (no Flask, no DB).

    policy = Policy.build(..., rules=load_rules(path))      # once, at start-up
    decision = decide(message, state, policy, now, enabled=switch)   # per message

`decision.py` holds the order of the checks; `rules.py` the rules file (its format:
rules.example.toml); `hours.py` business hours and holidays; `keywords.py` the compliance
keywords; `templates.py` the sandboxed reply templates.
"""

from .decision import ConversationState, Decision, Inbound, Reason, Reply, decide, loop_guard
from .policy import Policy
from .rules import Rules, RulesError, load_rules, parse_rules

__all__ = [
    "ConversationState", "Decision", "Inbound", "Policy", "Reason", "Reply", "Rules",
    "RulesError", "decide", "load_rules", "loop_guard", "parse_rules",
]
