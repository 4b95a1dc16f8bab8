"""The rules file from the command line: `rules check` and `rules try`, sending nothing."""

from pathlib import Path

import pytest

from app import create_app
from tests.support.servers import ROOT
from tests.support.webhooks import message_added, post_event

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


def test_rules_try_says_which_rule_would_fire_and_why(make_app, fake_api):
    """Inside and outside business hours (Europe/Berlin), with no state and sending nothing."""
    app = make_app(RESPONDER_RULES=EXAMPLE)
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


def test_rules_try_shows_the_time_in_the_rules_zone_and_the_media(make_app):
    """--at with another offset, or none at all, is shown in the rules' time zone
    (Europe/Berlin in the example); the media a reply would carry is printed."""
    app = make_app(RESPONDER_RULES=EXAMPLE)
    runner = app.test_cli_runner()
    utc = runner.invoke(args=["rules", "try", "what are your opening times?", "--channel",
                              "whatsapp", "--at", "2026-12-01T09:00+00:00"])
    assert utc.exit_code == 0, utc.output
    assert utc.output.startswith("at 2026-12-01T10:00+01:00 (Europe/Berlin): REPLY")
    assert f"media: {ROOT / 'media' / 'opening-hours.png'}" in utc.output
    local = runner.invoke(args=["rules", "try", "hello", "--at", "2026-07-01T22:00"])
    assert local.output.startswith("at 2026-07-01T22:00+02:00 (Europe/Berlin): ")
    plain = make_app().test_cli_runner().invoke(
        args=["rules", "try", "hello", "--at", "2026-07-01T22:00+02:00"])
    assert plain.output.startswith("at 2026-07-01T20:00+00:00 (UTC): REPLY"), plain.output
    assert "media:" not in plain.output


@pytest.mark.parametrize("args, message", [
    (["--channel", "FAX"], "'FAX' is not one of"),
    (["--conversation", "CH123"], "is not a Conversation SID"),
    (["--conversation", "CH" + "0" * 32], "the bot has no record of CH" + "0" * 32),
])
def test_rules_try_refuses_an_unknown_channel_or_conversation(runner, args, message):
    """A typo must not pass for a state or a channel the bot never sees."""
    result = runner.invoke(args=["rules", "try", "hello", *args])
    assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize("at", ["9999-12-31T23:59", "0001-01-01T00:00"])
def test_rules_try_refuses_a_moment_whose_next_opening_is_no_date(make_app, at):
    """The after-hours reply names the next opening, days later: at the end of the
    calendar there is none (it once ended in an OverflowError's traceback)."""
    runner = make_app(RESPONDER_RULES=EXAMPLE).test_cli_runner()
    result = runner.invoke(args=["rules", "try", "hello", "--at", at])
    assert result.exit_code == 2 and "a year from 1900 to 9000" in result.output, result.output


def test_rules_try_uses_a_known_conversation_state(client, runner):
    """After the bot answered in a conversation, its cooldown holds there."""
    params = message_added()
    assert post_event(client, params).status_code == 200
    result = runner.invoke(args=["rules", "try", "hello again", "--conversation",
                                 params["ConversationSid"]])
    assert result.exit_code == 0 and "COOLDOWN" in result.output, result.output


def test_a_broken_rules_file_stops_the_start_up(env, tmp_path):
    """The server refuses to start, naming the setting, the file and the field."""
    import pytest

    from config import ConfigError

    broken = tmp_path / "rules.toml"
    broken.write_text('[hours]\ntimezone = "Europe/Berlni"\n')
    with pytest.raises(ConfigError, match="RESPONDER_RULES.*timezone"):
        create_app({**env, "RESPONDER_RULES": str(broken)})
