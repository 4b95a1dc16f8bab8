"""Build the project's FAQ evaluation set from CLINC150 (clinc/oos-eval, CC BY 3.0).

    git clone https://github.com/clinc/oos-eval /tmp/oos-eval
    python -m eval.clinc150.build /tmp/oos-eval/data/data_full.json

Writes, beside this file:
  faq.toml    30 FAQ entries: in-scope intents of the banking, credit_cards and travel
              domains, each with 3 phrasings from CLINC's training queries;
  tune.jsonl  cases from CLINC's validation queries: the thresholds are chosen on these;
  test.jsonl  cases from CLINC's test queries: reported, never tuned on;
  mixes/*/    seven more FAQs of three other domains each (MIXES), with tuning cases
              from CLINC's validation queries only: a setting chosen on one mix of
              domains can be checked on eight (python -m eval.thresholds --mixes).
Each case is {"text", "expect"}: the entry's id, or null for a question the base does
not cover (the 15 intents of those domains left out), CLINC's out-of-scope queries and
queries of other domains (small talk, utilities, kitchen, ...). Deterministic (seeded).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).parent
SEED = 150
DOMAINS = ("banking", "credit_cards", "travel")
OTHER_DOMAINS = ("small_talk", "utility", "kitchen_and_dining", "home", "auto_and_commute",
                 "work", "meta")
PHRASINGS = 3
# Queries per kind of case: (tune from CLINC's val, test from its test split).
COVERED = (8, 15)  # per covered intent
UNCOVERED = (4, 6)  # per left-out intent of the same domains
OUT_OF_SCOPE = (100, 300)  # CLINC's oos queries
OTHER = (100, 160)  # queries of other domains, in all

# More FAQs to tune on, three domains each (CLINC's val queries only; its test split stays
# unseen): every domain in two or three of them.
MIXES = (("kitchen_and_dining", "home", "auto_and_commute"), ("utility", "work", "small_talk"),
         ("meta", "banking", "travel"), ("credit_cards", "kitchen_and_dining", "utility"),
         ("home", "work", "travel"), ("auto_and_commute", "meta", "credit_cards"),
         ("small_talk", "banking", "home"))

# The domains' intents, as CLINC's domains.json lists them.
INTENTS = {
    "banking": ["freeze_account", "routing", "pin_change", "bill_due", "pay_bill",
                "account_blocked", "interest_rate", "min_payment", "bill_balance", "transfer",
                "order_checks", "balance", "spending_history", "transactions", "report_fraud"],
    "credit_cards": ["replacement_card_duration", "expiration_date", "damaged_card",
                     "improve_credit_score", "report_lost_card", "card_declined",
                     "credit_limit_change", "apr", "redeem_rewards", "credit_limit",
                     "rewards_balance", "application_status", "credit_score", "new_card",
                     "international_fees"],
    "travel": ["plug_type", "travel_notification", "translate", "flight_status",
               "international_visa", "timezone", "exchange_rate", "travel_suggestion",
               "travel_alert", "vaccines", "lost_luggage", "book_flight", "book_hotel",
               "carry_on", "car_rental"],
}


def build(data: dict, domains_of: dict[str, list[str]]) -> tuple[str, list, list]:
    rng = random.Random(SEED)
    covered, uncovered = [], []
    for domain in DOMAINS:
        intents = INTENTS[domain]
        left_out = set(rng.sample(intents, 5))
        covered += [i for i in intents if i not in left_out]
        uncovered += [i for i in intents if i in left_out]
    by_intent: dict[str, dict[str, list[str]]] = {}
    for split in ("train", "val", "test"):
        for text, intent in data[split]:
            by_intent.setdefault(intent, {}).setdefault(split, []).append(text)
    toml = [_HEADER]
    for intent in covered:
        phrasings = rng.sample(by_intent[intent]["train"], PHRASINGS)
        toml.append(f'[[faq]]\nid = "{intent.replace("_", "-")}"\n'
                    f"questions = {json.dumps(phrasings)}\n"
                    f'answer = "(The answer about {intent.replace("_", " ")}.)"\n')
    others = [i for d in OTHER_DOMAINS for i in domains_of[d]]
    sets = []
    for column, split, oos_split in ((0, "val", "oos_val"), (1, "test", "oos_test")):
        cases = []
        for intent in covered:
            for text in rng.sample(by_intent[intent][split], COVERED[column]):
                cases.append({"text": text, "expect": intent.replace("_", "-")})
        for intent in uncovered:
            for text in rng.sample(by_intent[intent][split], UNCOVERED[column]):
                cases.append({"text": text, "expect": None, "kind": "uncovered"})
        for text, _ in rng.sample(data[oos_split], OUT_OF_SCOPE[column]):
            cases.append({"text": text, "expect": None, "kind": "off-topic"})
        pool = [t for i in others for t in by_intent[i][split]]
        for text in rng.sample(pool, OTHER[column]):
            cases.append({"text": text, "expect": None, "kind": "off-topic"})
        sets.append(cases)
    return "\n".join(toml), sets[0], sets[1]


def build_mix(data: dict, domains_of: dict[str, list[str]], domains) -> tuple[str, list]:
    """One more FAQ (10 intents of each of `domains`) and its tuning cases, from CLINC's
    train (phrasings) and val (cases) queries, in the proportions of tune.jsonl."""
    rng = random.Random(f"{SEED}-{'+'.join(domains)}")
    by_intent: dict[str, dict[str, list[str]]] = {}
    for split in ("train", "val"):
        for text, intent in data[split]:
            by_intent.setdefault(intent, {}).setdefault(split, []).append(text)
    covered, uncovered = [], []
    for domain in domains:
        left_out = set(rng.sample(domains_of[domain], 5))
        covered += [i for i in domains_of[domain] if i not in left_out]
        uncovered += sorted(left_out)
    toml = [_MIX_HEADER.format(domains=", ".join(domains))]
    cases = []
    for intent in covered:
        faq_id = intent.replace("_", "-")
        phrasings = rng.sample(by_intent[intent]["train"], PHRASINGS)
        toml.append(f'[[faq]]\nid = "{faq_id}"\nquestions = {json.dumps(phrasings)}\n'
                    f'answer = "(The answer about {intent.replace("_", " ")}.)"\n')
        cases += [{"text": t, "expect": faq_id}
                  for t in rng.sample(by_intent[intent]["val"], COVERED[0])]
    for intent in uncovered:
        cases += [{"text": t, "expect": None, "kind": "uncovered"}
                  for t in rng.sample(by_intent[intent]["val"], UNCOVERED[0])]
    cases += [{"text": t, "expect": None, "kind": "off-topic"}
              for t, _ in rng.sample(data["oos_val"], OUT_OF_SCOPE[0])]
    pool = [t for d in domains_of if d not in domains for i in domains_of[d]
            for t in by_intent[i]["val"]]
    cases += [{"text": t, "expect": None, "kind": "off-topic"}
              for t in rng.sample(pool, OTHER[0])]
    return "\n".join(toml), cases


_MIX_HEADER = """\
# Built by eval/clinc150/build.py from CLINC150 (clinc/oos-eval, CC BY 3.0; see ../../README.md).
# 10 in-scope intents of each of {domains} as FAQ entries,
# each with 3 of CLINC's training queries as its phrasings; tune.jsonl: CLINC's val queries.
[fallback]
text = "(fallback)"
"""

_HEADER = """\
# Built by eval/clinc150/build.py from CLINC150 (clinc/oos-eval, CC BY 3.0; see README.md).
# 30 in-scope intents of the banking, credit_cards and travel domains as FAQ entries,
# each with 3 of CLINC's training queries as its phrasings.
[fallback]
text = "(fallback)"
"""


def main(path: str) -> None:
    data = json.loads(Path(path).read_text())
    domains_path = Path(path).with_name("domains.json")
    domains_of = json.loads(domains_path.read_text())
    toml, tune, test = build(data, domains_of)
    (HERE / "faq.toml").write_text(toml)
    for name, cases in (("tune.jsonl", tune), ("test.jsonl", test)):
        (HERE / name).write_text("".join(json.dumps(c) + "\n" for c in cases))
        print(f"{name}: {len(cases)} cases")
    for domains in MIXES:
        toml, tune = build_mix(data, domains_of, domains)
        folder = HERE / "mixes" / "+".join(domains)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "faq.toml").write_text(toml)
        (folder / "tune.jsonl").write_text("".join(json.dumps(c) + "\n" for c in tune))
        print(f"{folder.relative_to(HERE)}: {len(tune)} cases")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
