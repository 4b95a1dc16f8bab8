"""`.env.example` lists every setting the code reads from the environment, each with a
comment and its default: the file a new installation starts from."""

from __future__ import annotations

import ast
import re
import runpy

import pytest

from config import load_settings
from tests.support.servers import ROOT

EXAMPLE = ROOT / ".env.example"
SETTING = re.compile(r"^(#\s?)?([A-Z][A-Z0-9_]*)=(.*)$")
# Read elsewhere than config.py: gunicorn.conf.py (from the process environment only).
GUNICORN = ("PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "REQUEST_READ_TIMEOUT")


def example() -> dict[str, tuple[str, str]]:
    """Each setting of the file: (its value, the line before it)."""
    lines = EXAMPLE.read_text().splitlines()
    found = {}
    for before, line in zip(["", *lines], lines, strict=False):
        match = SETTING.match(line)
        if match:
            assert match.group(2) not in found, f"{match.group(2)} is listed twice"
            found[match.group(2)] = (match.group(3), before)
    return found


class Recording(dict):
    """An environment that notes every name asked for."""

    def __init__(self, *args):
        super().__init__(*args)
        self.asked = set()

    def get(self, name, default=None):
        self.asked.add(name)
        return super().get(name, default)


def read_by_config() -> set[str]:
    env = Recording()
    load_settings(env)
    return env.asked


def read_from_the_environment() -> dict[str, set[str]]:
    """Names the server's code (not tests, not the benchmark) reads with a literal name
    from os.environ / os.getenv, or from `env` / `environment()` (config's mapping)."""
    found: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in ("tests", "bench", ".venv") or "site-packages" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = None
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                function = ast.unparse(node.func)
                if function in ("os.getenv", "os.environ.get", "env.get",
                                "environment().get"):
                    name = node.args[0].value
            elif (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
                  and ast.unparse(node.value) == "os.environ"
                  and isinstance(node.slice, ast.Constant)):
                name = node.slice.value
            if isinstance(name, str) and re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
                found.setdefault(name, set()).add(str(relative))
    return found


def test_every_setting_read_is_listed():
    """What config.py asks for, and what any module reads from the environment by name
    (gunicorn.conf.py's WEB_CONCURRENCY, PORT, ...), is in .env.example."""
    listed = example()
    elsewhere = read_from_the_environment()
    assert set(GUNICORN) <= set(elsewhere), "the scan no longer finds gunicorn's settings"
    missing = {name: "config.py" for name in read_by_config() if name not in listed}
    missing.update({name: ", ".join(sorted(paths)) for name, paths in elsewhere.items()
                    if name not in listed})
    assert not missing, f"read but not in .env.example: {missing}"


def test_every_listed_setting_is_read():
    """Nothing stale: each name in .env.example is still read by the code."""
    read = read_by_config() | set(read_from_the_environment())
    assert not set(example()) - read


def test_each_setting_has_a_comment_of_its_own():
    for name, (_, before) in example().items():
        assert before.startswith("# ") and not SETTING.match(before), name


@pytest.mark.parametrize("name", sorted(read_by_config()))
def test_the_value_shown_is_the_default(name, tmp_path):
    """Uncommenting a line as it stands changes nothing: its value is the default (empty:
    unset)."""
    value, _ = example()[name]
    base = {} if name == "INSTANCE_DIR" else {"INSTANCE_DIR": str(tmp_path)}
    assert load_settings({**base, name: value}) == load_settings(base)


@pytest.mark.parametrize("name", GUNICORN)
def test_gunicorns_values_shown_are_its_defaults(name, monkeypatch):
    """The same for gunicorn.conf.py's settings: its values with the line uncommented are
    those without."""
    for other in GUNICORN:
        monkeypatch.delenv(other, raising=False)

    def settings():
        return {k: v for k, v in runpy.run_path(str(ROOT / "gunicorn.conf.py")).items()
                if isinstance(v, (int, float, str, bool)) and not k.startswith("__")}

    unset = settings()
    value, _ = example()[name]
    monkeypatch.setenv(name, value)
    assert settings() == unset



def test_the_vm_installs_edits_find_their_lines(tmp_path):
    """The README's VM install fills .env in with `sed -i` on these lines (the Twilio
    credentials, PUBLIC_BASE_URL, PROXY_COUNT): each exists once, and the result is the
    live set-up behind nginx."""
    edits = {r"^TWILIO_ACCOUNT_SID=.*": "TWILIO_ACCOUNT_SID=AC" + "0" * 32,
             r"^TWILIO_AUTH_TOKEN=.*": "TWILIO_AUTH_TOKEN=" + "1" * 32,
             r"^# PUBLIC_BASE_URL=.*": "PUBLIC_BASE_URL=https://bot.example.com",
             r"^PROXY_COUNT=.*": "PROXY_COUNT=1"}
    text = EXAMPLE.read_text()
    for pattern, line in edits.items():
        text, count = re.subn(pattern, line, text, flags=re.M)
        assert count == 1, pattern
    env = {m.group(2): m.group(3) for m in map(SETTING.match, text.splitlines())
           if m and not m.group(1)}  # the lines in force: not commented out
    settings = load_settings({**env, "INSTANCE_DIR": str(tmp_path)})
    assert not settings.dry_run
    assert settings.web.public_base_urls == ("https://bot.example.com",)
    assert settings.web.proxy_count == 1
