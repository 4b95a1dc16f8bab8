"""`rules reload`: a checked file, picked up whole by every process; a broken one refused."""

import pytest

from app.services import services
from tests.support.webhooks import message_added, post_event

pytestmark = pytest.mark.usefixtures("any_conversation")


BEFORE = '[fallback]\ntext = "Old fallback."\n'
AFTER = ('[fallback]\ntext = "New fallback."\n'
         '[[faq]]\nid = "card"\nquestions = ["When will my card arrive?", '
         '"My card has not arrived"]\nanswer = "Within 7 days."\n')


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(BEFORE)
    return path


def reloader(app):
    [loop] = [loop for loop in services(app).supervisor.loops if loop.name == "rules-reload"]
    return loop


def fallback(app):
    return services(app).processor.policy.rules.fallback.default.text.source


def outcome(app, text):
    return post_event(app.test_client(), message_added(body=text)).headers["X-Webhook-Outcome"]


def test_reload_swaps_in_the_new_rules_in_every_process(make_app, rules_file):
    """Two processes (apps) on one database: after `rules reload`, each one's next check
    loads the file, FAQ included, and its next decision uses it."""
    first, second = make_app(RESPONDER_RULES=rules_file), make_app(RESPONDER_RULES=rules_file)
    for app in (first, second):
        assert reloader(app).check() is False  # the baseline: nothing asked yet
    rules_file.write_text(AFTER)
    result = first.test_cli_runner().invoke(args=["rules", "reload"])
    assert result.exit_code == 0, result.output
    assert "every process loads it within 2 s" in result.output
    for app in (first, second):
        assert fallback(app) == "Old fallback."
        assert reloader(app).check() is True
        assert reloader(app).check() is False  # once
        assert fallback(app) == "New fallback."
        assert "FAQ 'card'" in outcome(app, "my card has not arrived yet")
        assert services(app).catch_up.policy is services(app).processor.policy


def test_a_broken_file_is_refused_and_nothing_changes(make_app, rules_file):
    app = make_app(RESPONDER_RULES=rules_file)
    reloader(app).check()
    rules_file.write_text('[fallback]\ntext = "{{ nope }}"\n')
    result = app.test_cli_runner().invoke(args=["rules", "reload"])
    assert result.exit_code == 1
    assert "unknown placeholder nope" in result.output
    assert "nothing reloaded" in result.output
    assert reloader(app).check() is False
    assert fallback(app) == "Old fallback."


def test_a_file_broken_after_the_command_keeps_the_old_rules(make_app, rules_file):
    """Checked by the command, edited again before a process loads it: the process logs
    the problem and keeps what it has, whole."""
    app = make_app(RESPONDER_RULES=rules_file)
    reloader(app).check()
    rules_file.write_text(AFTER)
    assert app.test_cli_runner().invoke(args=["rules", "reload"]).exit_code == 0
    rules_file.write_text("[fallback\n")
    assert reloader(app).check() is False
    assert fallback(app) == "Old fallback."


@pytest.mark.parametrize("kind", ["csv", "markdown-folder"])
def test_a_changed_knowledge_file_alone_is_reloaded(make_app, tmp_path, kind):
    """The rules file names `knowledge = ...`; after an earlier reload only that file (or
    one article in that folder) changes: `rules reload` still makes every process load
    the new entry (the digest it stores covers the knowledge too)."""
    rules = tmp_path / "rules.toml"
    if kind == "csv":
        source = tmp_path / "faq.csv"
        source.write_text("question,answer,id\nHow long is delivery?,Two days.,delivery\n")
    else:
        source = tmp_path / "articles"
        source.mkdir()
        (source / "delivery.md").write_text("# How long is delivery?\n\nTwo days.\n")
    rules.write_text(f'knowledge = "{source.name}"\n[fallback]\ntext = "Old fallback."\n')
    app = make_app(RESPONDER_RULES=rules)
    reloader(app).check()
    assert app.test_cli_runner().invoke(args=["rules", "reload"]).exit_code == 0  # earlier
    assert reloader(app).check() is True
    assert "FAQ" not in outcome(app, "how long is the warranty?")
    if kind == "csv":
        with source.open("a") as file:
            file.write("How long is the warranty?,Two years.,warranty\n")
    else:
        (source / "warranty.md").write_text("# How long is the warranty?\n\nTwo years.\n")
    result = app.test_cli_runner().invoke(args=["rules", "reload"])
    assert result.exit_code == 0, result.output
    assert reloader(app).check() is True
    assert "FAQ 'warranty'" in outcome(app, "how long is the warranty?")


def test_a_process_started_on_an_older_file_reloads_at_the_next_command(make_app, rules_file):
    """Reloaded to B; a process (a replaced worker) then starts while the file is A again;
    the file goes back to B and `rules reload` stores B's digest a second time: that
    process must still load it, though the digest is one it saw before."""
    first = make_app(RESPONDER_RULES=rules_file)
    reloader(first).check()
    rules_file.write_text(AFTER)
    assert first.test_cli_runner().invoke(args=["rules", "reload"]).exit_code == 0
    assert reloader(first).check() is True
    rules_file.write_text(BEFORE)
    late = make_app(RESPONDER_RULES=rules_file)  # starts on A, with B's digest stored
    assert reloader(late).check() is False and fallback(late) == "Old fallback."
    rules_file.write_text(AFTER)
    assert first.test_cli_runner().invoke(args=["rules", "reload"]).exit_code == 0
    assert reloader(late).check() is True
    assert fallback(late) == "New fallback."


def test_a_rules_file_with_a_byte_order_mark_reloads_its_knowledge_file(make_app, tmp_path):
    """Notepad saves UTF-8 with a BOM, which the loader accepts; the digest must read the
    `knowledge` setting through it, or an edited CSV would never count as a change."""
    from app.autoreply.fingerprint import digest

    (tmp_path / "faq.csv").write_text("question,answer,id\nWhen will my card arrive?,Soon.,card\n")
    rules = tmp_path / "rules.toml"
    rules.write_bytes(b"\xef\xbb\xbf" + b'knowledge = "faq.csv"\n[fallback]\ntext = "x"\n')
    before = digest(rules)
    with (tmp_path / "faq.csv").open("a") as csv:
        csv.write("Do you ship abroad?,Yes.,ship\n")
    assert digest(rules) != before


def test_a_stored_digest_that_disappears_does_not_stop_the_reloads(make_app, rules_file):
    """The switch row deleted by hand (or a restored backup without it) after a reload:
    the process loads the file once more and goes on checking, instead of its loop dying
    on the missing value (and with it every later reload, unnoticed)."""
    from sqlalchemy import text

    app = make_app(RESPONDER_RULES=rules_file)
    reloader(app).check()
    rules_file.write_text(AFTER)
    assert app.test_cli_runner().invoke(args=["rules", "reload"]).exit_code == 0
    assert reloader(app).check() is True
    with services(app).db.engine.begin() as conn:
        conn.execute(text("DELETE FROM switches WHERE name = 'rules'"))
    assert reloader(app).check() is True  # the file as it is now: AFTER again
    assert reloader(app).check() is False
    rules_file.write_text(BEFORE)
    assert app.test_cli_runner().invoke(args=["rules", "reload"]).exit_code == 0
    assert reloader(app).check() is True
    assert fallback(app) == "Old fallback."
