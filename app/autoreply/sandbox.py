"""The Jinja2 environment reply templates render in: sandboxed, and bounded in work and size.

Jinja2's sandbox keeps a template out of Python's internals, not out of the CPU or the
memory: `{{ 'x' * 10**8 }}` builds 100 MB, two nested loops of 99,999 run for hours,
in the start-up's check render or in a webhook's thread. So, for every render:

- work: at most MAX_STEPS steps, a step being a Python line or call executed while the
  template renders (its own loops, and the Python filters it calls), counted by a trace
  function on the rendering thread alone. Counted, not timed: the bound is the same on
  a loaded machine, and a typical reply takes under 50;
- size: every string, list or number a template builds by an operator (`*`, `**`, `%`,
  `+`, `~`), a call or a filter is at most MAX_CHARS characters (or items, or about as
  many digits). Where a number decides the size (`*`, `**`, format widths, padding
  widths, `join` and `replace`) it is checked before building, so no single step builds
  more than a few MAX_CHARS² characters; everything else is checked after;
- output: at most MAX_CHARS characters, checked as they are produced;
- list, dict and set methods that modify them (`append`, `update`, ...) are refused
  (Jinja2's ImmutableSandboxedEnvironment), so nothing grows across a loop unseen.

A template past a bound raises TemplateLimit (a ValueError): at load it stops the
start-up, naming the field; in a decision it is a TEMPLATE_ERROR (no reply).
"""

from __future__ import annotations

import re
import string
import sys
from collections.abc import Callable, Mapping
from functools import wraps
from itertools import islice

from jinja2 import Template
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_CHARS = 4_096  # a rendered text, and any value built while rendering (WhatsApp's limit)
MAX_STEPS = 20_000  # Python lines and calls while rendering one template
MAX_INT_BITS = MAX_CHARS * 4  # about MAX_CHARS decimal digits

_PAD_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?([^a-zA-Z%]*)")
_NUMBER = re.compile(r"\d+")


class TemplateLimit(ValueError):
    """A template went past one of this module's bounds."""


class _OutOfSteps(BaseException):
    """Raised by the trace function: a BaseException, so that no `except Exception` in
    a filter or in Jinja2 swallows it (the trace function is gone once it raised)."""


class _Budget:
    """A trace function that counts steps and stops the render past MAX_STEPS: every
    Python call (filters, Jinja2's runtime, a generator resumed), and every line of the
    template's own code (its loops); lines elsewhere are not traced, which keeps the
    cost of a typical render to a few microseconds."""

    __slots__ = ("left",)

    def __init__(self, steps: int):
        self.left = steps

    def __call__(self, frame, event, arg):
        self.left -= 1
        if self.left < 0:
            raise _OutOfSteps
        return self if frame.f_code.co_filename == _TEMPLATE_CODE else None


_TEMPLATE_CODE = "<template>"  # the file name of code compiled from a string template


def render(template: Template, context: Mapping[str, object]) -> str:
    """Render within MAX_STEPS and MAX_CHARS, or raise TemplateLimit."""
    parts: list[str] = []
    size = 0
    # What Template.generate does, less its traceback rewriting (not needed for the
    # message, and it would run inside the budget).
    chunks = template.root_render_func(template.new_context(dict(context)))
    previous = sys.gettrace()  # a debugger's or coverage's, given back afterwards
    sys.settrace(_Budget(MAX_STEPS))  # this thread only
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_CHARS:
                raise TemplateLimit(f"renders more than {MAX_CHARS:,} characters")
            parts.append(chunk)
    except _OutOfSteps:
        raise TemplateLimit(f"takes more than {MAX_STEPS:,} steps to render "
                            "(a loop too long?)") from None
    finally:
        sys.settrace(previous)
        chunks.close()
    return "".join(parts)


def checked(value, what: str):
    """`value`, if it is within MAX_CHARS (characters, items or digits)."""
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        _limit(len(value), what)
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise TemplateLimit(f"{what} builds a number of over {MAX_CHARS:,} digits")
    return value


def _limit(size: int, what: str) -> None:
    if size > MAX_CHARS:
        raise TemplateLimit(f"{what} builds a value of {size:,} characters or items "
                            f"(at most {MAX_CHARS:,})")


def _sized(value) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _check_mul(left, right) -> None:
    if _sized(left) and isinstance(right, int):
        _limit(len(left) * right, "'*'")
    elif _sized(right) and isinstance(left, int):
        _limit(len(right) * left, "'*'")
    elif isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"'*' builds a number of over {MAX_CHARS:,} digits")


