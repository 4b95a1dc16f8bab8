"""The rules file: what loads, and a broken file per kind of mistake, named by file/rule/field."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.autoreply import RulesError, load_rules, parse_rules
from app.autoreply.schema import (
    HoursSchema,
    ReplySchema,
    RuleSchema,
    RulesSchema,
    TemplateRef,
    VariantSchema,
)
from app.autoreply.templates import sample_context

EXAMPLE = Path(__file__).resolve().parents[2] / "rules.example.toml"
SID = "HX" + "0" * 32
HOURS = '[hours]\ntimezone = "Europe/Berlin"\nmonday = "09:00-17:00"\n'


def rule(body: str, name: str = "hi") -> str:
    return f'[[rules]]\nname = "{name}"\nkeywords = ["hi"]\n{body}\n'


TEXT = 'text = "Hello"'

BROKEN = [
    pytest.param(rule(TEXT) + rule("pattern = '(unclosed'\n" + TEXT, name="hours"),
                 "rules.toml: rules[1] 'hours' .pattern: invalid regular expression '(unclosed'",
                 id="bad regex"),
    pytest.param(rule('text = "Hi {{ custmer }}"'),
                 "rules.toml: rules[0] 'hi' .text: unknown placeholder custmer (known: channel, "
                 "customer, next_open, next_open_at)", id="unknown placeholder"),
    pytest.param(rule('text = "Hi{% if channel == \'X\' %} {{ nope }}{% endif %}"'),
                 "rules.toml: rules[0] 'hi' .text: unknown placeholder nope",
                 id="unknown placeholder in a branch the sample skips"),
    pytest.param(rule(f'content_sid = "{SID}"\ncontent_variables = {{ 1 = "{{{{ who }}}}" }}'),
                 "rules.toml: rules[0] 'hi' .content_variables.1: unknown placeholder who",
                 id="unknown placeholder in a content variable"),
    pytest.param('[greeting]\ntext = "Hi"\n[greeting.per_channel.WHATSAPP]\ntext = "{{ x }}"',
                 "rules.toml: greeting.per_channel.WHATSAPP.text: unknown placeholder x",
                 id="unknown placeholder in a channel variant"),
    pytest.param(rule('text = "Hi {{ customer "'),
                 "rules.toml: rules[0] 'hi' .text: invalid template:", id="template syntax"),
    pytest.param(rule('text = "Hi {{ customer | shout }}"'),
                 "rules.toml: rules[0] 'hi' .text: invalid template: No filter named 'shout'",
                 id="unknown filter"),
    pytest.param(rule('text = "{{ customer.__class__.__mro__ }}"'),
                 "rules.toml: rules[0] 'hi' .text: template fails with sample values",
                 id="sandbox"),
    pytest.param(rule('text = "{% if channel == \'CHAT\' %}Hi{% endif %}"'),
                 "rules.toml: rules[0] 'hi' .text: template renders to an empty text",
                 id="empty with sample values"),
    pytest.param('[hours]\ntimezone = "Europe/Berlni"\nmonday = "09:00-17:00"',
                 "rules.toml: hours.timezone: unknown time zone 'Europe/Berlni'",
                 id="unknown time zone"),
    pytest.param('[hours]\ntimezone = "Europe/Berlin"\nmonday = ["09:00-12:00", "17:00-13:00"]',
                 "rules.toml: hours.monday[1]: bad time range '17:00-13:00'",
                 id="bad time range"),
    pytest.param('[hours]\ntimezone = "Europe/Berlin"\ntuesday = "9 to 5"',
                 "rules.toml: hours.tuesday[0]: expected a time range like 09:00-17:00",
                 id="not a time range"),
    pytest.param('[hours]\ntimezone = "Europe/Berlin"\nsunday = []',
                 "rules.toml: hours: no opening hours on any weekday", id="never open"),
    pytest.param(HOURS + 'country = "XX"',
                 "rules.toml: hours: unknown holiday calendar: Country XX not available",
                 id="unknown country"),
    pytest.param(HOURS + 'subdivision = "BE"',
                 "rules.toml: hours: subdivision needs a country", id="subdivision alone"),
    pytest.param(HOURS + 'holidays = ["24.12.2026"]',
                 "rules.toml: hours.holidays[0]: Input should be a valid date",
                 id="bad holiday date"),
    pytest.param(rule(TEXT + '\ncolour = "red"'),
                 "rules.toml: rules[0] 'hi' .colour: unknown field", id="unknown rule field"),
    pytest.param('greting = "Hi"', "rules.toml: greting: unknown field", id="unknown top field"),
    pytest.param(HOURS + 'open = "always"', "rules.toml: hours.open: unknown field",
                 id="unknown hours field"),
    pytest.param('[[rules]]\nkeywords = ["x"]\ntext = "Hi"',
                 "rules.toml: rules[0] .name: required field is missing", id="missing name"),
    pytest.param('[[rules]]\nname = "x"\ntext = "Hi"',
                 "rules.toml: rules[0] 'x': a rule needs keywords, a pattern or both",
                 id="matches nothing"),
    pytest.param('[[rules]]\nname = "x"\nkeywords = ["  "]\ntext = "Hi"',
                 "rules.toml: rules[0] 'x' .keywords[0]: String should have at least 1 character",
                 id="blank keyword"),
    pytest.param(rule(""), "rules.toml: rules[0] 'hi': a reply needs either text or a content_sid",
                 id="nothing to send"),
    pytest.param(rule(f'{TEXT}\ncontent_sid = "{SID}"'),
                 "rules.toml: rules[0] 'hi': a reply needs either text or a content_sid (not both",
                 id="text and template"),
    pytest.param(rule(TEXT + '\ncase_sensitive = "yes"'),
                 "rules.toml: rules[0] 'hi' .case_sensitive: Input should be a valid boolean",
                 id="wrong type"),
    pytest.param(rule(TEXT + '\nchannels = ["SMS", "WHATSAP"]'),
                 "rules.toml: rules[0] 'hi' .channels[1]: unknown channel 'WHATSAP'",
                 id="unknown channel"),
    pytest.param(rule(TEXT + '\n[rules.per_channel.TELEX]\ntext = "x"'),
                 "rules.toml: rules[0] 'hi' .per_channel.TELEX: unknown channel 'TELEX'",
                 id="unknown channel variant"),
    pytest.param(rule('content_sid = "HX123"'),
                 "rules.toml: rules[0] 'hi' .content_sid: expected a Content SID", id="bad sid"),
    pytest.param(rule(TEXT + '\ncontent_variables = { 1 = "x" }'),
                 "rules.toml: rules[0] 'hi': content_variables needs a content_sid",
                 id="variables without sid"),
    pytest.param('[whatsapp_template]\ncontent_variables = { 1 = "x" }',
                 "rules.toml: whatsapp_template.content_sid: required field is missing",
                 id="template without sid"),
    pytest.param(rule(TEXT + '\nwhen = "sometimes"'),
                 "rules.toml: rules[0] 'hi' .when: Input should be 'always', 'open' or 'closed'",
                 id="bad when"),
    pytest.param(rule(TEXT + '\nwhen = "open"'),
                 "rules.toml: rules[0] 'hi' .when: when = 'open' needs an [hours] table",
                 id="when without hours"),
    pytest.param('[after_hours]\ntext = "Closed"',
                 "rules.toml: after_hours: an after-hours reply needs an [hours] table",
                 id="after hours without hours"),
    pytest.param(rule(TEXT) + rule(TEXT),
                 "rules.toml: rules[1] 'hi' .name: another rule is already named 'hi'",
                 id="duplicate name"),
    pytest.param(rule(TEXT, name="fallback"),
                 "rules.toml: rules[0] 'fallback' .name: 'fallback' is reserved",
                 id="reserved name"),
    pytest.param('[constants]\ncustomer = "x"',
                 "rules.toml: constants.customer: 'customer' is a placeholder's name",
                 id="constant shadows a placeholder"),
    pytest.param('[constants]\n"my company" = "x"',
                 "rules.toml: constants.my company: a constant's name must be a plain identifier",
                 id="constant name"),
    pytest.param('[constants]\nteam = ["a", "b"]',
                 "rules.toml: constants.team: a constant is a string, number or boolean",
                 id="constant value"),
    pytest.param("agent_patterns = ['[a-']",
                 "rules.toml: agent_patterns[0]: invalid regular expression", id="bad agent pattern"),
    pytest.param('rules = "none"', "rules.toml: rules: Input should be a valid list",
                 id="rules not a list"),
    pytest.param('[greeting\ntext = "Hi"', "rules.toml: not valid TOML:", id="not TOML"),
    pytest.param("a = " + "[" * 5000 + "]" * 5000, "rules.toml: not valid TOML: nested too deeply",
                 id="nested too deeply"),
    pytest.param(rule(TEXT + "\npattern = '" + "(" * 20_000 + "a" + ")" * 20_000 + "'"),
                 "rules.toml: rules[0] 'hi' .pattern: regular expression nested "
                 "too deeply", id="pattern nested too deeply"),  # once a RecursionError
    pytest.param('[hours]\ntimezone = "UTC"\nmonday = "09:00Z-17:00Z"',
                 "rules.toml: hours.monday[0]: times are the wall clock",
                 id="hours with an offset"),  # passed, then every decision failed
]


@pytest.mark.parametrize(("text", "message"), BROKEN)
def test_broken_file(text, message):
    """Each kind of mistake is a RulesError naming the file, the rule and the field."""
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules.toml")
    assert str(caught.value).startswith(message), str(caught.value)
    assert caught.value.source == "rules.toml"


def test_every_problem_at_once():
    """One error lists every problem, one line each, so a file is fixed in one round."""
    text = rule("pattern = '('\n" + TEXT) + '[hours]\ntimezone = "Mars/Base"\nmonday = "9-5"\n'
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules.toml")
    assert len(caught.value.problems) == 3
    lines = str(caught.value).splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "hours.timezone", "hours.monday[0]", "rules[0] 'hi' .pattern"]


def test_load_names_the_path(tmp_path):
    """A file's errors start with its path; a missing file is a RulesError too."""
    path = tmp_path / "broken.toml"
    path.write_text('[hours]\ntimezone = "Nowhere"\nmonday = "09:00-17:00"\n')
    with pytest.raises(RulesError, match=rf"^{path}: hours.timezone: unknown time zone"):
        load_rules(path)
    with pytest.raises(RulesError, match="missing.toml: cannot read the file"):
        load_rules(tmp_path / "missing.toml")


