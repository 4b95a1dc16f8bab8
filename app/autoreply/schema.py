"""The rules file's shape, as pydantic models: what is allowed where, checked field by field.

Only the checks one field can make live here (a regular expression compiles, a time zone
exists, a time range is a range, a channel is one we know); checks across fields and the
templates are made by `compiler.py` while compiling. Every model forbids unknown fields, so a
misspelt option is an error instead of a silently ignored line. The format itself, with
every option, is documented in rules.example.toml.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from annotated_types import Len
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    model_validator,
)
from pydantic import StringConstraints as Text

from ..knowledge.entries import ID_PATTERN as FAQ_ID
from . import patterns
from .hours import HolidayCalendar, parse_span
from .names import CHANNELS  # the Source values a reply can be tailored to

_CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _regex(text: str) -> str:
    if not text:
        raise ValueError("an empty pattern matches every message; leave it out")
    patterns.check(text)
    return text


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)") from None
    return name


def _span(text: str) -> str:
    parse_span(text)
    return text


def _channel(name: str) -> str:
    upper = name.strip().upper()
    if upper not in CHANNELS:
        raise ValueError(f"unknown channel {name!r} (one of {', '.join(sorted(CHANNELS))})")
    return upper


def _content_sid(sid: str) -> str:
    if not _CONTENT_SID.fullmatch(sid):
        raise ValueError(f"expected a Content SID (HX and 32 hex characters), got {sid!r}")
    return sid


def _identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"a constant's name must be a plain identifier, got {name!r}")
    return name


def _scalar(value: object) -> object:
    if not isinstance(value, str | int | float | bool):
        raise ValueError(f"a constant is a string, number or boolean, got {value!r}")
    return value


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


NonEmpty = Annotated[str, Text(strip_whitespace=True, min_length=1)]
Code = Annotated[str, Text(strip_whitespace=True, min_length=1, to_upper=True)]
Regex = Annotated[str, AfterValidator(_regex)]
TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
Channel = Annotated[str, AfterValidator(_channel)]
ContentSid = Annotated[str, AfterValidator(_content_sid)]
Spans = Annotated[list[Annotated[str, AfterValidator(_span)]], BeforeValidator(_as_list)]
ConstantName = Annotated[str, AfterValidator(_identifier)]
Constant = Annotated[object, AfterValidator(_scalar)]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TemplateRef(_Schema):
    """An approved Content template: what WhatsApp accepts outside its 24-hour window."""

    content_sid: ContentSid
    content_variables: dict[str, str] = {}


class VariantSchema(_Schema):
    """A reply: a text, or an approved Content template (ContentSid + variables); media
    (a file or an http(s) URL) with the text, or alone.

    Not text and template: Twilio refuses a Body together with ContentVariables (error
    35127), and a template carries its own text and media. Give a text on one channel and
    a template on another with per_channel.
    """

    text: NonEmpty | None = None
    content_sid: ContentSid | None = None
    content_variables: dict[str, str] = {}
    media: NonEmpty | None = None  # checked (size, type) by compiler.py against the file

    @model_validator(mode="after")
    def _something_to_send(self):
        if self.text is not None and self.content_sid is not None or (
                self.text is None and self.content_sid is None and self.media is None):
            raise ValueError("a reply needs either text or a content_sid (not both: Twilio "
                             "refuses a Body with ContentVariables, error 35127), or media")
        if self.content_variables and self.content_sid is None:
            raise ValueError("content_variables needs a content_sid")
        if self.media is not None and self.content_sid is not None:
            raise ValueError("media goes with a text, not a content_sid (an approved "
                             "template carries its own media)")
        return self


class ReplySchema(VariantSchema):
    """A reply with optional variants per channel and a WhatsApp template of its own."""

    per_channel: dict[Channel, VariantSchema] = {}
    whatsapp_template: TemplateRef | None = None


class RuleSchema(ReplySchema):
    name: NonEmpty
    keywords: list[NonEmpty] = []
    pattern: Regex | None = None
    case_sensitive: StrictBool = False
    channels: list[Channel] | None = None
    when: Literal["always", "open", "closed"] = "always"
    bypass_cooldown: StrictBool = False

    @model_validator(mode="after")
    def _matches_something(self):
        if not self.keywords and self.pattern is None:
            raise ValueError("a rule needs keywords, a pattern or both")
        return self


def _faq_id(name: str) -> str:
    if not FAQ_ID.fullmatch(name):
        raise ValueError(f"an FAQ id is 1-60 letters, digits, '-', '_' or '.', got {name!r}")
    return name


def _answer(value: object) -> object:
    return {"text": value} if isinstance(value, str) else value


class FaqSchema(_Schema):
    """A knowledge-base entry: the ways customers ask, and the answer (a reply: a text, or
    a table with text, media, content_sid, per_channel like any rule's)."""

    id: Annotated[str, AfterValidator(_faq_id)]
    questions: Annotated[list[NonEmpty], BeforeValidator(_as_list), Len(min_length=1)]
    answer: Annotated[ReplySchema, BeforeValidator(_answer)]
    keywords: list[NonEmpty] = []  # every one must appear (whole words) for this answer
    channels: Annotated[list[Channel], Len(min_length=1)] | None = None  # [] answers none


class HoursSchema(_Schema):
    timezone: TimeZoneName
    monday: Spans = []
    tuesday: Spans = []
    wednesday: Spans = []
    thursday: Spans = []
    friday: Spans = []
    saturday: Spans = []
    sunday: Spans = []
    holidays: list[date] = []
    country: Code | None = None  # ISO 3166 code: DE, US, ...
    subdivision: Code | None = None  # the `holidays` package's code: BE (Berlin), CA, ...
    next_open_format: NonEmpty = "%A %d %B at %H:%M %Z"

    @model_validator(mode="after")
    def _calendar(self):
        if self.subdivision and not self.country:
            raise ValueError("subdivision needs a country")
        if self.country:
            try:
                HolidayCalendar(self.country, self.subdivision)
            except NotImplementedError as exc:
                raise ValueError(f"unknown holiday calendar: {exc}") from None
        return self


class RulesSchema(_Schema):
    compliance_keywords: list[NonEmpty] = []
    media_dirs: list[NonEmpty] = []  # folders besides the rules file's that media may be in
    agent_patterns: list[Regex] = []
    constants: dict[ConstantName, Constant] = {}
    whatsapp_template: TemplateRef | None = None
    hours: HoursSchema | None = None
    greeting: ReplySchema | None = None
    after_hours: ReplySchema | None = None
    fallback: ReplySchema | None = None
    rules: list[RuleSchema] = []
    faq: list[FaqSchema] = []
    knowledge: NonEmpty | None = None  # a CSV file or a folder of Markdown articles
    # What a question the FAQ cannot answer gets: the fallback (greeting, after hours) as
    # without a knowledge base, or a handoff to an agent.
    on_decline: Literal["fallback", "handoff"] = "fallback"
    # How the FAQ matches (app/knowledge/models.py): a static embedding with BM25, or a
    # small transformer (more right answers, fewer wrong, 5-30 ms of CPU per message).
    faq_model: Literal["static", "sentence"] = "static"
