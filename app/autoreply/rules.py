"""The rules file: read with tomllib, checked by pydantic, compiled into immutable Rules.

    load_rules(path) -> Rules        parse_rules(text, source) -> Rules

Every problem in a file is collected first; then one `RulesError` lists them all, one per
line, each naming the file, the rule (its index and name) and the field:

    rules.toml: rules[2] 'hours' .pattern: invalid regular expression '(': ...
    rules.toml: hours.timezone: unknown time zone 'Europe/Berlni' (...)

so a broken file is fixed in one round, and the server refuses to start with one. The
format, every option commented, is rules.example.toml.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from ..knowledge import Entry, sources
from ..twilio import media
from .hours import WEEKDAYS, BusinessHours, HolidayCalendar, parse_span
from .names import AFTER_HOURS, FALLBACK, GREETING  # noqa: F401 - importable from here too
from .patterns import MAX_TEXT, Budget, Pattern
from .schema import CHANNELS, FaqSchema, RulesSchema, TemplateRef, VariantSchema
from .templates import (
    PLACEHOLDERS,
    SAMPLE_AT,
    SMS,
    SMS_MAX_CHARS,
    ReplySpec,
    Variant,
    check_renders,
    compile_text,
    sample_context,
)

_WORDS = re.compile(r"\w+")  # two questions with the same words are one question
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


@dataclass(frozen=True)
class Rule:
    """A keyword or pattern rule: when it applies, and what it answers."""

    name: str
    keywords: tuple[re.Pattern[str], ...]  # whole words: escaped, so linear on any text
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

    def match(self, body: str, channel: str, is_open: bool) -> Rule | None:
        """The first rule that applies to a message; rules see its first MAX_TEXT characters."""
        text, budget = body[:MAX_TEXT], Budget()
        return next((rule for rule in self.rules
                     if rule.matches(text, channel, is_open, budget)), None)

    # Authors already judged by agent_patterns (a customer writes many messages, and each
    # bounded search costs ~5 us of clock reads): only answers the searches finished.
    _agents: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

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


def load_rules(path: str | Path) -> Rules:
    """Read, check and compile a rules file, or raise RulesError naming every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a BOM, as Notepad saves one
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(source, [f"cannot read the file: {exc}"]) from None
    return parse_rules(text, source)