@pytest.mark.parametrize(("text", "expected"), [
    ("", dict(rules=0, hours=False, fallback=False)),
    (rule(TEXT) + '[fallback]\ntext = "ok"', dict(rules=1, hours=False, fallback=True)),
    (HOURS + 'holidays = [2026-12-24, "2026-12-31"]\ncountry = "de"',
     dict(rules=0, hours=True, fallback=False)),
])
def test_minimal_files(text, expected):
    """Every part is optional; TOML dates and ISO strings are both holiday dates."""
    rules = parse_rules(text)
    assert len(rules.rules) == expected["rules"]
    assert (rules.hours is not None) == expected["hours"]
    assert (rules.fallback is not None) == expected["fallback"]


def test_keywords_are_whole_words():
    """A keyword matches whole words anywhere; a phrase matches across any spacing."""
    rules = parse_rules(rule(TEXT).replace('["hi"]', '["hours", "opening times"]'))
    matches = [rules.rules[0].matches(body, "SMS", True) for body in (
        "hours?", "What are your HOURS", "opening   times please", "hourslong", "ophours",
        "opening", "times")]
    assert matches == [True, True, True, False, False, False, False]


def _example_keys(value, found: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(key)
            _example_keys(item, found)
    elif isinstance(value, list):
        for item in value:
            _example_keys(item, found)
    return found


def test_example_covers_every_option():
    """rules.example.toml shows every field of the format."""
    options = set()
    for model in (RulesSchema, HoursSchema, RuleSchema, ReplySchema, VariantSchema, TemplateRef):
        options |= set(model.model_fields)
    used = _example_keys(tomllib.loads(EXAMPLE.read_text()), set())
    assert options - used == set()
    for when in ("always", "open", "closed"):
        assert f'"{when}"' in EXAMPLE.read_text()


def test_example_loads_and_every_template_renders():
    """rules.example.toml loads, and each of its templates renders on every channel."""
    rules = load_rules(EXAMPLE)
    specs = [r.reply for r in rules.rules] + [rules.greeting, rules.after_hours, rules.fallback]
    variants = [rules.whatsapp_template]
    for spec in specs:
        variants += [spec.default, *spec.per_channel.values(), spec.whatsapp_template]
    variants = [v for v in variants if v is not None]
    assert len(variants) == 16
    next_open = rules.hours.format(rules.hours.next_open(datetime(2026, 12, 24, 12, tzinfo=UTC)))
    assert next_open == "Monday 28 December at 09:00 CET"  # Christmas and the weekend closed
    for variant in variants:
        for channel in ("SMS", "WHATSAPP", "CHAT"):
            body, sid, variables = variant.render(sample_context(channel, next_open))
            assert body or sid
            if variables:
                assert all(json.loads(variables).values())


@pytest.mark.parametrize("line, field", [
    ('knowledge = "~nosuchuser1913/faq.csv"\n', "knowledge"),
    ('media_dirs = ["~nosuchuser1913/media"]\n', "media_dirs"),
    ('[[rules]]\nname = "hours"\nkeywords = ["hours"]\ntext = "9-5"\n'
     'media = "~nosuchuser1913/hours.png"\n', "media"),
])
def test_a_path_of_an_unknown_home_is_a_problem_naming_its_field(tmp_path, line, field):
    """`~someone` with no such user: a message naming the field, not a bare
    "Could not determine home directory" from the start-up."""
    path = tmp_path / "rules.toml"
    path.write_text(line)
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert field in str(caught.value) and "~nosuchuser1913" in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.sampled_from("ab .-\u00e9"), min_size=1, max_size=6).filter(str.split),
                min_size=1, max_size=4),
       st.text(st.sampled_from("ab .-\u00e9\nA"), max_size=30))
