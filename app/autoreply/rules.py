"""The rules file as the decision uses it: immutable Rules, Rule and the errors of a file.

compiler.py reads and checks a file into these (`load_rules`, `parse_rules`); `decide`
asks them which rule matches and who is an agent. The format, every option commented,
is rules.example.toml.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .hours import BusinessHours
from .names import AFTER_HOURS, FALLBACK, GREETING  # noqa: F401 - importable from here too
from .patterns import MAX_TEXT, Budget, Pattern
from .templates import ReplySpec, Variant

AUTHORS_REMEMBERED = 10_000  # authors whose agent_patterns answer each process keeps

if TYPE_CHECKING:  # built only from a rules file with an FAQ
    from ..knowledge import KnowledgeBase


@dataclass(frozen=True)
class MediaVariant(Variant):
    """A variant that sends media: a file (its absolute path) or an http(s) URL, uploaded
    to Twilio once when first sent (app/delivery/media.py; what Twilio takes: app/twilio/media.py)."""

    media: str | None = None


class RulesError(Exception):
    """A rules file cannot be used; `problems` are 'location: message' lines."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {problem}" for problem in problems))


def place(loc: tuple, data: dict) -> str:
    """A pydantic location as people read it: rules[2] 'hours' .pattern, hours.monday[0]."""
    parts = [part for part in loc if part != "[key]"]
    if len(parts) >= 2 and parts[0] == "knowledge" and isinstance(parts[1], str):
        tail = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts[2:])
        return f"{parts[1]} {tail}" if tail else parts[1]
    if len(parts) >= 2 and parts[0] in ("rules", "faq") and isinstance(parts[1], int):
        items = data.get(parts[0])
        name = None
        if isinstance(items, list) and parts[1] < len(items) and isinstance(items[parts[1]], dict):
            name = items[parts[1]].get("name" if parts[0] == "rules" else "id")
        head = f"{parts[0]}[{parts[1]}]" + (f" {name!r}" if isinstance(name, str) else "")
        tail = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts[2:])
        return f"{head} {tail}" if tail else head
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def schema_message(error: Mapping) -> str:
    """A pydantic error as the operator reads it."""
    if error["type"] == "extra_forbidden":
        return "unknown field (every option is listed in rules.example.toml)"
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    return error["msg"]


@dataclass(frozen=True)
class Rule:
    """A keyword or pattern rule: when it applies, and what it answers."""

    name: str
    keywords: tuple[re.Pattern[str], ...]  # any of its whole words, one pattern (or none)
    pattern: Pattern | None  # the operator's own, bounded (patterns.py)
    reply: ReplySpec
    channels: frozenset[str] | None = None  # None: every channel
    when: str = "always"  # always | open (business hours) | closed (after hours)
    bypass_cooldown: bool = False

    def matches(self, body: str, channel: str, is_open: bool,
                budget: Budget | None = None) -> bool:
        if self.channels is not None and channel not in self.channels:
            return False
        if self.when != "always" and is_open != (self.when == "open"):
            return False
        if any(keyword.search(body) for keyword in self.keywords):
            return True
        return self.pattern is not None and self.pattern.search(body, budget)


@dataclass(frozen=True)
class Rules:
    """A checked rules file, ready for `decide`."""

    source: str
    rules: tuple[Rule, ...] = ()
    greeting: ReplySpec | None = None
    after_hours: ReplySpec | None = None
    fallback: ReplySpec | None = None
    hours: BusinessHours | None = None
    compliance_keywords: frozenset[str] = frozenset()  # added to the standard ones
    agent_patterns: tuple[Pattern, ...] = ()  # authors matching one are agents
    whatsapp_template: Variant | None = None  # the file-wide approved template
    constants: Mapping[str, object] = field(default_factory=dict)
    knowledge: KnowledgeBase | None = None  # [[faq]] and the `knowledge` file's entries
    on_decline: str = "fallback"  # fallback | handoff: what an unanswered question gets
    # Every path the file names (media, media_dirs, knowledge), as written and made
    # absolute, with where its links led when it was read.
    located: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    # Authors already judged by agent_patterns (a customer writes many messages, and each
    # bounded search costs ~5 us of clock reads): only answers the searches finished.
    _agents: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def match(self, body: str, channel: str, is_open: bool) -> Rule | None:
        """The first rule that applies to a message; rules see its first MAX_TEXT characters."""
        text, budget = body[:MAX_TEXT], Budget()
        return next((rule for rule in self.rules
                     if rule.matches(text, channel, is_open, budget)), None)

    def is_agent(self, author: str) -> bool:
        if not self.agent_patterns:
            return False
        known = self._agents.get(author)
        if known is not None:
            return known
        text, budget = author[:MAX_TEXT], Budget()
        finished = True
        for pattern in self.agent_patterns:
            found = pattern.find(text, budget)
            if found:
                return self._remember(author, True)
            finished = finished and found is not None
        return self._remember(author, False) if finished else False

    def _remember(self, author: str, agent: bool) -> bool:
        if len(self._agents) >= AUTHORS_REMEMBERED:
            self._agents.clear()  # rarely: then the next ones are judged again
        self._agents[author] = agent
        return agent

    def media_sources(self) -> list[str]:
        """Every file and URL the replies send as media, once each, in file order."""
        specs = [rule.reply for rule in self.rules]
        specs += [entry.answer for entry in self.knowledge.entries] if self.knowledge else []
        specs += [s for s in (self.greeting, self.after_hours, self.fallback) if s]
        variants = [v for spec in specs for v in (spec.default, *spec.per_channel.values())]
        return list(dict.fromkeys(v.media for v in variants if getattr(v, "media", None)))

    def summary(self) -> list[str]:
        """What the file says, one line per item, for `rules check`."""
        lines = [f"{len(self.rules)} rule(s): {', '.join(r.name for r in self.rules) or '-'}"]
        for name in (GREETING, AFTER_HOURS, FALLBACK):
            lines.append(f"{name}: {'yes' if getattr(self, name) else 'no'}")
        lines.append(f"hours: {self.hours.describe() if self.hours else 'always open'}")
        if self.compliance_keywords:
            lines.append(f"extra compliance keywords: {', '.join(sorted(self.compliance_keywords))}")
        if self.agent_patterns:
            lines.append(f"agent patterns: {', '.join(p.source for p in self.agent_patterns)}")
        lines.append(f"WhatsApp template: {self.whatsapp_template.content_sid if self.whatsapp_template else 'none'}")
        lines.append(f"media: {', '.join(self.media_sources()) or 'none'}")
        if self.knowledge:
            lines.append(f"FAQ: {len(self.knowledge)} entries, "
                         f"{sum(len(e.questions) for e in self.knowledge.entries)} phrasings; "
                         f"unanswered questions get the {self.on_decline}")
        return lines
