"""app.json (Heroku's app manifest) has the shape Heroku's app.json schema asks for, and
agrees with the Procfile, config.py and gunicorn.conf.py.

The rules checked, from Heroku's app.json schema reference (devcenter, "app.json Schema"):
- top level: only the documented keys (name, description, keywords, website,
  repository, logo, success_url, scripts, env, formation, addons, buildpacks,
  environments, stack, image);
- env: each key a config var name; each value a string (a default) or an object with
  `description`, `value` (always a string), `required` (a boolean, *true when left
  out*) and `generator` (only "secret");
- formation: one object per process type with `quantity` (an integer) and `size`
  (a dyno size name);
- addons: strings or objects with `plan` ("service" or "service:plan"), optional `as`
  and `options`;
- buildpacks: objects with a `url` (a URL or a registry name like heroku/python);
- scripts: `postdeploy` and `pr-predestroy` only.
"""

import json
import re

import pytest

from tests.support.servers import ROOT

APP = json.loads((ROOT / "app.json").read_text())
TOP_LEVEL = {"name", "description", "keywords", "website", "repository", "logo",
             "success_url", "scripts", "env", "formation", "addons", "buildpacks",
             "environments", "stack", "image"}
ENV_KEYS = {"description", "value", "required", "generator"}
DYNO_SIZES = {"eco", "basic", "standard-1x", "standard-2x", "performance-m", "performance-l",
              "performance-l-ram", "performance-xl", "performance-2xl",
              "private-s", "private-m", "private-l", "shield-s", "shield-m", "shield-l"}
PLAN = re.compile(r"[a-z0-9][a-z0-9-]*(:[a-z0-9][a-z0-9-]*)?")
# Without these a deploy cannot work: live mode needs both credentials (config.py refuses
# one without the other; without both the bot only pretends to send), and without
# PUBLIC_BASE_URL only loopback origins are served, so every Twilio webhook gets 403.
REQUIRED = {"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL"}


def config_settings() -> set[str]:
    """Every setting config.py reads (each goes through its reader: reader.text("NAME")...)."""
    source = (ROOT / "config.py").read_text()
    return set(re.findall(r"reader\.\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", source))


def gunicorn_settings() -> set[str]:
    """The environment variables gunicorn.conf.py reads (WEB_CONCURRENCY, ...)."""
    source = (ROOT / "gunicorn.conf.py").read_text()
    return set(re.findall(r"os\.environ(?:\.get\(|\[)\s*[\"']([A-Z][A-Z0-9_]*)", source))


def procfile_types() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip())


def test_only_documented_top_level_keys():
    assert set(APP) <= TOP_LEVEL
    assert 3 <= len(APP["name"]) <= 30 and APP["description"]


@pytest.mark.parametrize("name", sorted(APP["env"]))
def test_each_env_entry_is_well_formed_and_described(name):
    """An object with a description; value a string; required a boolean; no other keys."""
    entry = APP["env"][name]
    assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name)
    assert isinstance(entry, dict) and set(entry) <= ENV_KEYS
    assert isinstance(entry.get("description"), str) and len(entry["description"]) > 10
    assert isinstance(entry.get("value", ""), str)
    assert isinstance(entry.get("required", True), bool)
    assert entry.get("generator", "secret") == "secret"


def test_every_setting_named_exists():
    """Each env entry is read by config.py or gunicorn.conf.py: no typo silently ignored."""
    unknown = set(APP["env"]) - config_settings() - gunicorn_settings()
    assert not unknown


def test_settings_a_deploy_needs_are_required_and_the_rest_are_not():
    """Heroku takes an entry without `required` as required: optional ones say false."""
    required = {name for name, entry in APP["env"].items() if entry.get("required", True)}
    assert REQUIRED <= config_settings()
    assert required - {"PROXY_COUNT"} == REQUIRED
    assert APP["env"]["PROXY_COUNT"]["value"] == "1"  # Heroku's router is one proxy


def test_the_database_comes_from_the_add_on():
    """heroku-postgresql sets DATABASE_URL; app.json must not set it (nor SQLite's folder:
    the dyno's disk is ephemeral)."""
    assert {"DATABASE_URL", "INSTANCE_DIR"}.isdisjoint(APP["env"])
    plans = [a if isinstance(a, str) else a["plan"] for a in APP["addons"]]
    assert all(PLAN.fullmatch(plan) for plan in plans)
    assert any(plan.split(":")[0] == "heroku-postgresql" for plan in plans)
    for addon in APP["addons"]:
        assert isinstance(addon, str) or set(addon) <= {"plan", "as", "options"}


def test_formation_matches_the_procfile():
    """Each formation entry is a Procfile process type (release is a phase, not a dyno),
    with an integer quantity and a known dyno size; web runs."""
    types = procfile_types()
    assert set(APP["formation"]) <= set(types) - {"release"}
    assert APP["formation"]["web"]["quantity"] >= 1
    for entry in APP["formation"].values():
        assert set(entry) <= {"quantity", "size"}
        assert isinstance(entry["quantity"], int) and entry["quantity"] >= 0
        assert entry["size"] in DYNO_SIZES


def test_procfile_runs_migrations_in_the_release_phase():
    types = procfile_types()
    assert types["release"].strip() == "flask --app wsgi db upgrade"
    assert types["web"].strip() == "gunicorn wsgi:app"
    assert types["worker"].strip() == "flask --app wsgi sender"


def test_buildpacks_and_scripts():
    assert APP["buildpacks"] == [{"url": "heroku/python"}]
    assert set(APP.get("scripts", {})) <= {"postdeploy", "pr-predestroy"}
