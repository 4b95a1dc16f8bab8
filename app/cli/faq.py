"""The FAQ from the command line: measure it (eval), grow it (import, gaps), correct it
(wrong)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from ..autoreply.evaluation import evaluate, summary
from ..autoreply.names import CHANNELS
from ..knowledge import sources
from ..operator.periods import period
from ..services import services
from ..timeline import faq as faq_record
from .guard import add_commands

group = AppGroup("faq", help="Answers from the FAQ: evaluate, import, see the gaps.")


def init_app(app: Flask) -> None:
    add_commands(app, group)


@group.command("eval")
@click.argument("cases", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per case, then a summary line.")
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Evaluate this rules file instead of RESPONDER_RULES.")
@click.option("--channel", default="SMS", show_default=True,
              type=click.Choice(sorted(CHANNELS), case_sensitive=False))
def faq_eval(cases, as_json, rules_path, channel):
    """Run CASES (JSON lines: {"text": ..., "expect": "<faq id>" or null}) through the
    webhook's decision and count answers right, answers wrong, clarifications, declines."""
    policy = _policy(rules_path)
    loaded = _cases(cases)
    if not loaded:
        raise click.BadParameter("no cases in the file", param_hint="CASES")
    unknown = sorted({c["expect"] for c in loaded if c.get("expect")} -
                     {entry.id for entry in policy.rules.knowledge.entries})
    if unknown:  # a typo would count every such case as a wrong answer
        raise click.BadParameter(f"expected ids that are not FAQ entries: {', '.join(unknown)}",
                                 param_hint="CASES")
    now = datetime.now(UTC)
    results = [evaluate(case["text"], policy, now, channel) for case in loaded]
    totals = summary(loaded, results)
    if as_json:
        for case, result in zip(loaded, results, strict=True):
            click.echo(json.dumps({
                "text": result["text"], "expect": case.get("expect"),
                "outcome": result["outcome"], "faq_id": result["faq_id"],
                "candidates": result["candidates"]}, ensure_ascii=False))
        click.echo(json.dumps(totals))
        return
    knowledge = policy.rules.knowledge if policy.rules else None
    thresholds = (policy.faq_thresholds.over(knowledge.model.defaults) if knowledge
                  else policy.faq_thresholds)
    model = f"model {knowledge.model.name}, " if knowledge else ""
    click.echo(f"{cases}: {totals['cases']} cases, {totals['answerable']} answerable "
               f"({model}thresholds: answer {thresholds.answer}, margin {thresholds.margin}, "
               f"clarify {thresholds.clarify})")
    for key, label in (("answered_right", "answerable questions answered right"),
                       ("wrong_answers", "answers that were wrong"),
                       ("unanswerable_not_answered", "unanswerable questions not answered"),
                       ("clarify_rate", "clarified"),
                       ("clarify_offered_right", "clarifications offering the right entry"),
                       ("decline_rate", "declined")):
        value = totals[key]
        click.echo(f"  {label:<42} {'-' if value is None else f'{value:.1%}'}")
        if key == "unanswerable_not_answered":
            for kind, share in totals["not_answered_by_kind"].items():
                click.echo(f"  {'  of which ' + kind + ' not answered':<42} {share:.1%}")
    wrong = [(c, r) for c, r in zip(loaded, results, strict=True)
             if r["outcome"] == "answer" and r["faq_id"] != c.get("expect")]
    for case, result in wrong[:20]:
        click.echo(f"  wrong: {case['text']!r} -> {result['faq_id']} "
                   f"(expected {case.get('expect') or 'no answer'})")


@group.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
def faq_import(source):
    """Print a CSV file (question,answer[,id]) or a folder of Markdown articles as [[faq]]
    tables, to review and paste into the rules file."""
    try:
        entries = sources.read(source)
    except sources.SourceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(sources.to_toml(entries), nl=False)


@group.command("gaps")
@click.option("--since", default="30d", show_default=True,
              help="How far back: a duration (30d, 12h) or an ISO time.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per group.")
def faq_gaps(since, limit, as_json):
    """The questions the FAQ declined or clarified, and answers marked wrong, grouped by
    meaning, most asked first: the entries to write next."""
    try:  # checked as the API and the dashboard check it (a period that is one)
        start, _ = period(since, None)
    except ValueError as exc:
        raise click.BadParameter(str(exc).removeprefix("since: "), param_hint="--since") from None
    with services().db.read() as conn:
        found = faq_record.gaps(conn, start, limit)
    if not found:  # on stderr: --json's reader gets no line, not a line that is not JSON
        click.echo("no declined, clarified or wrong FAQ decisions in that period",
                   err=as_json)
    for gap in found:
        if as_json:
            click.echo(json.dumps(gap.as_dict(), ensure_ascii=False))
            continue
        info = gap.as_dict()
        click.echo(f"{gap.count:>5} x {info['examples'][0]!r}  (declined {gap.declined}, "
                   f"clarified {gap.clarified}, marked wrong {gap.wrong}; nearest entry: "
                   f"{info['nearest_entry'] or '-'}"
                   + (f"; answered wrongly by {info['answered_wrongly_by']}"
                      if info["answered_wrongly_by"] else "") + ")")
        for text in info["examples"][1:]:
            click.echo(f"          {text!r}")


@group.command("wrong")
@click.argument("message_sid")
@click.option("--undo", is_flag=True, help="No longer marked wrong (a slip undone).")
def faq_wrong(message_sid, undo):
    """Mark the FAQ's decision on message MESSAGE_SID wrong (it shows in `faq gaps`)."""
    with services().db.transaction() as conn:
        done = faq_record.mark_wrong(conn, message_sid, wrong=not undo)
    if done is None:
        raise click.ClickException(f"no FAQ decision recorded for {message_sid}")
    click.echo(f"{message_sid}: {'no longer marked wrong' if undo else 'marked wrong'}")


def _policy(rules_path: Path | None):
    bot = services()
    if rules_path is None:
        if bot.policy.rules is None or bot.policy.rules.knowledge is None:
            raise click.UsageError("no FAQ: give --rules FILE, or set RESPONDER_RULES to a "
                                   "rules file with [[faq]] entries")
        return bot.policy
    from ..autoreply.compiler import load_rules  # a rules file's libraries
    from ..autoreply.rules import RulesError

    try:
        rules = load_rules(rules_path)
    except RulesError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    if rules.knowledge is None:
        raise click.UsageError(f"no FAQ in {rules_path}: it has no [[faq]] entries and no "
                               "knowledge file")
    return replace(bot.policy, rules=rules)


def _cases(path: Path) -> list[dict]:
    cases = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"not UTF-8 ({exc.reason} at byte {exc.start})",
                                 param_hint="CASES") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"line {number}: not JSON: {exc}",
                                     param_hint="CASES") from None
        except RecursionError:
            raise click.BadParameter(f"line {number}: nested too deeply",
                                     param_hint="CASES") from None
        if not isinstance(case, dict) or not isinstance(case.get("text"), str) or not (
                case.get("expect") is None or isinstance(case.get("expect"), str)):
            raise click.BadParameter(f'line {number}: expected {{"text": "...", "expect": '
                                     '"<faq id>" or null}', param_hint="CASES")
        if not case["text"].isascii():
            try:  # JSON's "\ud800" escape: text no webhook can carry (it is not UTF-8)
                case["text"].encode("utf-8")
            except UnicodeEncodeError as exc:
                raise click.BadParameter(f"line {number}: text is not valid Unicode "
                                         f"({exc.reason} at character {exc.start})",
                                         param_hint="CASES") from None
        cases.append(case)
    return cases
