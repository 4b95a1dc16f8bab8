"""`faq eval` (the webhook's decision, counted), `faq import`, `rules try --json`."""

import json

import pytest

RULES = """
[fallback]
text = "We'll get back to you soon."

[[rules]]
name = "hours"
keywords = ["opening hours"]
text = "Mon-Fri 9-17."

[[faq]]
id = "card-delivery"
questions = ["When will my card arrive?", "My card hasn't arrived yet",
             "How long does it take to get my card?"]
answer = "Cards arrive within 7 working days."

[[faq]]
id = "payment-methods"
questions = ["Which payment methods do you accept?", "Can I pay with Google Pay or Apple Pay?"]
answer = "Cards, PayPal, Google Pay and Apple Pay."
"""

CASES = [
    {"text": "my card still hasn't arrived", "expect": "card-delivery"},
    {"text": "can I pay with google pay?", "expect": "payment-methods"},
    {"text": "can I pay with google pay?", "expect": "card-delivery"},  # a wrong answer
    {"text": "what's the weather like", "expect": None, "kind": "off-topic"},
    {"text": "STOP", "expect": None},
    {"text": "what are your opening hours", "expect": None},
]


@pytest.fixture
def files(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    return rules, cases


def test_eval_json_prints_each_case_then_the_summary(runner, files):
    """One line per case (text as given, outcome, faq_id, candidates), then the shares."""
    rules, cases = files
    result = runner.invoke(args=["faq", "eval", str(cases), "--rules", str(rules), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    *rows, totals = lines
    assert [r["text"] for r in rows] == [c["text"] for c in CASES]
    assert [r["outcome"] for r in rows] == [
        "answer", "answer", "answer", "decline", "COMPLIANCE_KEYWORD", "rule"]
    assert [r["faq_id"] for r in rows] == [
        "card-delivery", "payment-methods", "payment-methods", None, None, None]
    assert rows[0]["candidates"][0] == {"faq_id": "card-delivery",
                                        "score": rows[0]["candidates"][0]["score"]}
    assert totals["summary"] is True and totals["cases"] == 6
    assert totals["answered_right"] == round(2 / 3, 4)
    assert totals["wrong_answers"] == round(1 / 3, 4)
    assert totals["unanswerable_not_answered"] == 1.0
    assert totals["not_answered_by_kind"] == {"off-topic": 1.0}
    assert totals["decline_rate"] == round(1 / 6, 4)


def test_eval_table_names_the_wrong_answers(runner, files):
    rules, cases = files
    result = runner.invoke(args=["faq", "eval", str(cases), "--rules", str(rules)])
    assert "answerable questions answered right        66.7%" in result.output
    assert ("wrong: 'can I pay with google pay?' -> payment-methods (expected card-delivery)"
            in result.output)


@pytest.mark.parametrize("line, problem", [
    ("not json", "line 1: not JSON"),
    ('{"text": 5, "expect": null}', "line 1: expected"),
    ('{"text": "hi", "expect": 3}', "line 1: expected"),
    ('{"text": "hi", "expect": "card-delivry"}',
     "expected ids that are not FAQ entries: card-delivry"),  # a typo is not a wrong answer
    ("", "no cases in the file"),
    ('{"text": "hi \\ud800", "expect": null}', "line 1: text is not valid Unicode"),
    ("[" * 100_000 + "]" * 100_000, "line 1: nested too deeply"),  # once a RecursionError
])
def test_eval_refuses_a_bad_case_naming_its_line(runner, files, line, problem):
    rules, cases = files
    cases.write_text(line + "\n")
    result = runner.invoke(args=["faq", "eval", str(cases), "--rules", str(rules)])
    assert result.exit_code == 2 and problem in result.output


def test_eval_refuses_a_file_that_is_not_utf8(runner, files):
    rules, cases = files
    cases.write_bytes('{"text": "café", "expect": null}\n'.encode("latin-1"))
    result = runner.invoke(args=["faq", "eval", str(cases), "--rules", str(rules)])
    assert result.exit_code == 2 and "not UTF-8" in result.output


def test_eval_without_an_faq_says_what_to_do(runner, files, tmp_path):
    result = runner.invoke(args=["faq", "eval", str(files[1])])
    assert result.exit_code == 2 and "give --rules FILE" in result.output
    no_faq = tmp_path / "no-faq.toml"
    no_faq.write_text('[fallback]\ntext = "Hi"\n')  # once an AttributeError traceback
    result = runner.invoke(args=["faq", "eval", str(files[1]), "--rules", str(no_faq)])
    assert result.exit_code == 2 and "no [[faq]] entries and no knowledge file" in result.output


def test_rules_try_json_prints_what_eval_prints(make_app, files):
    rules, _ = files
    runner = make_app(RESPONDER_RULES=rules).test_cli_runner()
    result = runner.invoke(args=["rules", "try", "--json", "can I pay with google pay?"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert (found["outcome"], found["faq_id"]) == ("answer", "payment-methods")
    assert found["reply"] == "Cards, PayPal, Google Pay and Apple Pay."


def test_import_prints_faq_tables(runner, tmp_path):
    (tmp_path / "returns.md").write_text("# How do I return an item?\n\nWithin 30 days.\n")
    result = runner.invoke(args=["faq", "import", str(tmp_path)])
    assert result.exit_code == 0
    assert result.output == ('[[faq]]\nid = "returns"\nquestions = [\n'
                             '  "How do I return an item?",\n]\nanswer = "Within 30 days."\n')


@pytest.mark.parametrize("since, problem", [
    ("0", "since must be before until"),  # no period at all: as the API says it
    ("400d", "a period is at most 366 days"),
    ("yesterday", "expected a duration like 24h or 7d"),
])
def test_gaps_refuses_a_period_the_api_refuses(runner, since, problem):
    result = runner.invoke(args=["faq", "gaps", "--since", since])
    assert result.exit_code == 2 and problem in result.output, result.output
