"""Reading a rules file: tomllib, then pydantic's schema, then every cross-field and
template check, compiled into immutable Rules (rules.py).

    load_rules(path) -> Rules        parse_rules(text, source) -> Rules

Every problem in a file is collected first; then one `RulesError` lists them all, one per
line, each naming the file, the rule (its index and name) and the field:

    rules.toml: rules[2] 'hours' .pattern: invalid regular expression '(': ...
    rules.toml: hours.timezone: unknown time zone 'Europe/Berlni' (...)

so a broken file is fixed in one round, and the server refuses to start with one. The
format, every option commented, is rules.example.toml.
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import fields, replace
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from ..knowledge import Entry, sources
from ..twilio import media
from .hours import WEEKDAYS, BusinessHours, HolidayCalendar, parse_span
from .names import AFTER_HOURS, FALLBACK, GREETING
from .patterns import Pattern
from .rules import MediaVariant, Rule, Rules, RulesError, place, schema_message
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

log = logging.getLogger(__name__)
_WORDS = re.compile(r"\w+")  # two questions with the same words are one question


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
            f"{place(error['loc'], data)}: {schema_message(error)}" for error in exc.errors()
        ]) from None
    try:
        return _Compiler(source, data).compile(schema)
    except RulesError:
        raise
    except RecursionError:  # a pattern of thousands of nested groups, say
        raise RulesError(source, ["nested too deeply to be checked"]) from None
    except Exception as exc:  # noqa: BLE001 - a check that missed a mistake (a defect):
        # still a refusal naming the file, never a traceback nor a halted server.
        log.debug("checking %s failed", source, exc_info=True)
        raise RulesError(source, [
            f"cannot be used: {type(exc).__name__}: {exc} (the check missed what is "
            "wrong here: please report it)"]) from None


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
        # Each path as written (made absolute) and where its links led, for a worker
        # deciding whether the master's rules still mean the same files (preload.py).
        self.located: list[tuple[str, str]] = []

    def problem(self, loc: tuple, message: str) -> None:
        self.problems.append(f"{place(loc, self.data)}: {message}")

    def locate(self, name: str, loc: tuple) -> Path | None:
        """`name` from the rules file's folder, `~` expanded, links followed; None (and a
        problem naming `loc`) when no such path can be (an unknown ~user, a NUL byte)."""
        try:
            given = self.folder / Path(name).expanduser()
            found = given.resolve()
        except (RuntimeError, ValueError, OSError) as exc:
            self.problem(loc, f"cannot use the path {name!r}: {exc}")
            return None
        self.located.append((str(given), str(found)))
        return found

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
                Pattern(p, place(("agent_patterns", i), self.data))
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
        return replace(compiled, located=tuple(self.located))

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
                    self.problems += [f"{where} {place(e['loc'], {})}: {schema_message(e)}"
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
            keywords=tuple(re.compile(_any_keyword([k]), re.IGNORECASE)
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
        # The rule's keywords as one pattern: any of them, in one search of the message.
        keywords = (re.compile(_any_keyword(spec.keywords), flags),) if spec.keywords else ()
        pattern = None
        if spec.pattern is not None:
            pattern = Pattern(spec.pattern, place(loc + ("pattern",), self.data),
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


def _any_keyword(keywords) -> str:
    """Any of the keywords or phrases, each as a whole word, any run of spaces matching any
    other (a rule's in one search: the same matches, in a third of the time for three)."""
    phrases = "|".join(r"\s+".join(re.escape(word) for word in keyword.split())
                       for keyword in keywords)
    return r"(?<!\w)(?:" + phrases + r")(?!\w)"
