"""The README and docs/ stay short, true and connected.

The README is a front door of at most 250 lines; every `flask --app wsgi` command the
pages show exists (its `--help` runs through the app's own CLI, so a renamed command
fails here); every `python -m` module exists; every relative link leads to a file, and
every `#anchor` to a heading; every setting the code reads is in the configuration
reference; and every page keeps one convention for commands: activate `.venv` first.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import click
import pytest
from flask.cli import FlaskGroup, ScriptInfo

from app import create_app
from app.services import services
from tests.support.servers import ROOT

README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250

# `flask --app wsgi` and the words after it that may name a command (lowercase, hyphens):
# `rules try "hi"` gives rules, try; `send-event onMessageAdded` gives send-event only.
FLASK_COMMAND = re.compile(r"flask --app wsgi((?:[ \t]+[a-z][a-z-]*(?=[\s`'\"|\\),;:]|\.\s|$))*)")
PYTHON_MODULE = re.compile(r"python -m ([\w.]+)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")
ACTIVATE = ". .venv/bin/activate"
# `sudo` resets PATH, so the VM's one command as `bot` spells out the virtualenv's path.
SUDO = "sudo -u bot "


def prose(page: Path) -> str:
    """The page without its fenced code blocks (a `# comment` there is not a heading)."""
    lines, fenced = [], False
    for line in page.read_text().splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        lines.append("" if fenced else line)
    return "\n".join(lines)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings: lowercase, punctuation dropped, spaces
    to hyphens, a repeated heading numbered -1, -2, ..."""
    seen: dict[str, int] = {}
    out = set()
    for match in re.finditer(r"^#{1,6}[ \t]+(.+?)[ \t]*#*$", prose(page), re.M):
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def documented_commands() -> dict[tuple[str, ...], str]:
    """Each distinct `flask --app wsgi ...` word sequence, with the first page showing it
    (`flask --app wsgi` alone, in a sentence about the CLI, names no command)."""
    found: dict[tuple[str, ...], str] = {}
    for page in PAGES:
        for match in FLASK_COMMAND.finditer(page.read_text()):
            if words := tuple(match.group(1).split()):
                found.setdefault(words, page.name)
    return found


def relative_links() -> list[tuple[Path, str]]:
    links = []
    for page in PAGES:
        text = re.sub(r"`[^`\n]*`", "", prose(page))  # inline code is not a link
        links += [(page, target) for target in dict.fromkeys(LINK.findall(text))
                  if not re.match(r"[a-z][a-z+.-]*:", target)]  # https:, mailto:, ...
    return links


def source_settings() -> set[str]:
    """The settings config.py reads (each through its reader: `reader.text("NAME")`, ...)
    and the environment variables gunicorn.conf.py reads (`WEB_CONCURRENCY`, ...)."""
    config = (ROOT / "config.py").read_text()
    gunicorn = (ROOT / "gunicorn.conf.py").read_text()
    return (set(re.findall(r"reader\.\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", config))
            | set(re.findall(r"os\.environ(?:\.get\(|\[)\s*[\"']([A-Z][A-Z0-9_]*)", gunicorn)))


def reference_settings() -> set[str]:
    """The names in the first column of the configuration reference's tables."""
    names = set()
    for line in CONFIGURATION.read_text().splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    return names


COMMANDS = documented_commands()


@pytest.fixture(scope="module")
def docs_app(tmp_path_factory):
    """The app in dry-run mode on a temporary SQLite file, as a fresh checkout runs it."""
    folder = tmp_path_factory.mktemp("docs")
    app = create_app({"DATABASE_URL": f"sqlite:///{folder / 'bot.sqlite3'}",
                      "INSTANCE_DIR": str(folder / "instance")})
    app.config["TESTING"] = True
    yield app
    services(app).db.dispose()


@pytest.fixture
def flask_cli(docs_app, monkeypatch):
    """`flask --app wsgi` in-process: Flask's own group (run, shell, routes) with the app's
    commands, loading `docs_app`."""
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "true")  # FlaskGroup sets it; undone after
    return FlaskGroup(create_app=lambda: docs_app, load_dotenv=False, set_debug_flag=False)


