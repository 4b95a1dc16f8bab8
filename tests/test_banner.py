"""The start-up banner: the mode, the agents, the rules file and the dashboard."""

import logging

from app.banner import lines
from config import load_settings
from tests.support.servers import ROOT


def said(env, token=None) -> list[str]:
    return [f"{logging.getLevelName(level)} {text}"
            for level, text in lines(load_settings(env), token)]


def test_dry_run_shows_the_token_the_example_agent_and_what_is_off(tmp_path):
    out = said({"INSTANCE_DIR": str(tmp_path)}, "f00d" * 8)
    assert out[0].startswith("WARNING DRY-RUN MODE") and "f00d" * 8 in out[0]
    assert str(tmp_path / "dev-auth-token") in out[0]
    assert "Agents: alice@support (an example, while AGENT_IDENTITIES is unset)." in out[0]
    assert out[1:] == [
        "INFO auto-reply rules: none (RESPONDER_RULES is not set): every customer gets "
        "AUTO_REPLY_TEXT",
        "INFO dashboard (/admin) and API (/api/) are off: set ADMIN_TOKEN to turn them on"]


def test_live_mode_names_the_rules_file_and_the_dashboard(tmp_path):
    rules = ROOT / "rules.example.toml"
    out = said({"INSTANCE_DIR": str(tmp_path), "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
                "TWILIO_AUTH_TOKEN": "1" * 32, "AGENT_IDENTITIES": "bob@support",
                "RESPONDER_RULES": str(rules), "ADMIN_TOKEN": "t" * 32})
    assert out == [
        f"INFO live mode: account AC{'0' * 32}, replies sent as 'support-bot'; agents: "
        "bob@support",
        f"INFO auto-reply rules: {rules}",
        "INFO dashboard (/admin) and API (/api/) are on (ADMIN_TOKEN is set)"]
    assert "1" * 32 not in " ".join(out)


def test_a_lease_no_longer_than_a_call_is_a_warning(tmp_path):
    """SEND_LEASE=2s with calls of 5 s: the reply was taken over in flight 13 times in 25 s
    (nothing sent twice). Refusing it would cost the fault tests their short leases; the
    operator is told."""
    env = {"INSTANCE_DIR": str(tmp_path), "TWILIO_HTTP_TIMEOUT": "10"}
    assert not [line for line in said(env) if "SEND_LEASE" in line]
    [line] = [line for line in said({**env, "SEND_LEASE": "15s"}) if "SEND_LEASE" in line]
    assert line.startswith("WARNING SEND_LEASE (15 s) is not longer than twice "
                           "TWILIO_HTTP_TIMEOUT (10 s)")  # a look-up, then a create
