"""Configuration: read once, typed, and validated with one message naming every problem."""

import pytest

from config import ConfigError, load_settings, log_format, parse_duration


def test_defaults_are_a_working_dry_run(tmp_path):
    settings = load_settings({"INSTANCE_DIR": str(tmp_path)})
    assert settings.dry_run is True
    assert settings.bot.identity == "support-bot"
    assert settings.web.proxy_count == 0
    assert settings.web.public_base_urls == ()
    assert settings.database.url == f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    assert settings.database.auto_upgrade is True
    assert settings.bot.agent_identities == {"alice@support"}  # the README's example agent


def test_the_example_agent_is_only_a_dry_run_default(tmp_path):
    """Set AGENT_IDENTITIES replaces it; live mode has no agent unless told."""
    assert load_settings({"INSTANCE_DIR": str(tmp_path), "AGENT_IDENTITIES": "bob"}
                         ).bot.agent_identities == {"bob"}
    live = load_settings({"INSTANCE_DIR": str(tmp_path), "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
                          "TWILIO_AUTH_TOKEN": "1" * 32})
    assert live.bot.agent_identities == frozenset()


def test_one_problem_is_one_line(tmp_path):
    """What systemd's status and Heroku's release phase show in full."""
    with pytest.raises(ConfigError) as info:
        load_settings({"INSTANCE_DIR": str(tmp_path), "PROXY_COUNT": "x"})
    assert str(info.value) == "invalid configuration: PROXY_COUNT must be an integer, got 'x'"