def _check_pow(left, right) -> None:
    if (isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0
            and (left.bit_length() - 1) * right > MAX_INT_BITS):
        raise TemplateLimit(f"'**' builds a number of over {MAX_CHARS:,} digits")


def _check_widths(specs, what: str) -> None:
    """Format specs ('10.2f', '*d'): literal numbers only, each at most MAX_CHARS."""
    for spec in specs:
        if "*" in spec or "{" in spec:
            raise TemplateLimit(f"{what}: a width or precision must be a literal number")
        for number in _NUMBER.findall(spec):
            _limit(int(number), f"{what} width {number}")


def _percent_specs(text: str) -> list[str]:
    return _PERCENT_SPEC.findall(text)


def _format_specs(text: str) -> list[str]:
    return [spec or "" for _, _, spec, _ in string.Formatter().parse(text) if spec]


def _check_join(separator: str, items) -> list:
    """The items (a list, at most MAX_CHARS + 1 of them) after a size check."""
    items = list(islice(items, MAX_CHARS + 1))
    _limit(len(items), "join")
    _limit(sum(len(str(item)) for item in items) + len(str(separator)) * len(items), "join")
    return items


def _check_replace(text: str, old: str, new: str, count: int = -1) -> None:
    found = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    _limit(len(text) + found * (len(new) - len(old)), "replace")


def _check_method(method, args: tuple, kwargs: dict) -> tuple:
    """Pre-checks for str (and bytes) methods whose size a number or a product decides;
    the args to call with (join's iterable, materialized)."""
    owner, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if not isinstance(owner, str | bytes):
        return args
    if name in _PAD_METHODS and args and isinstance(args[0], int):
        _limit(args[0], f"{name}({args[0]})")
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tab, int):
            tabs = owner.count(b"\t" if isinstance(owner, bytes) else "\t")
            _limit(len(owner) + tabs * tab, "expandtabs")
    elif name == "replace" and len(args) >= 2 and all(
            isinstance(arg, type(owner)) for arg in args[:2]):
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name == "join" and args:
        return (_check_join(owner, args[0]), *args[1:])
    return args


def _filter_value_index(function) -> int:
    """Where a filter's value is among its arguments (after context, eval_ctx or env)."""
    return 1 if getattr(function, "jinja_pass_arg", None) is not None else 0


def _bounded_filter(name: str, function: Callable) -> Callable:
    """A built-in filter with its pre-checks and its result checked."""
    at = _filter_value_index(function)

    @wraps(function)
    def bounded(*args, **kwargs):
        value, params = (args[at] if len(args) > at else None), args[at + 1:]
        if name in ("center", "indent"):
            width = params[0] if params else kwargs.get("width")
            if isinstance(width, int):
                lines = str(value).count("\n") + 1 if name == "indent" else 1
                _limit(width * lines, f"{name}({width})")
        elif name == "join":
            separator = params[0] if params else kwargs.get("d", "")
            args = (*args[:at], _check_join(separator, value), *args[at + 1:])
        elif name == "replace" and len(params) >= 2:
            _check_replace(str(value), str(params[0]), str(params[1]),
                           params[2] if len(params) > 2 else kwargs.get("count", -1))
        elif name == "format":
            _check_widths(_percent_specs(str(value)), "format")
        return checked(function(*args, **kwargs), f"the {name} filter")

    return bounded


class _CodeGenerator(CodeGenerator):
    """Jinja2's code generator, with every `~` concatenation size-checked (a `~` is no
    operator the sandbox can intercept)."""

    def visit_Concat(self, node, frame) -> None:  # noqa: N802 (Jinja2's visitor names)
        self.write("environment.checked_concat(")
        super().visit_Concat(node, frame)
        self.write(")")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """ImmutableSandboxedEnvironment whose operators, calls and filters check sizes."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options):
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context, operator: str, left, right):
        if operator == "*":
            _check_mul(left, right)
        elif operator == "**":
            _check_pow(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_widths(_percent_specs(left), "'%'")
        return checked(super().call_binop(context, operator, left, right), f"'{operator}'")

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja2's signature)
        args = _check_method(__obj, args, kwargs)
        name = getattr(__obj, "__name__", type(__obj).__name__)
        return checked(super().call(__context, __obj, *args, **kwargs), f"{name}()")

    def wrap_str_format(self, value):
        """str.format and format_map: literal widths only, the result checked."""
        formatter = super().wrap_str_format(value)
        if formatter is None:
            return None
        template = value.__self__

        @wraps(formatter)
        def bounded(*args, **kwargs):
            _check_widths(_format_specs(template), "format")
            return checked(formatter(*args, **kwargs), "format")

        return bounded

    def checked_concat(self, value):
        return checked(value, "'~'")
