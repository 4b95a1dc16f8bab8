"""Configuration: read once, typed, and validated with one message naming every problem."""

import pytest

from config import ConfigError, load_settings, parse_duration


def test_defaults_are_a_working_dry_run(tmp_path):
    settings = load_settings({"INSTANCE_DIR": str(tmp_path)})
    assert settings.dry_run is True
    assert settings.bot.identity == "support-bot"
    assert settings.web.proxy_count == 0
    assert settings.web.public_base_urls == ()
    assert settings.database.url == f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    assert settings.database.auto_upgrade is True
    assert settings.bot.agent_identities == frozenset()


def test_live_mode_and_typed_values():
    settings = load_settings({
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "1234" * 8,
        "AGENT_IDENTITIES": " alice , bob,, ", "PROXY_COUNT": "1",
        "PUBLIC_BASE_URL": "https://bot.example.com/",
    })
    assert settings.dry_run is False
    assert settings.twilio.auth_token == "1234" * 8  # a digit-only token stays a string
    assert settings.bot.agent_identities == {"alice", "bob"}
    assert settings.web.proxy_count == 1
    assert settings.web.public_base_urls == ("https://bot.example.com",)


def test_settings_are_frozen_and_never_show_the_token():
    """A typo or a write is an error at once; a settings repr (in a log or a traceback)
    never contains the Auth Token, and the bot's part carries no credentials at all."""
    settings = load_settings({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
                              "TWILIO_AUTH_TOKEN": "abcd" * 8})
    with pytest.raises(AttributeError):
        settings.web.proxy_cuont  # noqa: B018
    with pytest.raises(AttributeError):
        settings.bot.identity = "someone-else"
    assert "abcd" * 8 not in repr(settings)
    assert not any("token" in name or "sid" in name for name in vars(settings.bot))


def test_several_public_origins():
    """PUBLIC_BASE_URL may list several origins, comma-separated; each is checked."""
    settings = load_settings({"PUBLIC_BASE_URL": "https://bot.example.com, https://b.example.org/"})
    assert settings.web.public_base_urls == ("https://bot.example.com", "https://b.example.org")
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        load_settings({"PUBLIC_BASE_URL": "https://bot.example.com,ftp://x"})


@pytest.mark.parametrize("given, expected", [
    ("postgres://u:p@db.example.com:5432/bot", "postgresql+psycopg://u:p@db.example.com:5432/bot"),
    ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
])
def test_heroku_postgres_urls_are_accepted(given, expected):
    settings = load_settings({"DATABASE_URL": given})
    assert settings.database.url == expected
    assert settings.database.auto_upgrade is False  # PostgreSQL: the release phase migrates


def test_every_problem_is_named_in_one_message():
    with pytest.raises(ConfigError) as info:
        load_settings({
            "TWILIO_ACCOUNT_SID": "AC123", "PROXY_COUNT": "one", "PUBLIC_BASE_URL": "bot.example.com",
            "LOG_LEVEL": "LOUD", "DATABASE_URL": "mysql://x", "SENDER_IN_PROCESS": "maybe",
        })
    message = str(info.value)
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "PROXY_COUNT", "PUBLIC_BASE_URL",
                 "LOG_LEVEL", "DATABASE_URL", "SENDER_IN_PROCESS"):
        assert name in message
    assert "32 hex" in message
    assert len(info.value.problems) == 7


@pytest.mark.parametrize("given", ["0.05", "4", "10"])
def test_database_timeout_stays_under_twilios_five_seconds(given):
    """A webhook answers within DATABASE_TIMEOUT + 1 s: more than 3.5 s is refused."""
    with pytest.raises(ConfigError, match="DATABASE_TIMEOUT must be at"):
        load_settings({"DATABASE_TIMEOUT": given})


def test_malformed_token_is_named_but_never_echoed():
    with pytest.raises(ConfigError) as info:
        load_settings({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "s3cr3t-value"})
    assert "TWILIO_AUTH_TOKEN" in str(info.value)
    assert "s3cr3t-value" not in str(info.value)


def test_public_base_url_must_be_an_origin():
    with pytest.raises(ConfigError, match="no path"):
        load_settings({"PUBLIC_BASE_URL": "https://bot.example.com/webhooks"})


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("7d", 604800)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_bad_duration():
    with pytest.raises(ValueError):
        parse_duration("two hours")


def test_start_up_fails_with_the_message(tmp_path):
    """create_app refuses to start on a bad configuration, naming the setting."""
    from app import create_app

    with pytest.raises(ConfigError, match="PROXY_COUNT"):
        create_app({"INSTANCE_DIR": str(tmp_path), "PROXY_COUNT": "-1"})