def test_a_sqlite_file_outside_the_instance_folder_needs_its_folder(tmp_path):
    """The instance folder is created; any other folder must exist (a typo must not start
    an empty database somewhere new)."""
    instance = tmp_path / "instance"
    settings = load_settings({"INSTANCE_DIR": str(instance),
                              "DATABASE_URL": f"sqlite:///{instance}/bot.sqlite3"})
    assert settings.database.url == f"sqlite:///{instance}/bot.sqlite3"
    assert load_settings({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    with pytest.raises(ConfigError, match=f"the folder {tmp_path / 'typo'} does not exist"):
        load_settings({"DATABASE_URL": f"sqlite:///{tmp_path}/typo/x.db"})


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


@pytest.mark.parametrize("name", ["AUTO_REPLY_TEXT", "HANDOFF_MESSAGE"])
def test_a_reply_text_longer_than_an_sms_is_refused(name):
    """Twilio refuses an SMS body over 1,600 characters (21617): refused at start-up,
    not at the first customer's message."""
    assert load_settings({name: "x" * 1600})
    with pytest.raises(ConfigError, match=f"{name} has 1,601 characters"):
        load_settings({name: "x" * 1601})


def test_malformed_token_is_named_but_never_echoed():
    with pytest.raises(ConfigError) as info:
        load_settings({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "s3cr3t-value"})
    assert "TWILIO_AUTH_TOKEN" in str(info.value)
    assert "s3cr3t-value" not in str(info.value)


@pytest.mark.parametrize("url", [
    "https://bot.example.com/webhooks", "https://bot.example.com#x", "https://bot.example.com?",
    "https://bot.example.com?a=1", "https://u:s3cret@bot.example.com"])
def test_public_base_url_must_be_an_origin(url):
    """Anything but scheme://host[:port] would be pushed to Twilio as a broken webhook
    URL by `webhooks configure` (a fragment moves the path out of the request)."""
    with pytest.raises(ConfigError, match="no path, query, fragment or user name") as info:
        load_settings({"PUBLIC_BASE_URL": url})
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize("env", [
    {"PUBLIC_BASE_URL": "https://bot.example.com:99999"},
    {"TWILIO_API_BASE_URL": "http://127.0.0.1:70000"},
])
def test_a_port_out_of_range_is_a_configuration_error(env):
    """Not a traceback in `doctor` or `webhooks show` later."""
    with pytest.raises(ConfigError, match="port that is not a number from 0 to 65535"):
        load_settings(env)


@pytest.mark.parametrize("name", ["TWILIO_HTTP_TIMEOUT", "DATABASE_TIMEOUT",
                                  "SEND_SETTLE_SECONDS", "SEND_BACKOFF_SECONDS",
                                  "SENDER_POLL_SECONDS"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_infinity_are_not_numbers_here(name, value):
    with pytest.raises(ConfigError, match=f"{name} must be a number"):
        load_settings({name: value})


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


@pytest.mark.parametrize("text", ["99999999999d", "36501d", "9" * 5000])
def test_a_duration_past_100_years_is_refused(text):
    """Longer is a typo, and past what a datetime can hold (a traceback, not a message)."""
    with pytest.raises(ValueError, match="at most 36500d"):
        parse_duration(text)
    with pytest.raises(ConfigError, match="RETENTION: a duration is at most"):
        load_settings({"RETENTION": text})


def test_a_short_admin_token_is_refused_and_says_how_to_make_one():
    """Under 32 characters is refused with the other problems, in one message that
    says how to make a token and never shows the short one."""
    with pytest.raises(ConfigError) as info:
        load_settings({"ADMIN_TOKEN": "hunter2-hunter2-hunter2-hunter2", "PROXY_COUNT": "x"})
    message = str(info.value)
    assert len(info.value.problems) == 2 and "PROXY_COUNT" in message
    assert "ADMIN_TOKEN must be at least 32 characters (it has 31)" in message
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in message
    assert "hunter2" not in message
    token = "x" * 32
    assert load_settings({"ADMIN_TOKEN": token}).web.admin_token == token
    for odd in ("ü" * 32, "x" * 16 + "\t" + "x" * 16):  # could never match a bearer header
        with pytest.raises(ConfigError, match="ADMIN_TOKEN must be printable ASCII"):
            load_settings({"ADMIN_TOKEN": odd})
    phrase = "correct horse battery staple and more words"  # spaces inside: they work
    assert load_settings({"ADMIN_TOKEN": phrase}).web.admin_token == phrase
    assert load_settings({}).web.admin_token == ""  # unset: the operator pages are off


@pytest.mark.parametrize("env, settle", [
    ({}, 60.0),
    ({"TWILIO_HTTP_TIMEOUT": "45"}, 90.0),  # twice a timeout above 30 s
    ({"SEND_SETTLE_SECONDS": "35"}, 35.0),
    ({"TWILIO_HTTP_TIMEOUT": "5", "SEND_SETTLE_SECONDS": "5.5"}, 5.5),
])
def test_settle_time(env, settle):
    """SEND_SETTLE_SECONDS: 60 s unless set, and at least twice TWILIO_HTTP_TIMEOUT."""
    assert load_settings(env).sender.settle_seconds == settle


@pytest.mark.parametrize("value", ["10", "3", "-1", "soon"])
def test_settle_time_must_outlast_the_timeout(value):
    """A settle time within TWILIO_HTTP_TIMEOUT (10 s) would be over before the call
    timed out: refused, like any malformed value."""
    with pytest.raises(ConfigError, match="SEND_SETTLE_SECONDS"):
        load_settings({"SEND_SETTLE_SECONDS": value})


@pytest.mark.parametrize("raw, read", [("json", "json"), (" JSON ", "json"), ("", "text"),
                                       ("text", "text"), ("xml", "text")])
def test_log_format_alone_is_read_as_the_settings_read_it(raw, read):
    """gunicorn's master reads LOG_FORMAT by itself, with the settings' names: the same
    answer as the app's (which refuses to start on `xml`)."""
    assert log_format({"LOG_FORMAT": raw}) == read
    if raw.strip().lower() in ("json", "text", ""):
        assert load_settings({"LOG_FORMAT": raw}).observability.log_format == read


@pytest.mark.parametrize("url, problem", [
    ("postgresql://postgres@127.0.0.1:/db", "cannot be read: a port that is not a number"),
    ("postgres://postgres@127.0.0.1:notaport/db", "cannot be read: a port that is not a number"),
    ("postgresql://postgres@[::1/db", "cannot be read: a port that is not a number"),
    ("sqlite:////tmp/bot.sqlite3?timeout=abc", "cannot be read: ValueError (check its port"),
    ("sqlite://", "an in-memory SQLite database is empty in every process"),
    ("sqlite:///:memory:", "an in-memory SQLite database is empty in every process"),
    ("sqlite:///file::memory:?cache=shared&uri=true", "an in-memory SQLite database is"),
    ("postgresql://postgres:s3cr@t@127.0.0.1/db", "write an '@' in the user name or password"),
])
def test_a_database_url_it_cannot_use_is_refused_in_one_line(url, problem):
    """Each was a traceback in every worker, or (in memory) a healthy-looking server that
    refused every webhook; the password is never quoted."""
    with pytest.raises(ConfigError) as caught:
        load_settings({"DATABASE_URL": url})
    assert "DATABASE_URL" in str(caught.value) and problem in str(caught.value)
    assert "s3cr" not in str(caught.value) and "t@127" not in str(caught.value)


@pytest.mark.parametrize("name", ["TWILIO_API_BASE_URL", "ANSWER_MODEL_URL"])
@pytest.mark.parametrize("url", ["http://AC1:fedcba9876543210@127.0.0.1:5750",
                                 "http://AC1:fedcba9876543210@127.0.0.1:99999",
                                 # a '/' or '?' in the password ends urlsplit's netloc:
                                 "http://AC1:fedcba98/76543210@127.0.0.1:5750",
                                 "http://AC1:12/fedcba98@127.0.0.1:5750",
                                 "http:/AC1:fedcba9876543210@127.0.0.1:5750"])
def test_a_url_with_a_password_is_refused_without_showing_it(name, url):
    """The start-up banner logs the API's URL: a token written into it was logged."""
    with pytest.raises(ConfigError) as caught:
        load_settings({name: url, "ANSWER_MODEL": "m"})
    assert name in str(caught.value) and "***@127.0.0.1" in str(caught.value)
    assert "fedcba" not in str(caught.value)


@pytest.mark.parametrize("setting, problem", [
    ("TWILIO_CONCURRENCY_LIMIT=9223372036854775808", "at most 10,000"),  # then overflowed
    ("TWILIO_HTTP_TIMEOUT=1e23", "at most 600"),  # SQLite's integers in the sender's loop
    ("METRICS_PORT=65536", "at most 65,535"),  # was a thread dying in every worker
    ("SEND_MAX_ATTEMPTS=99999999999999", "at most 1,000,000,000"),  # any number setting
])
def test_numbers_past_what_they_can_mean_are_refused(setting, problem):
    name, value = setting.split("=")
    with pytest.raises(ConfigError, match=f"{name} must be {problem}"):
        load_settings({name: value})


def test_an_unknown_home_in_instance_dir_names_the_setting():
    with pytest.raises(ConfigError, match="INSTANCE_DIR: cannot use the path"):
        load_settings({"INSTANCE_DIR": "~nosuchuser1913/bot"})


def test_a_home_folder_in_paths_is_expanded_as_a_shell_would(monkeypatch, tmp_path):
    """`~` made a folder literally named ~ in the working directory."""
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings({"INSTANCE_DIR": "~/bot", "DATABASE_URL": "sqlite:///~/bot.db"})
    assert settings.instance_dir == tmp_path / "bot"
    assert settings.database.url == f"sqlite:///{tmp_path / 'bot.db'}"


def test_a_rules_path_of_an_unknown_home_names_the_setting():
    with pytest.raises(ConfigError, match="RESPONDER_RULES: cannot use the path"):
        load_settings({"RESPONDER_RULES": "~nosuchuser1913/rules.toml"})