def parse_rules(text: str, source: str = "<rules>") -> Rules:
    """Check and compile a rules file's TOML text; `source` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(source, [f"not valid TOML: {exc}"]) from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise RulesError(source, ["not valid TOML: nested too deeply"]) from None
    try:
        schema = RulesSchema.model_validate(data)
    except ValidationError as exc:
        raise RulesError(source, [
            f"{_where(error['loc'], data)}: {_message(error)}" for error in exc.errors()
        ]) from None
    return _Compiler(source, data).compile(schema)


class _Compiler:
    """Turn a validated schema into Rules, collecting the cross-field and template problems."""

    def __init__(self, source: str, data: dict):
        self.source = source
        self.data = data
        self.problems: list[str] = []
        self.constants: dict[str, object] = {}
        self.names: set[str] = set()
        self.next_open_sample = "Monday 07 January at 09:00 UTC"
        # Media paths are relative to the rules file's folder (the working directory for
        # text that came from no file), and must be inside it or one of media_dirs.
        self.folder = (Path(source).parent if Path(source).is_file() else Path.cwd()).resolve()
        self.media_dirs: list[Path] = [self.folder]

    def problem(self, loc: tuple, message: str) -> None:
        self.problems.append(f"{_where(loc, self.data)}: {message}")

    def locate(self, name: str, loc: tuple) -> Path | None:
        """`name` from the rules file's folder, `~` expanded, links followed; None (and a
        problem naming `loc`) when no such path can be (an unknown ~user, a NUL byte)."""
        try:
            return (self.folder / Path(name).expanduser()).resolve()
        except (RuntimeError, ValueError, OSError) as exc:
            self.problem(loc, f"cannot use the path {name!r}: {exc}")
            return None

    def compile(self, schema: RulesSchema) -> Rules:
        for name in schema.constants:
            if name in PLACEHOLDERS:
                self.problem(("constants", name), f"{name!r} is a placeholder's name")
        self.constants = dict(schema.constants)
        for index, name in enumerate(schema.media_dirs):
            folder = self.locate(name, ("media_dirs", index))
            if folder is None:
                continue
            if not folder.is_dir():
                self.problem(("media_dirs", index), f"no such folder {folder}")
            self.media_dirs.append(folder)
        hours = self.hours(schema) if schema.hours else None
        if hours:
            self.next_open_sample = hours.format(SAMPLE_AT)
        if schema.after_hours and not hours:
            self.problem(("after_hours",), "an after-hours reply needs an [hours] table")
        rules = tuple(self.rule(index, rule, hours) for index, rule in enumerate(schema.rules))
        compiled = Rules(
            source=self.source,
            rules=rules,
            greeting=self.reply(schema.greeting, ("greeting",)),
            after_hours=self.reply(schema.after_hours, ("after_hours",)),
            fallback=self.reply(schema.fallback, ("fallback",)),
            hours=hours,
            compliance_keywords=frozenset(k.upper() for k in schema.compliance_keywords),
            agent_patterns=tuple(
                Pattern(p, _where(("agent_patterns", i), self.data))
                for i, p in enumerate(schema.agent_patterns)),
            whatsapp_template=self.template(schema.whatsapp_template, ("whatsapp_template",)),
            constants=MappingProxyType(self.constants),
            on_decline=schema.on_decline,
        )
        entries = self.faq(schema)
        if self.problems:
            raise RulesError(self.source, self.problems)
        if entries:  # numpy, bm25s and the embedding only for a file with an FAQ
            from ..knowledge import KnowledgeBase

            compiled = replace(compiled, knowledge=KnowledgeBase(entries, schema.faq_model))
        if self.problems:
            raise RulesError(self.source, self.problems)
        return compiled

    def faq(self, schema: RulesSchema) -> tuple[Entry, ...]:
        """The [[faq]] tables' entries, then the `knowledge` file's, each checked."""
        entries = [self.entry(spec, ("faq", index)) for index, spec in enumerate(schema.faq)]
        path = self.locate(schema.knowledge, ("knowledge",)) if schema.knowledge else None
        if path is not None:
            try:
                found = sources.read(path)
            except sources.SourceError as exc:
                self.problem(("knowledge",), str(exc))
                found = []
            for raw in found:
                where = f"knowledge {path.name} entry {raw.get('id')!r}"
                try:
                    spec = FaqSchema.model_validate(raw)
                except ValidationError as exc:
                    self.problems += [f"{where} {_where(e['loc'], {})}: {_message(e)}"
                                      for e in exc.errors()]
                    continue
                entries.append(self.entry(spec, ("knowledge", where)))
        seen: set[str] = set()
        asked: dict[str, str] = {}  # each question, as its words, and the entry it asks
        for entry in entries:
            if entry.id in seen:
                self.problem(("faq",), f"two entries have the id {entry.id!r}")
            seen.add(entry.id)
            for question in entry.questions:
                other = asked.setdefault(" ".join(_WORDS.findall(question.casefold())), entry.id)
                if other != entry.id:  # the bot could only ever ask which one is meant
                    self.problem(("faq",), f"entries {other!r} and {entry.id!r} both have the "
                                 f"question {question!r}: keep it in one of them")
        return tuple(entries)

    def entry(self, spec: FaqSchema, loc: tuple) -> Entry:
        channels = frozenset(spec.channels) if spec.channels is not None else None
        return Entry(
            id=spec.id, questions=tuple(spec.questions),
            answer=self.reply(spec.answer, loc + ("answer",), channels or CHANNELS),
            keywords=tuple(re.compile(_keyword_pattern(k), re.IGNORECASE)
                           for k in spec.keywords),
            channels=channels)

    def hours(self, schema: RulesSchema) -> BusinessHours | None:
        spec = schema.hours
        week = tuple(tuple(parse_span(s) for s in getattr(spec, day)) for day in WEEKDAYS)
        if not any(week):
            self.problem(("hours",), "no opening hours on any weekday")
        return BusinessHours(
            zone=ZoneInfo(spec.timezone), week=week, dates_closed=frozenset(spec.holidays),
            calendar=HolidayCalendar(spec.country, spec.subdivision) if spec.country else None,
            next_open_format=spec.next_open_format)

    def rule(self, index: int, spec, hours: BusinessHours | None) -> Rule:
        loc = ("rules", index)
        if spec.name in (GREETING, AFTER_HOURS, FALLBACK):
            self.problem(loc + ("name",), f"{spec.name!r} is reserved for the [{spec.name}] table")
        if spec.name in self.names:
            self.problem(loc + ("name",), f"another rule is already named {spec.name!r}")
        self.names.add(spec.name)
        if spec.when != "always" and not hours:
            self.problem(loc + ("when",), f"when = {spec.when!r} needs an [hours] table")
        flags = 0 if spec.case_sensitive else re.IGNORECASE
        keywords = tuple(re.compile(_keyword_pattern(k), flags) for k in spec.keywords)
        pattern = None
        if spec.pattern is not None:
            pattern = Pattern(spec.pattern, _where(loc + ("pattern",), self.data),
                              ignore_case=not spec.case_sensitive)
        channels = frozenset(spec.channels) if spec.channels is not None else None
        return Rule(
            name=spec.name, keywords=keywords, pattern=pattern, channels=channels, when=spec.when,
            bypass_cooldown=spec.bypass_cooldown,
            reply=self.reply(spec, loc, channels or CHANNELS))

    def reply(self, spec, loc: tuple, channels: frozenset[str] = CHANNELS) -> ReplySpec | None:
        """`channels`: where the reply can go (a rule's channels, else all of them)."""
        if spec is None:
            return None
        return ReplySpec(
            default=self.variant(spec, loc, channels - spec.per_channel.keys()),
            per_channel=MappingProxyType({
                name: self.variant(variant, loc + ("per_channel", name), {name} & channels,
                                   sample=name)
                for name, variant in spec.per_channel.items()}),
            whatsapp_template=self.template(spec.whatsapp_template, loc + ("whatsapp_template",)))

    def template(self, spec: TemplateRef | None, loc: tuple) -> Variant | None:
        return self.variant(spec, loc, {"WHATSAPP"}) if spec is not None else None

    def variant(self, spec: VariantSchema | TemplateRef, loc: tuple, goes_to,
                sample: str | None = None) -> Variant:
        """`goes_to`: the channels this variant is sent on. Its texts render once with
        sample values, on SMS when it can go there (and then must fit an SMS)."""
        sample = SMS if SMS in goes_to else sample or min(goes_to, default=SMS)
        context = sample_context(sample, self.next_open_sample)
        text = getattr(spec, "text", None)
        compiled_text = None
        if text is not None:
            compiled_text = self.text(text, loc + ("text",), context,
                                      SMS_MAX_CHARS if SMS in goes_to else None)
        variables = tuple(
            (name, self.text(value, loc + ("content_variables", name), context))
            for name, value in spec.content_variables.items())
        variant = Variant(text=compiled_text, content_sid=spec.content_sid,
                          content_variables=tuple((n, t) for n, t in variables if t is not None))
        source = getattr(spec, "media", None)
        if source is None:
            return variant
        if "://" not in source:  # a path; a URL (or a bad one) stays as written
            located = self.locate(source, loc + ("media",))  # links followed
            if located is None:
                return variant
            source = str(located)
        problem = self.outside(source) or media.check_source(source)
        if problem:
            self.problem(loc + ("media",), problem)
        return MediaVariant(**{f.name: getattr(variant, f.name) for f in fields(variant)},
                            media=source)

    def outside(self, source: str) -> str | None:
        """Why a file may not be sent from where it is (None: it may, or it is a URL)."""
        if "://" in source or any(Path(source).is_relative_to(d) for d in self.media_dirs):
            return None
        return (f"{source} is outside the rules file's folder ({self.folder}); list its "
                "folder in media_dirs to send it")

    def text(self, source: str, loc: tuple, context: dict, max_chars: int | None = None):
        try:
            compiled = compile_text(source, self.constants)
            rendered = check_renders(compiled, context)
        except ValueError as exc:
            self.problem(loc, str(exc))
            return None
        if max_chars is not None and len(rendered) > max_chars:
            self.problem(loc, f"template renders {len(rendered):,} characters with sample "
                              f"values; SMS takes at most {max_chars:,} (Twilio error 21617)")
        return compiled


def _keyword_pattern(keyword: str) -> str:
    """A keyword or phrase as a whole-word pattern; any run of spaces matches any other."""
    return r"(?<!\w)" + r"\s+".join(re.escape(word) for word in keyword.split()) + r"(?!\w)"


def _where(loc: tuple, data: dict) -> str:
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


def _message(error: Mapping) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (every option is listed in rules.example.toml)"
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    return error["msg"]
