"""Reply templates: bounded in work and size, at load and in a decision; SMS's 1,600.

CPU time is this thread's (`time.thread_time()`), so a loaded machine does not make the
bounds flaky: they are far above what the bounded code needs and far below what the
unbounded code took (over 60 s for the nested loops).
"""

from __future__ import annotations

import logging
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.autoreply import Reason, RulesError, decide, parse_rules
from app.autoreply.sandbox import MAX_CHARS, MAX_STEPS
from app.autoreply.templates import SMS_MAX_CHARS
from tests.support.decisions import NOW, message, policy, state
from tests.support.webhooks import message_added, post_event

SAMPLE_CUSTOMER = "+15558675310"  # templates.sample_context's customer
NESTED_LOOPS = ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}"
                "{% endfor %}Hi")


def fallback(text: str, extra: str = "") -> str:
    return f"[fallback]\ntext = '''{text}'''\n{extra}"


def load_problem(text: str) -> str:
    """The one problem a rules file has, loaded within a bounded CPU time."""
    start = time.thread_time()
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules.toml")
    assert time.thread_time() - start < 5.0
    [problem] = caught.value.problems
    return problem


# -- SMS's 1,600 characters --------------------------------------------------------------

LONG = "x" * (SMS_MAX_CHARS + 1)


@pytest.mark.parametrize(("text", "where"), [
    pytest.param(fallback(LONG), "fallback.text", id="fallback"),
    pytest.param(f'[[rules]]\nname = "hi"\nkeywords = ["hi"]\ntext = "{LONG}"\n',
                 "rules[0] 'hi' .text", id="rule on every channel"),
    pytest.param(f'[[rules]]\nname = "hi"\nkeywords = ["hi"]\nchannels = ["CHAT", "SMS"]\n'
                 f'text = "{LONG}"\n', "rules[0] 'hi' .text", id="rule on chat and SMS"),
    pytest.param(fallback("Hi") + f'[fallback.per_channel.SMS]\ntext = "{LONG}"\n',
                 "fallback.per_channel.SMS.text", id="SMS variant"),
    pytest.param(fallback("{% if channel == 'SMS' %}" + LONG + "{% else %}Hi{% endif %}"),
                 "fallback.text", id="long on SMS only"),
])
def test_a_reply_too_long_for_sms_is_refused_where_it_can_go_to_sms(text, where):
    """Twilio refuses an SMS body over 1,600 characters (21617): the file does not load."""
    assert load_problem(text) == (
        f"{where}: template renders 1,601 characters with sample values; SMS takes at "
        "most 1,600 (Twilio error 21617)")


@pytest.mark.parametrize("text", [
    pytest.param(f'[[rules]]\nname = "hi"\nkeywords = ["hi"]\nchannels = ["WHATSAPP"]\n'
                 f'text = "{LONG}"\n', id="rule restricted to WhatsApp"),
    pytest.param(fallback(LONG) + '[fallback.per_channel.SMS]\ntext = "Hi"\n',
                 id="default with its own SMS variant"),
    pytest.param(fallback("Hi") + f'[fallback.per_channel.WHATSAPP]\ntext = "{LONG}"\n',
                 id="WhatsApp variant"),
    pytest.param(fallback("x" * SMS_MAX_CHARS), id="exactly 1,600"),
])
def test_a_long_reply_that_never_goes_to_sms_loads(text):
    parse_rules(text, "rules.toml")


def test_a_reply_over_1600_on_sms_at_run_time_is_not_sent():
    """Long only for real customers (the sample is short): on SMS the decision is
    TEMPLATE_ERROR, not a reply Twilio would refuse; on WhatsApp it goes out."""
    rules = policy(fallback(f"{{% if customer == '{SAMPLE_CUSTOMER}' %}}Hi{{% else %}}"
                            "{{ 'x' * 2000 }}{% endif %}"))
    sms = decide(message("hello", author="+15550001111"), state(), rules, NOW)
    assert sms.reason is Reason.TEMPLATE_ERROR
    assert "2,000 characters; SMS takes at most 1,600" in sms.detail
    whatsapp = decide(message("hello", author="whatsapp:+15550001111", channel="WHATSAPP"),
                      state(), rules, NOW)
    assert whatsapp.reason is Reason.REPLY and len(whatsapp.reply.body) == 2000


