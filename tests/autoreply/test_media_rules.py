"""Media in replies: the rules file's `media` option, checked at load, carried to the outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app import create_app
from app.autoreply import Inbound, Policy, RulesError, decide, load_rules, parse_rules
from app.services import services
from app.store.models import Reply
from app.twilio.media import MAX_BYTES
from config import ConfigError
from tests.support.decisions import NOW, state
from tests.support.webhooks import message_added, post_event

pytestmark = pytest.mark.usefixtures("any_conversation")


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def folder(tmp_path):
    """A rules folder with media/hours.png beside the rules file."""
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "hours.png").write_bytes(PNG)
    return tmp_path


def write_rules(folder, body: str):
    path = folder / "rules.toml"
    path.write_text(body)
    return path


def policy(rules) -> Policy:
    return Policy.build(bot_identity="support-bot", agent_identities=(),
                        auto_reply_text="Thanks!", cooldown=timedelta(0), budget=5,
                        handoff_window=timedelta(0), rules=rules)


def reply_to(rules, body: str, channel: str = "SMS"):
    message = Inbound(body=body, author="+15558675310", channel=channel, attributes="{}",
                      participant_sid=None, received_at=NOW)
    return decide(message, state(), policy(rules), NOW).reply


def test_a_reply_with_media_names_the_file_beside_the_rules(folder):
    """A relative path is the rules file's folder's, whatever the working directory."""
    rules = load_rules(write_rules(folder, '[[rules]]\nname = "hours"\nkeywords = ["hours"]\n'
                                           'text = "Our hours"\nmedia = "media/hours.png"\n'
                                           '[fallback]\nmedia = "media/hours.png"\n'))
    expected = str(folder / "media" / "hours.png")
    assert reply_to(rules, "your hours?").media == expected
    assert reply_to(rules, "your hours?").body == "Our hours"
    alone = reply_to(rules, "hello")  # media without text
    assert (alone.body, alone.media) == (None, expected)
    assert rules.media_sources() == [expected]
    assert f"media: {expected}" in rules.summary()


def test_a_channel_variant_sends_its_own_media_or_none(folder):
    rules = load_rules(write_rules(folder, '[fallback]\ntext = "Hi"\n'
                                           '[fallback.per_channel.WHATSAPP]\ntext = "Hi"\n'
                                           'media = "media/hours.png"\n'))
    assert reply_to(rules, "hello", "SMS").media is None
    assert reply_to(rules, "hello", "WHATSAPP").media == str(folder / "media" / "hours.png")


def test_a_url_is_kept_as_written_and_not_fetched_at_load():
    """A host name is not resolved at load (media.example.com does not exist)."""
    rules = parse_rules('[fallback]\ntext = "Hi"\nmedia = "https://media.example.com/menu.pdf"\n')
    assert reply_to(rules, "hello").media == "https://media.example.com/menu.pdf"


@pytest.mark.parametrize("url", [
    "http://localhost/a.png", "http://LOCALHOST./a.png", "http://cdn.localhost:8080/a.png",
    "http://127.0.0.1/a.png", "http://127.1/a.png", "http://2130706433/a.png",
    "http://0x7f000001/a.png", "http://[::1]/a.png", "http://[::ffff:127.0.0.1]/a.png",
    "http://10.0.0.5/a.png", "http://172.16.0.1/a.png", "https://192.168.1.1/a.png",
    "http://169.254.169.254/latest/meta-data", "http://[fe80::1]/a.png", "http://0.0.0.0/",
    "http://100.64.0.1/a.png", "http://224.0.0.1/a.png", "http://240.0.0.1/a.png",
    "http://[fc00::1]/a.png",
])
def test_a_url_on_loopback_or_a_private_address_stops_the_load(url):
    """The server would fetch it from inside its own network: refused, naming the field.
    (A host name that resolves to such an address is refused when fetched.)"""
    with pytest.raises(RulesError) as caught:
        parse_rules(f'[fallback]\ntext = "Hi"\nmedia = "{url}"\n', "rules.toml")
    assert str(caught.value).startswith(f"rules.toml: fallback.media: {url}: ")
    assert "not a public address" in str(caught.value) or "localhost" in str(caught.value)


@pytest.mark.parametrize("url", ["http://[::1/x.png", "https://[/a.png", "http://:80/a.png"])
def test_a_url_that_cannot_be_read_stops_the_load_naming_it(url):
    """Once a ValueError traceback at start-up ("Invalid IPv6 URL")."""
    with pytest.raises(RulesError) as caught:
        parse_rules(f'[fallback]\ntext = "Hi"\nmedia = "{url}"\n', "rules.toml")
    assert str(caught.value) == f"rules.toml: fallback.media: not a URL: {url!r}"


@pytest.mark.parametrize("url", ["https://93.184.215.14/a.png", "https://[2606:4700::1]/a.png",
                                 "https://localhost.example.com/a.png"])
def test_a_url_on_a_public_address_loads(url):
    assert parse_rules(f'[fallback]\ntext = "Hi"\nmedia = "{url}"\n').fallback is not None


def test_media_outside_the_rules_folder_stops_the_load(folder, tmp_path_factory):
    """A path elsewhere, by .. , as an absolute path or through a symbolic link, is
    refused: the rules file's folder is where its media live."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "secret.png").write_bytes(PNG)
    (folder / "media" / "link.png").symlink_to(elsewhere / "secret.png")
    for media in (f"../{elsewhere.name}/secret.png", str(elsewhere / "secret.png"),
                  "media/link.png"):
        path = write_rules(folder, f'[fallback]\ntext = "Hi"\nmedia = "{media}"\n')
        with pytest.raises(RulesError) as caught:
            load_rules(path)
        assert str(caught.value) == (
            f"{path}: fallback.media: {elsewhere / 'secret.png'} is outside the rules "
            f"file's folder ({folder}); list its folder in media_dirs to send it")