def test_a_rules_keywords_match_as_one_pattern_what_each_matches_alone(keywords, text):
    """A rule's keywords are searched as one pattern: a message matches it exactly when
    one of them, as a whole word, is in it."""
    import re

    from app.autoreply.compiler import _any_keyword

    alone = any(re.search(_any_keyword([k]), text, re.IGNORECASE) for k in keywords)
    assert bool(re.search(_any_keyword(keywords), text, re.IGNORECASE)) is alone


def test_a_mistake_the_checks_miss_is_still_a_refusal_naming_the_file(monkeypatch):
    """Should a check miss a mistake and compiling raise (as an unquoted comma in a CSV,
    a Z in opening hours and an unreadable media URL once did), the file is refused with
    its name, as any other mistake: a traceback had stopped the start-up, and a running
    server whose worker restarted."""
    from app.autoreply import compiler

    def broken(self, schema):
        raise TypeError("can't compare offset-naive and offset-aware times")

    monkeypatch.setattr(compiler._Compiler, "hours", broken)
    with pytest.raises(RulesError) as caught:
        parse_rules('[hours]\ntimezone = "UTC"\nmonday = "09:00-17:00"', "rules.toml")
    assert str(caught.value) == (
        "rules.toml: cannot be used: TypeError: can't compare offset-naive and offset-aware "
        "times (the check missed what is wrong here: please report it)")
