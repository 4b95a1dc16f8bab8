"""Auto-reply decisions: what to say to a customer, or why to stay silent (no Flask, no DB).

    policy = Policy.build(..., rules=load_rules(path))      # once, at start-up
    decision = decide(message, state, policy, now, enabled=switch)   # per message

`decision.py` holds the order of the checks and `verdict.py` what a decision says;
`rules.py` the rules file as decided with and `compiler.py` how a file is read and
checked (its format: rules.example.toml); `hours.py` business hours and holidays;
`keywords.py` the compliance keywords; `templates.py` the sandboxed reply templates.
"""

from .decision import decide, loop_guard
from .policy import Policy
from .verdict import ConversationState, Decision, Inbound, Reason, Reply

_RULES = {"Rules": "rules", "RulesError": "rules", "load_rules": "compiler",
          "parse_rules": "compiler"}


def __getattr__(name: str):
    """The rules file's names, imported on first use: pydantic, Jinja2's sandbox, `regex`
    and the holiday calendars cost a worker without a rules file ~10 MB for nothing."""
    if name in _RULES:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_RULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ConversationState", "Decision", "Inbound", "Policy", "Reason", "Reply", "Rules",
    "RulesError", "decide", "load_rules", "loop_guard", "parse_rules",
]
