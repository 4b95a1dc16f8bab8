"""Layers: imports point down, never up (docs/development.md, Layout).

Read from the source with ast, following each import through the modules it reaches (a
package's `__init__` included), since importing `app.x` at run time runs the factory's
package first and so cannot tell.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "app"

# What each layer may reach, directly or through what it imports.
MAY_REACH = {
    # The pure decision: no database, no delivery, no Flask.
    "app.autoreply": ("app.autoreply", "app.knowledge", "app.twilio", "app.formats"),
    # The FAQ's matching, pure and offline, below the decision.
    "app.knowledge": ("app.knowledge",),
    # Talking to Twilio, below every user of it.
    "app.twilio": ("app.twilio", "app.formats"),
    # Used by every layer: only the store (and what the store uses) below it.
    "app.observability": ("app.observability", "app.store", "app.twilio", "app.logs",
                          "app.formats"),
}


def source(module: str) -> Path | None:
    """The file of an app module (a package's __init__.py), or None."""
    path = ROOT.parent.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def imported(module: str) -> set[str]:
    """The app modules `module` imports, relative imports resolved."""
    path = source(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
            origin = ".".join(base + ([node.module] if node.module else [])) if node.level \
                else node.module
            found.add(origin)
            found.update(f"{origin}.{alias.name}" for alias in node.names
                         if source(f"{origin}.{alias.name}"))
    return {name for name in found if name.startswith("app.") and source(name)}


def with_packages(module: str) -> set[str]:
    """`module` and the packages above it that importing it runs (not `app` itself)."""
    parts = module.split(".")
    return {".".join(parts[:n]) for n in range(2, len(parts) + 1)}


def reached(layer: str) -> dict[str, str]:
    """Every app module the layer's modules reach, each with a module that imports it."""
    start = [".".join(p.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(
        ".__init__") for p in (ROOT / layer.split(".")[1]).rglob("*.py")]
    seen: dict[str, str] = {name: name for name in start}
    todo = list(start)
    while todo:
        module = todo.pop()
        for name in imported(module):
            for each in with_packages(name):
                if each not in seen:
                    seen[each] = module
                    todo.append(each)
    return seen


@pytest.mark.parametrize("layer", sorted(MAY_REACH))
def test_a_layer_imports_nothing_above_it(layer):
    """autoreply, twilio and observability reach only the layers below them."""
    allowed = MAY_REACH[layer]
    above = {name: by for name, by in reached(layer).items()
             if not any(name == a or name.startswith(a + ".") for a in allowed)}
    assert above == {}, f"{layer} reaches (module: imported by) {above}"


def test_the_check_sees_imports():
    """The walk finds relative and absolute imports (a check that sees none passes all)."""
    assert {"app.twilio.marker", "app.autoreply.templates"} <= set(reached("app.autoreply"))
    assert "app.store.models" in reached("app.observability")
    assert "app.delivery.registry" in reached("app.web")