# -- size and work, at load ---------------------------------------------------------------

@pytest.mark.parametrize(("template", "message"), [
    ("{{ 'x' * 10**8 }}", "'*' builds a value of 100,000,000 characters or items (at most 4,096)"),
    ("{{ [0] * 10**8 }}", "'*' builds a value of 100,000,000 characters or items"),
    ("{{ 10 ** 100000 }}", "'**' builds a number of over 4,096 digits"),
    ("{{ '%100000000d' % 1 }}", "'%' width 100000000 builds a value of 100,000,000"),
    ("{{ '%*d' % (100000000, 1) }}", "'%': a width or precision must be a literal number"),
    ("{{ '{:>100000000}'.format(1) }}", "format width 100000000 builds a value"),
    ("{{ '{:>{w}}'.format(1, w=100000000) }}", "a width or precision must be a literal"),
    ("{{ '%100000000d'|format(1) }}", "format width 100000000 builds a value"),
    ("{{ 'x'.ljust(100000000) }}", "ljust(100000000) builds a value of 100,000,000"),
    ("{{ 'x'|center(100000000) }}", "center(100000000) builds a value of 100,000,000"),
    ("{{ 'a\nb'|indent(100000000) }}", "indent(100000000) builds a value of 200,000,000"),
    ("{{ ('x' * 4000).replace('', 'y' * 4000) }}", "replace builds a value of 16,008,000"),
    ("{{ ('x' * 4000)|replace('', 'y' * 4000) }}", "replace builds a value of 16,008,000"),
    ("{{ range(99999)|join('x' * 4000) }}", "join builds a value of 4,097 characters or items"),
    ("{{ ('x' * 4000).join(['a'] * 4000) }}", "join builds a value of 16,004,000"),
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}{{ ns.s }}", "'~' builds a value of 8,192 characters or items"),
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
     "{% endfor %}{{ ns.s }}", "'+' builds a value of 8,192 characters or items"),
    ("{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}"
     "{% endfor %}{{ ns.n }}", "'*' builds a number of over 4,096 digits"),
    ("{% macro twice(s, n) %}{{ twice(s ~ s, n - 1) if n else s }}{% endmacro %}"
     "{{ twice('x', 40) }}", "'~' builds a value of 8,192 characters or items"),
    ("{% set items = [] %}{% for i in range(40) %}{{ items.extend(items) }}{% endfor %}Hi",
     "access to attribute 'extend' of 'list' object is unsafe"),
    (NESTED_LOOPS, f"takes more than {MAX_STEPS:,} steps to render"),
    ("{{ lipsum(1, min=10**8, max=10**8 + 1) }}", f"takes more than {MAX_STEPS:,} steps"),
    ("{% for i in range(50) %}{{ 'x' * 100 }}{% endfor %}",
     f"renders more than {MAX_CHARS:,} characters"),
])
def test_a_template_past_its_bounds_stops_the_load_promptly(template, message):
    """Each way to build a huge value or run for ever is refused within seconds (the
    nested loops took over 60 s, `'x' * 10**8` 100 MB), naming the field."""
    problem = load_problem(fallback(template))
    assert problem.startswith("fallback.text: template "), problem
    assert message in problem, problem


def test_templates_within_the_bounds_render_as_before():
    """Loops, filters, formats and namespaces of ordinary size still work."""
    template = ("{% set ns = namespace(n=0) %}{% for i in range(100) %}{% set ns.n = ns.n + i %}"
                "{% endfor %}{{ ns.n }} {{ '%05d'|format(42) }} {{ '{:>6}'.format('ab') }} "
                "{{ ['a', 'b']|join(', ') }} {{ 'ab'|center(6) }}|{{ 'x' * 3 }} "
                "{{ (next_open_at.strftime('%H:%M')) ~ '!' }} {{ 2 ** 10 }}")
    rules = policy(fallback(template))
    body = decide(message("hello"), state(), rules, NOW).reply.body
    assert body == "4950 00042     ab a, b   ab  |xxx 10:00! 1024"


# -- at run time: a decision, and a webhook ----------------------------------------------

