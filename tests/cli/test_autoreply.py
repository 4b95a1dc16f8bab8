"""The rules file from the command line: `rules check` and `rules try`, sending nothing."""

from pathlib import Path

from app import create_app
from tests.servers import ROOT

EXAMPLE = ROOT / "rules.example.toml"


def test_rules_check_summarises_a_good_file_and_names_what_is_wrong(runner, tmp_path):
    """A good file: OK and a summary; a broken one: exit 1, the file, rule and field."""
    good = runner.invoke(args=["rules", "check", str(EXAMPLE)])
    assert good.exit_code == 0, good.output
    assert "OK" in good.output and "opening-hours" in good.output
    broken = Path(tmp_path / "rules.toml")
    broken.write_text('[[rules]]\nname = "x"\npattern = "("\ntext = "hi"\n')
    bad = runner.invoke(args=["rules", "check", str(broken)])
    assert bad.exit_code == 1
    assert "rules.toml" in bad.output and "'x'" in bad.output and "pattern" in bad.output


def test_rules_try_says_which_rule_would_fire_and_why(env, fake_api):
    """Inside and outside business hours (Europe/Berlin), with no state and sending nothing."""
    app = create_app({**env, "RESPONDER_RULES": str(EXAMPLE)})
    runner = app.test_cli_runner()
    open_ = runner.invoke(args=["rules", "try", "what are your opening times?",
                                "--at", "2026-12-01T10:00"])
    assert open_.exit_code == 0, open_.output
    assert "REPLY" in open_.output and "rule: opening-hours" in open_.output
    closed = runner.invoke(args=["rules", "try", "hello there", "--at", "2026-12-01T22:00"])
    assert "rule: after_hours" in closed.output and "back" in closed.output
    stop = runner.invoke(args=["rules", "try", "STOP"])
    assert "COMPLIANCE_KEYWORD" in stop.output
    assert fake_api.created == []


def test_a_broken_rules_file_stops_the_start_up(env, tmp_path):
    """The server refuses to start, naming the setting, the file and the field."""
    import pytest

    from config import ConfigError

    broken = tmp_path / "rules.toml"
    broken.write_text('[hours]\ntimezone = "Europe/Berlni"\n')
    with pytest.raises(ConfigError, match="RESPONDER_RULES.*timezone"):
        create_app({**env, "RESPONDER_RULES": str(broken)})
