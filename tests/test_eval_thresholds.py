"""eval/thresholds.py: pairs judged on several sets at once (--mixes)."""

from app.knowledge import Candidate, Thresholds
from eval.thresholds import count, pooled

ANSWERS = Thresholds(answer=0.5, margin=0.1, clarify=9.0)


def case(expect, *scores):
    """A case and its ranked candidates: ("a", 0.9), ("b", 0.2), ..."""
    return {"text": "", "expect": expect}, [Candidate(f, s) for f, s in scores]


def as_set(*cases):
    return [c for c, _ in cases], [r for _, r in cases]


def test_count_tells_right_wrong_and_silent_answers():
    """An answer is right, wrong, or given where none was expected; a low lead is none."""
    counts = count(*as_set(case("a", ("a", 0.9), ("b", 0.2)),
                           case("a", ("b", 0.9), ("a", 0.2)),
                           case(None, ("a", 0.9), ("b", 0.1)),
                           case(None, ("a", 0.9), ("b", 0.85))), ANSWERS)
    assert counts["right"] == 0.5 and counts["answers"] == 3 and counts["wrong_answers"] == 2
    assert counts["not_answered"] == 0.5


def test_pooled_averages_the_right_rate_and_pools_the_wrong_answers():
    """Each set's answered-right rate counts alike; wrong answers are pooled over all
    answers, so a set with few answers cannot hide a bad one; silence is the worst set's."""
    good = as_set(case("a", ("a", 0.9), ("b", 0.1)), case("b", ("b", 0.9), ("a", 0.1)),
                  case(None, ("a", 0.2), ("b", 0.1)))
    bad = as_set(case("a", ("b", 0.9), ("a", 0.1)), case("b", ("b", 0.3), ("a", 0.1)),
                 case(None, ("a", 0.9), ("b", 0.1)))
    counts = pooled([good, bad], ANSWERS)
    assert counts["right"] == (1.0 + 0.0) / 2
    assert counts["wrong"] == 2 / 4
    assert counts["not_answered"] == 0.0