RUNAWAY_FOR_REAL_CUSTOMERS = fallback(
    f"{{% if customer == '{SAMPLE_CUSTOMER}' %}}Hi{{% else %}}{NESTED_LOOPS}{{% endif %}}")


def test_a_template_past_its_bounds_at_run_time_is_a_logged_template_error(caplog):
    """The sample customer gets a short reply, so the file loads; a real customer's
    message would run the loops: the decision stops within its steps, is TEMPLATE_ERROR
    (no reply) and is logged."""
    rules = policy(RUNAWAY_FOR_REAL_CUSTOMERS)
    start = time.thread_time()
    with caplog.at_level(logging.WARNING):
        decision = decide(message("hello", author="+15550001111"), state(), rules, NOW)
    assert time.thread_time() - start < 5.0
    assert decision.reason is Reason.TEMPLATE_ERROR and decision.reply is None
    assert f"takes more than {MAX_STEPS:,} steps" in decision.detail
    assert any("template" in r.getMessage() and "fallback" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)


def test_a_webhook_whose_template_runs_away_is_answered_200(make_app, tmp_path):
    """Through the webhook: 200 at once, the decision recorded, no reply queued."""
    path = tmp_path / "rules.toml"
    path.write_text(RUNAWAY_FOR_REAL_CUSTOMERS)
    app = make_app(RESPONDER_RULES=path)
    start = time.thread_time()
    response = post_event(app.test_client(), message_added(body="hello", author="+15550001111"))
    assert time.thread_time() - start < 5.0
    assert response.status_code == 200
    assert response.headers["X-Webhook-Outcome"].startswith(
        "ignored: the reply's template failed")


@pytest.mark.parametrize("source, fixed", [
    ("Thanks, {{ company }}!", True), ("  Call {{ phone }}: {{ n }} {{ flag }}  ", True),
    ("Hi {{ customer }}, {{ company }}", False), ("{{ company | upper }}", False),
    ("{% if flag %}{{ company }}{% endif %}", False), ("{{ [company, phone] | random }}", False),
])
def test_a_template_of_constants_alone_is_rendered_once_at_load(source, fixed):
    """Its text is the same as rendering it per message (what it costs then: a traced run
    of Jinja's code); anything with a placeholder, a filter or a statement stays per
    message ("| random" must not be frozen)."""
    from dataclasses import replace

    from app.autoreply.templates import compile_text

    constants = {"company": "Acme", "phone": "+1 555 0100", "n": 3, "flag": True}
    text = compile_text(source, constants)
    assert (text.pieces is not None and len(text.pieces) == 1) is fixed  # written at load
    context = {"customer": "+15558675310", "channel": "SMS", "next_open": "Monday",
               "next_open_at": None}
    if fixed:
        assert text.render(context) == replace(text, pieces=None).render(context)


_NAMES = ["customer", "channel", "next_open", "next_open_at", "company", "count"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_NAMES),
                          st.text(st.characters(blacklist_characters="{}%#",
                                                blacklist_categories=("Cs",)), max_size=12)),
                min_size=1, max_size=8),
       st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_a_template_of_text_and_names_renders_as_jinja_renders_it(parts, customer):
    """Text and `{{ name }}` only ("back {{ next_open }}") are joined per message instead
    of Jinja's traced run: the same text, for any text and any customer."""
    from datetime import UTC, datetime

    from app.autoreply import sandbox
    from app.autoreply.templates import compile_text

    source = "".join("{{ " + p + " }}" if p in _NAMES else p for p in parts)
    text = compile_text(source, {"company": "ACME", "count": 3})
    context = {"customer": customer, "channel": "WHATSAPP", "next_open": "Monday 09:00",
               "next_open_at": datetime(2030, 1, 7, 9, tzinfo=UTC)}
    if text.template is None:
        return  # no name at all: a plain text
    assert text.pieces is not None
    assert text.render(context) == sandbox.render(text.template, context).strip()


def test_a_joined_template_keeps_the_size_bound():
    from app.autoreply.templates import TemplateLimit, compile_text

    text = compile_text("Hello {{ customer }}", {})
    assert text.pieces is not None
    with pytest.raises(TemplateLimit):
        text.render({"customer": "x" * (MAX_CHARS + 1)})
