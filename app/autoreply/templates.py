"""Reply templates: Jinja2, sandboxed, where an unknown name is an error, checked at load.

A rules file is written by people, not attackers, but it is still configuration that
becomes text sent to customers, so it renders in a sandbox (no attribute tricks into
Python internals) bounded in work and size (sandbox.py: a runaway loop or a 100 MB string
fails fast instead of stalling a worker), with `StrictUndefined` (a misspelt placeholder
raises instead of vanishing). Every template is compiled, its names checked against the
placeholders (including inside branches a sample would not take), and rendered once
against sample values when the file loads, so a broken template stops the start-up rather
than a reply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from jinja2 import StrictUndefined, Template, TemplateError, meta, nodes

from . import sandbox
from .names import SMS, SMS_MAX_CHARS  # noqa: F401 - importable from here too
from .sandbox import BoundedEnvironment, TemplateLimit

# What a template may use besides the rules file's [constants]; the decision fills them in.
PLACEHOLDERS = {
    "customer": "the message's author: +15558675310, whatsapp:+15558675310, a chat identity",
    "channel": "the webhook's Source, upper case: SMS, WHATSAPP, SDK, CHAT, ...",
    "next_open": "when the team is back, formatted in the business time zone "
                 "(the current time while open)",
    "next_open_at": "the same moment as a datetime, for your own strftime",
}

_ENV = BoundedEnvironment(
    undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)


SAMPLE_AT = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # a Monday morning


def sample_context(channel: str, next_open: str) -> dict[str, object]:
    """The values every template is rendered with once at load time."""
    return {"customer": "+15558675310", "channel": channel or "SMS",
            "next_open": next_open, "next_open_at": SAMPLE_AT}


@dataclass(frozen=True)
class Text:
    """One compiled template and its source."""

    source: str
    template: Template | None = field(repr=False, compare=False)  # None: a plain text
    # A template of text and bare names only ("back {{ next_open }}", "Call {{ phone }}"):
    # its text with the constants written in, and between the texts the placeholders'
    # names, joined per message as Jinja writes them (str() of each value) without
    # Jinja's traced run (~0.03 ms); None: anything else (a filter, a call, a statement).
    pieces: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    def render(self, context: Mapping[str, object]) -> str:
        """The text, stripped; TemplateLimit past sandbox.py's bounds."""
        if self.template is None:
            return self.source.strip()
        if self.pieces is None or not all(name in context for name in self.pieces[1::2]):
            return sandbox.render(self.template, context).strip()
        text = "".join(piece if i % 2 == 0 else str(context[piece])
                       for i, piece in enumerate(self.pieces))
        if len(text) > sandbox.MAX_CHARS:
            raise TemplateLimit(f"renders more than {sandbox.MAX_CHARS:,} characters")
        return text.strip()


_SYNTAX = ("{{", "{%", "{#")


def compile_text(source: str, constants: Mapping[str, object]) -> Text:
    """Compile a template; ValueError names a syntax error or an unknown placeholder.
    A text without Jinja syntax stays plain: Jinja would compile it to Python for nothing
    (2 ms each: 10 s for an FAQ of 5,000 answers)."""
    if not any(mark in source for mark in _SYNTAX):
        return Text(source, None)
    try:
        parsed = _ENV.parse(source)
        template = _ENV.from_string(parsed, globals=dict(constants))
    except TemplateError as exc:
        raise ValueError(f"invalid template: {exc}") from None
    unknown = meta.find_undeclared_variables(parsed) - PLACEHOLDERS.keys() - constants.keys()
    if unknown:
        known = ", ".join(sorted(PLACEHOLDERS.keys() | constants.keys()))
        raise ValueError(
            f"unknown placeholder {', '.join(sorted(unknown))} (known: {known})")
    return Text(source, template, _pieces(parsed, constants))


def _pieces(parsed: nodes.Template, constants: Mapping[str, object]) -> tuple[str, ...] | None:
    """Text.pieces: texts (constants written in) with a placeholder's name between each
    two; None for a template that is more than text and `{{ name }}`."""
    pieces = [""]
    for node in parsed.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                pieces[-1] += child.data
            elif isinstance(child, nodes.Name) and child.ctx == "load" \
                    and child.name in PLACEHOLDERS:
                pieces += [child.name, ""]
            elif isinstance(child, nodes.Name) and child.ctx == "load" \
                    and child.name in constants:
                pieces[-1] += str(constants[child.name])
            else:
                return None
    return tuple(pieces)


def check_renders(text: Text, context: Mapping[str, object]) -> str:
    """Render once with sample values: the text, or ValueError if it fails, goes past a
    bound or says nothing."""
    try:
        rendered = text.render(context)
    except TemplateLimit as exc:
        raise ValueError(f"template goes past its bounds with sample values: {exc}") from None
    except TemplateError as exc:
        raise ValueError(f"template fails with sample values: {exc}") from None
    except Exception as exc:  # a template can call methods that raise anything
        raise ValueError(f"template fails with sample values: {exc!r}") from None
    if not rendered:
        raise ValueError("template renders to an empty text with sample values")
    return rendered


@dataclass(frozen=True)
class Variant:
    """One concrete reply: a text, or a Content template (ContentSid + variables)."""

    text: Text | None = None
    content_sid: str | None = None
    content_variables: tuple[tuple[str, Text], ...] = ()

    def render(self, context: Mapping[str, object]) -> tuple[str | None, str | None, str | None]:
        """(body, content_sid, content_variables as a JSON object string)."""
        body = self.text.render(context) if self.text else None
        if self.text and not body:
            raise ValueError(f"template {self.text.source!r} rendered an empty text")
        variables = None
        if self.content_variables:
            variables = json.dumps(
                {name: value.render(context) for name, value in self.content_variables})
        return body, self.content_sid, variables

    def templates(self) -> list[tuple[tuple[str, ...], Text]]:
        """Every template in this variant with its field path, for the load-time check."""
        found = [(("text",), self.text)] if self.text else []
        found += [(("content_variables", name), value) for name, value in self.content_variables]
        return found


@dataclass(frozen=True)
class ReplySpec:
    """A reply as configured: a default variant, variants per channel, a WhatsApp template.

    `whatsapp_template` is the approved Content template sent instead when the WhatsApp
    24-hour window has closed; None falls back to the file-wide one.
    """

    default: Variant
    per_channel: Mapping[str, Variant] = field(default_factory=dict)
    whatsapp_template: Variant | None = None
