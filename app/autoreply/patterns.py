"""The operator's regular expressions (a rule's `pattern`, `agent_patterns`), bounded.

A backtracking engine can spend seconds, or forever, on one search: `(a+)+$` against a
few thousand a's, or two `\\s*` in a row against a long run of spaces (quadratic: 13.6 s
for 32,000 spaces, in the request's thread, holding the worker). The rules file is
trusted to say what to match, not to be fast, so every search here is bounded:

- rules see at most MAX_TEXT characters of a message (and of an author), `decide` cuts
  the rest; 4,096 is WhatsApp's limit for a message, more than SMS's 1,600;
- each search runs at most MATCH_TIMEOUT seconds of CPU (the `regex` module's `timeout`,
  measured with the process's CPU clock), then counts as no match; the first time a
  pattern runs out, it is logged (once per pattern and process, not per message);
- all the searches on one text (a message's body, its author) share a Budget of
  MESSAGE_BUDGET seconds of this thread's CPU: a file of a hundred slow patterns would
  otherwise cost a message 5 s, past Twilio's webhook timeout. Once it is spent, the
  remaining patterns count as no match (logged once per process).

`regex` keeps Python's syntax and its Unicode semantics (`\\b`, `\\w`, `\\d` for every
script, lookarounds), so every pattern that loaded before still means the same. RE2
would be linear by construction, but its `\\b`, `\\w`, `\\d` and `\\s` are ASCII-only:
`\\bÖffnungszeiten\\b` would silently never match. The keyword matchers stay on `re`:
they are escaped words between lookarounds, linear whatever the text.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings

import regex

log = logging.getLogger(__name__)
# \p{L} and \X, regex's own, counted as one character; an escaped backslash kept as it is.
_OWN_CLASSES = regex.compile(r"\\\\|\\[pP](?:\{[^}]*\}|[A-Za-z])|\\X")
_REPEAT_MINIMUM = regex.compile(r"\{(\d+)(?:,\d*)?\}")

MAX_TEXT = 4_096  # characters of a message's body (or author) that rules see
MATCH_TIMEOUT = 0.05  # seconds of CPU per search; a linear pattern on MAX_TEXT needs < 1 ms
MAX_EXPANDED = 100_000  # steps a pattern may compile to (expanded_size): ~30 MB
MESSAGE_BUDGET = 0.2  # seconds of CPU for every search on one text: four slow patterns

_warned_lock = threading.Lock()
_budget_warned = False


def check(source: str, *, ignore_case: bool = False) -> None:
    """Compile `source` as a search would; ValueError names what is wrong with it."""
    size = expanded_size(source)
    if size > MAX_EXPANDED:
        # Compiling writes out every counted repeat: "(?:a{2000}){2000}" took 1.7 GB and
        # 4.5 s at start-up, "(?:a{65535}){65535}" more than a minute.
        raise ValueError(f"regular expression {source[:80]!r} repeats too much: about "
                         f"{size:,} steps once written out, at most {MAX_EXPANDED:,} "
                         f"(a message is at most {MAX_TEXT:,} characters)")
    try:
        regex.compile(source, _flags(ignore_case))
    except regex.error as exc:
        raise ValueError(f"invalid regular expression {source!r}: {exc}") from None
    except RecursionError:  # the regex module parses nested groups recursively
        raise ValueError(f"regular expression nested too deeply ({len(source):,} "
                         "characters)") from None


def expanded_size(source: str) -> int:
    """About how many steps `source` compiles to: `regex` writes out each counted repeat
    `min` times (a{3} is three; {0,n} and {1,n} loop over one copy, whatever n), nested
    repeats multiplied. What Python's own parser cannot read (`regex`'s extensions) is
    bounded by the product of every repeat's minimum in it, as if all were nested."""
    from re import _constants as c
    from re import _parser

    def size(items) -> int:
        total = 0
        for op, av in items:
            if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
                low, _high, inner = av
                total += max(low, 1) * size(inner)
            elif op is c.SUBPATTERN:
                total += size(av[-1])
            elif op is c.BRANCH:
                total += sum(size(branch) for branch in av[1])
            elif op is c.ATOMIC_GROUP:
                total += size(av)
            elif op in (c.ASSERT, c.ASSERT_NOT):
                total += size(av[1])
            else:
                total += 1
        return total

    readable = _OWN_CLASSES.sub(lambda m: m[0] if m[0] == "\\\\" else ".", source)
    try:
        with warnings.catch_warnings():  # "[[:digit:]]": a FutureWarning at every load
            warnings.simplefilter("ignore")
            return size(_parser.parse(readable))
    except (Exception, RecursionError):  # noqa: BLE001 - regex's own syntax: the bound
        product = 1
        for low in _REPEAT_MINIMUM.findall(source):
            product = min(product * max(int(low), 1), 10 * MAX_EXPANDED)
        return product + len(source)


class Budget:
    """What is left of one text's MESSAGE_BUDGET (this thread's CPU clock)."""

    __slots__ = ("_ends",)

    def __init__(self, seconds: float = MESSAGE_BUDGET):
        self._ends = time.thread_time() + seconds

    def left(self) -> float:
        return self._ends - time.thread_time()


class Pattern:
    """One compiled operator pattern; `where` names it in the log (rules[1] 'x' .pattern)."""

    __slots__ = ("source", "where", "_compiled", "_warned")

    def __init__(self, source: str, where: str, *, ignore_case: bool = False):
        self.source = source
        self.where = where
        self._compiled = regex.compile(source, _flags(ignore_case))
        self._warned = False

    def search(self, text: str, budget: Budget | None = None) -> bool:
        """Whether the pattern occurs in `text`; False when it, or `budget`, ran out of time."""
        return bool(self.find(text, budget))

    def find(self, text: str, budget: Budget | None = None) -> bool | None:
        """Whether the pattern occurs in `text`; None when it, or `budget`, ran out of time
        (not an answer to remember)."""
        timeout = MATCH_TIMEOUT
        if budget is not None:
            timeout = min(timeout, budget.left())
            if timeout <= 0:
                _warn_budget_spent(self.where, len(text))
                return None
        try:
            return self._compiled.search(text, timeout=timeout) is not None
        except TimeoutError:
            self._warn_once(len(text))
            return None

    def _warn_once(self, length: int) -> None:
        with _warned_lock:
            if self._warned:
                return
            self._warned = True
        log.warning("regular expression %s %r ran out of its %.0f ms on a %d-character "
                    "text and counts as no match (logged once per process; make it "
                    "linear: see rules.example.toml)", self.where, self.source,
                    MATCH_TIMEOUT * 1000, length)

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


def _warn_budget_spent(where: str, length: int) -> None:
    global _budget_warned
    with _warned_lock:
        if _budget_warned:
            return
        _budget_warned = True
    log.warning("the patterns of one message used up their %.0f ms on a %d-character text: "
                "%s and every pattern after it count as no match (logged once per "
                "process; make the slow ones linear: see rules.example.toml)",
                MESSAGE_BUDGET * 1000, length, where)


def _flags(ignore_case: bool) -> int:
    return regex.V0 | (regex.IGNORECASE if ignore_case else 0)