def command_path(cli: click.Group, app, words: tuple[str, ...]) -> list[str]:
    """The words that name a command: down the groups while a word names a subcommand.
    A group followed by a word that is none of its subcommands fails (a renamed one)."""
    path: list[str] = []
    command: click.Command = cli
    with click.Context(cli, info_name="flask", obj=ScriptInfo(create_app=lambda: app)) as ctx:
        for word in words:
            if not isinstance(command, click.Group):
                break
            sub = command.get_command(ctx, word)
            assert sub is not None, (
                f"`flask --app wsgi {' '.join([*path, word])}`: no command {word!r} in "
                f"`{' '.join(['flask', *path])}` ({', '.join(command.list_commands(ctx))})")
            path.append(word)
            command = sub
    return path


def test_readme_is_a_front_door():
    """At most 250 lines: reference material lives in docs/."""
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_docs_show_commands():
    """The pattern finds the pages' commands (a broken one would let every page pass)."""
    assert ("send-event",) in COMMANDS and ("doctor",) in COMMANDS
    assert ("webhooks", "configure") in COMMANDS


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=" ".join)
def test_documented_command_exists(words, flask_cli, docs_app):
    """`flask --app wsgi <command> --help` exits 0 for every command the pages show."""
    path = command_path(flask_cli, docs_app, words)
    assert path, f"{COMMANDS[words]}: `flask --app wsgi {' '.join(words)}` names no command"
    result = docs_app.test_cli_runner().invoke(flask_cli, [*path, "--help"])
    assert result.exit_code == 0, (COMMANDS[words], result.output, result.exception)
    assert "Usage:" in result.output


@pytest.mark.parametrize("module", sorted({m for page in PAGES
                                           for m in PYTHON_MODULE.findall(page.read_text())}))
def test_documented_python_module_exists(module):
    """Every `python -m <module>` the pages show can be found (bench.run, ...)."""
    assert importlib.util.find_spec(module) is not None, module


@pytest.mark.parametrize("page, target", relative_links(),
                         ids=lambda v: v.name if isinstance(v, Path) else v)
def test_relative_link_leads_somewhere(page, target):
    """A relative link points to an existing file or folder, and its #anchor to a heading."""
    path, _, anchor = target.partition("#")
    linked = (page.parent / path).resolve() if path else page
    assert linked.exists(), f"{page.name}: {target} does not exist"
    if anchor and linked.suffix == ".md":
        assert anchor in anchors(linked), f"{page.name}: no heading #{anchor} in {linked.name}"


def test_every_setting_is_in_the_configuration_reference():
    """Each setting config.py or gunicorn.conf.py reads has a row in docs/configuration.md."""
    missing = source_settings() - reference_settings()
    assert not missing, f"not in docs/configuration.md: {sorted(missing)}"


def test_the_configuration_reference_names_only_real_settings():
    """No typo: each name it documents is read somewhere (config.py, gunicorn.conf.py, the
    Makefile's HOST, the tests' and benchmark's database URLs)."""
    sources = "".join((ROOT / name).read_text() for name in (
        "config.py", "gunicorn.conf.py", "Makefile", "tests/support/databases.py", "bench/run.py"))
    unknown = {name for name in reference_settings() if name not in sources}
    assert not unknown


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_one_command_convention(page):
    """Commands run in the activated virtualenv: a page that shows `flask` or `python -m`
    commands says `. .venv/bin/activate` before the first, and never spells out
    `.venv/bin/...` (except after `sudo -u bot`, which resets PATH)."""
    text = page.read_text()
    first = min((m.start() for pattern in (FLASK_COMMAND, PYTHON_MODULE)
                 for m in pattern.finditer(text)), default=None)
    if first is not None:
        assert ACTIVATE in text[:first], f"{page.name}: say `{ACTIVATE}` before the first command"
    for match in re.finditer(r"\.venv/bin/\S*", text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        before = text[line_start:match.start()]
        allowed = ((before.endswith(". ") and match.group().startswith(".venv/bin/activate"))
                   or before.endswith(SUDO))
        assert allowed, f"{page.name}: {before + match.group()!r}: use `{ACTIVATE}` instead"