def test_media_dirs_allow_another_folder(folder, tmp_path_factory):
    """media_dirs names more folders (relative to the rules file's, or absolute)."""
    shared = tmp_path_factory.mktemp("shared")
    (shared / "logo.png").write_bytes(PNG)
    for listed in (f"../{shared.name}", str(shared)):
        path = write_rules(folder, f'media_dirs = ["{listed}"]\n'
                                   f'[fallback]\ntext = "Hi"\nmedia = "{shared / "logo.png"}"\n')
        assert reply_to(load_rules(path), "hello").media == str(shared / "logo.png")


def test_a_media_dir_that_is_not_a_folder_stops_the_load(folder):
    path = write_rules(folder, 'media_dirs = ["media", "nowhere"]\n')
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert str(caught.value) == f"{path}: media_dirs[1]: no such folder {folder / 'nowhere'}"


@pytest.mark.parametrize(("media", "message"), [
    ('"media/missing.png"', "no such file"),
    ('"media/text.png"', "its content is not image/png (nor any type Twilio sends)"),
    ('"media/photo.png"', "its content is image/jpeg, not image/png as its name says"),
    ('"media/big.jpg"', "is 5.0 MB; Twilio takes at most 5 MB per file"),
    ('"media/notes.txt"', "content type text/plain is not one Twilio sends"),
    ('"ftp://example.com/a.png"', "only http(s) URLs or file paths"),
    ('""', "String should have at least 1 character"),
])
def test_media_twilio_would_refuse_stops_the_load(folder, media, message):
    """Each problem names the file, the rule and the field, like every other mistake."""
    (folder / "media" / "big.jpg").write_bytes(b"\xff" * (MAX_BYTES + 1))
    (folder / "media" / "notes.txt").write_text("hello")
    (folder / "media" / "text.png").write_text("hello")
    (folder / "media" / "photo.png").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    path = write_rules(folder, f'[[rules]]\nname = "hours"\nkeywords = ["hours"]\n'
                               f'text = "Hi"\nmedia = {media}\n')
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert str(caught.value).startswith(f"{path}: rules[0] 'hours' .media: ")
    assert message in str(caught.value)


def test_media_with_a_content_template_is_refused():
    with pytest.raises(RulesError, match="media goes with a text, not a content_sid"):
        parse_rules(f'[fallback]\ncontent_sid = "HX{"0" * 32}"\nmedia = "https://x.test/a.png"\n')


def test_the_server_refuses_to_start_with_bad_media(env, folder):
    path = write_rules(folder, '[fallback]\ntext = "Hi"\nmedia = "media/gone.png"\n')
    with pytest.raises(ConfigError, match=r"RESPONDER_RULES: .*fallback\.media: no such file"):
        create_app({**env, "RESPONDER_RULES": str(path)})


def test_the_reply_is_queued_with_its_media(env, folder, fake_api):
    """The webhook queues the reply with the configured file; the sender leases it so."""
    path = write_rules(folder, '[fallback]\ntext = "Our hours"\nmedia = "media/hours.png"\n')
    app = create_app({**env, "RESPONDER_RULES": str(path)})
    try:
        response = post_event(app.test_client(), message_added(body="hello"))
        assert response.status_code == 200
        with services(app).db.read() as conn:
            stored = conn.execute(select(Reply.body, Reply.media)).one()
        assert tuple(stored) == ("Our hours", str(folder / "media" / "hours.png"))
    finally:
        services(app).supervisor.stop()  # the request started it (hourly counts)
        services(app).db.dispose()
