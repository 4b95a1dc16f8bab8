"""Choose the FAQ's thresholds on an evaluation set: the most answerable questions answered
right with at most 5% of answers wrong and at least 95% of unanswerable ones not answered.

    python -m eval.thresholds eval/clinc150/faq.toml eval/clinc150/tune.jsonl

Each case is scored once (the same KnowledgeBase the server builds), then every pair of
answer score and margin on a grid is counted, and the best few printed; then, at the
chosen pair, how often each clarify score would clarify and offer the right entry. The
defaults (FAQ_ANSWER_SCORE, FAQ_MARGIN, FAQ_CLARIFY_SCORE) were chosen with this on
eval/clinc150/tune.jsonl; never run it on a customer's or the held-out set to pick them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.autoreply import load_rules
from app.knowledge import Thresholds

MAX_WRONG, MIN_NOT_ANSWERED = 0.05, 0.95


def count(cases, ranked, thresholds: Thresholds) -> dict:
    right = wrong = answers = clarified = offered = unanswered_answered = 0
    answerable = sum(1 for c in cases if c["expect"])
    for case, best in zip(cases, ranked, strict=True):
        first = best[0].score if best else 0.0
        second = best[1].score if len(best) > 1 else 0.0
        if best and first >= thresholds.answer and first - second >= thresholds.margin:
            answers += 1
            if best[0].faq_id == case["expect"]:
                right += 1
            else:
                wrong += 1
                unanswered_answered += not case["expect"]
            continue
        close = [c for c in best if c.score >= thresholds.clarify
                 and first - c.score < thresholds.margin]
        if len(close) >= 2:
            clarified += 1
            offered += case["expect"] in {c.faq_id for c in close}
    unanswerable = len(cases) - answerable
    return {"right": right / answerable, "wrong": wrong / max(answers, 1),
            "not_answered": 1 - unanswered_answered / max(unanswerable, 1),
            "clarify": clarified / len(cases), "offered_right": offered / max(clarified, 1)}


def main(rules_path: str, cases_path: str) -> None:
    knowledge = load_rules(rules_path).knowledge
    cases = [json.loads(line) for line in Path(cases_path).read_text().splitlines() if line]
    ranked = [knowledge.retrieve(case["text"], "", 3) for case in cases]
    found = []
    for answer in range(30, 80):
        for margin in range(0, 60):
            thresholds = Thresholds(answer=answer / 100, margin=margin / 200, clarify=9.0)
            counts = count(cases, ranked, thresholds)
            if counts["wrong"] <= MAX_WRONG and counts["not_answered"] >= MIN_NOT_ANSWERED:
                found.append((counts["right"], thresholds))
    found.sort(key=lambda item: -item[0])
    print("answer  margin  answered right")
    for right, thresholds in found[:8]:
        print(f"{thresholds.answer:6.2f}  {thresholds.margin:6.3f}  {right:6.1%}")
    defaults = Thresholds()
    print(f"\nat answer {defaults.answer}, margin {defaults.margin}:")
    print("clarify  answered right  wrong  clarified  offered right")
    for clarify in (0.45, 0.5, 0.55, 0.6, 0.65, 0.7):
        c = count(cases, ranked, Thresholds(defaults.answer, defaults.margin, clarify))
        print(f"{clarify:7.2f}  {c['right']:14.1%}  {c['wrong']:5.1%}  {c['clarify']:9.1%}"
              f"  {c['offered_right']:13.1%}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
