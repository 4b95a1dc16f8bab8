"""FAQ answers through the webhook: answered, clarified then picked by number, declined;
each match recorded with the decision and shown by `why`, marked wrong, listed in gaps."""

import json

import pytest
from sqlalchemy import select

from app.services import services
from app.store.models import Conversation, FaqMatch
from tests.support.decisions import CARD_DELIVERY, CARD_LOST_OR_STOLEN
from tests.support.sending import run_until_idle
from tests.support.webhooks import message_added, post_event

pytestmark = pytest.mark.usefixtures("any_conversation")


RULES = CARD_DELIVERY + CARD_LOST_OR_STOLEN


@pytest.fixture
def faq_app(make_app, tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    return make_app(RESPONDER_RULES=path, AUTO_REPLY_COOLDOWN="1h")


def sent_bodies(app, fake_api):
    run_until_idle(services(app).sender)
    return [c.form.get("Body") for c in fake_api.created]


def matches(app):
    with services(app).db.session() as s:
        return s.scalars(select(FaqMatch).order_by(FaqMatch.id)).all()


def test_a_question_gets_the_faq_answer_and_the_match_is_recorded(faq_app, fake_api):
    """The issue's example, end to end: the answer is sent, not the fallback; the match
    (outcome, entry, candidates with scores) is stored and `why` prints it."""
    client = faq_app.test_client()
    params = message_added(body="my card still hasn't arrived, it's been two weeks")
    response = post_event(client, params)
    assert response.status_code == 200
    assert "FAQ 'card-delivery'" in response.headers["X-Webhook-Outcome"]
    assert sent_bodies(faq_app, fake_api) == ["Cards arrive within 7 working days."]
    [match] = matches(faq_app)
    assert (match.outcome, match.faq_id, match.message_sid) == (
        "answer", "card-delivery", params["MessageSid"])
    assert json.loads(match.candidates)[0]["faq_id"] == "card-delivery"
    why = faq_app.test_cli_runner().invoke(args=["why", params["MessageSid"]])
    assert "faq: answer card-delivery; candidates card-delivery 0." in why.output


def offered_ids(app, conversation: str) -> list[str]:
    """The FAQ ids the conversation's last clarification offered, in their order."""
    with services(app).db.session() as s:
        offered = s.get(Conversation, conversation).faq_offered
    return offered.split(",") if offered else []


def clarified(client, app) -> tuple[str, list[str]]:
    """A new conversation whose first message the bot answered with "Did you mean: ...":
    its SID and the ids offered."""
    first = message_added(body="i lost my card or it was stolen")
    post_event(client, first)
    return first["ConversationSid"], offered_ids(app, first["ConversationSid"])


def test_clarify_then_the_number_gets_that_entry_even_within_the_cooldown(faq_app, fake_api):
    """"Did you mean: 1) ... 2) ...?", then "2": the second entry's answer, right away."""
    client = faq_app.test_client()
    first = message_added(body="i lost my card or it was stolen")
    post_event(client, first)
    [question] = sent_bodies(faq_app, fake_api)
    assert question.startswith("Did you mean: 1) ") and question.endswith("Reply with a number.")
    with services(faq_app).db.session() as s:
        offered = s.get(Conversation, first["ConversationSid"]).faq_offered.split(",")
    answers = {"card-lost": "Block it in the app right away.",
               "card-stolen": "Block it in the app and report the theft to the police."}
    # "thanks" first: under the cooldown the bot says nothing, so its offer still stands.
    thanks = post_event(client, message_added(body="thanks",
                                              conversation_sid=first["ConversationSid"]))
    assert thanks.headers["X-Webhook-Outcome"].startswith("ignored: cooldown")
    post_event(client, message_added(body="two", conversation_sid=first["ConversationSid"]))
    assert sent_bodies(faq_app, fake_api)[1] == answers[offered[1]]
    with services(faq_app).db.session() as s:
        assert s.get(Conversation, first["ConversationSid"]).faq_offered is None  # used up
    assert [m.outcome for m in matches(faq_app)] == ["clarify", "decline", "answer"]


def test_the_offer_stands_while_the_bot_stays_silent_for_any_reason(make_app, tmp_path,
                                                                    fake_api):
    """A rules file with only an FAQ (no fallback): "ok thanks" after the question gets
    no reply (no rule matched), and the "2" after it still picks."""
    path = tmp_path / "faq-only.toml"
    path.write_text(RULES.replace('[fallback]\ntext = "We\'ll get back to you soon."\n', ""))
    app = make_app(RESPONDER_RULES=path, AUTO_REPLY_COOLDOWN="0")
    client = app.test_client()
    first = message_added(body="i lost my card or it was stolen")
    post_event(client, first)
    conversation = first["ConversationSid"]
    with services(app).db.session() as s:
        offered = s.get(Conversation, conversation).faq_offered.split(",")
    silent = post_event(client, message_added(body="ok thanks", conversation_sid=conversation))
    assert silent.headers["X-Webhook-Outcome"].startswith("ignored: no rule matched")
    picked = post_event(client, message_added(body="2", conversation_sid=conversation))
    assert f"FAQ '{offered[1]}'" in picked.headers["X-Webhook-Outcome"]


def test_an_agent_writing_ends_the_offer(faq_app, fake_api):
    """After an agent's message a number is the customer's answer to them, not a pick."""
    client = faq_app.test_client()
    first = message_added(body="i lost my card or it was stolen")
    post_event(client, first)
    conversation = first["ConversationSid"]
    with services(faq_app).db.session() as s:
        assert s.get(Conversation, conversation).faq_offered
    post_event(client, message_added(author="alice@support", conversation_sid=conversation,
                                     body="How many cards did you order?"))
    with services(faq_app).db.session() as s:
        assert s.get(Conversation, conversation).faq_offered is None


def test_declined_and_wrong_decisions_show_in_gaps(faq_app, fake_api):
    """Questions the FAQ could not answer are grouped with counts; an answer an operator
    marks wrong joins them."""
    client = faq_app.test_client()
    runner = faq_app.test_cli_runner()
    empty = runner.invoke(args=["faq", "gaps", "--json"])
    assert empty.exit_code == 0 and empty.stdout == ""  # nothing a JSON reader would choke on
    for text in ("do you have a mobile app?", "is there an app for my phone",
                 "what's the weather like"):
        post_event(client, message_added(body=text))
    answered = message_added(body="when will my card arrive?")
    post_event(client, answered)
    marked = runner.invoke(args=["faq", "wrong", answered["MessageSid"]])
    assert marked.exit_code == 0, marked.output
    assert runner.invoke(args=["faq", "wrong", "IM" + "0" * 32]).exit_code == 1
    gaps = runner.invoke(args=["faq", "gaps", "--json"])
    groups = [json.loads(line) for line in gaps.output.splitlines()]
    assert groups[0]["count"] == 2 and groups[0]["declined"] == 2
    assert {"do you have a mobile app?", "is there an app for my phone"} == set(
        groups[0]["examples"])
    assert sum(g["marked_wrong"] for g in groups) == 1
    assert sum(g["count"] for g in groups) == 4


def test_the_api_shows_a_match_marks_it_wrong_and_lists_the_gaps(make_app, tmp_path, fake_api):
    """/api/ (behind ADMIN_TOKEN): the match with its scores, the operator's "wrong", the
    gaps; an unknown message is a 404, a malformed SID a 400."""
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    token = "t" * 32
    app = make_app(RESPONDER_RULES=path, ADMIN_TOKEN=token)
    client, auth = app.test_client(), {"Authorization": f"Bearer {token}"}
    params = message_added(body="when will my card arrive?")
    post_event(client, params)
    sid = params["MessageSid"]
    found = client.get(f"/api/messages/{sid}/faq", headers=auth).get_json()
    assert (found["outcome"], found["faq_id"], found["wrong_at"]) == (
        "answer", "card-delivery", None)
    assert found["candidates"][0]["faq_id"] == "card-delivery"
    assert client.post(f"/api/messages/{sid}/faq/wrong", headers=auth).status_code == 200
    assert client.get(f"/api/messages/{sid}/faq", headers=auth).get_json()["wrong_at"]
    gaps = client.get("/api/faq/gaps?since=1h", headers=auth).get_json()["gaps"]
    assert [(g["count"], g["marked_wrong"]) for g in gaps] == [(1, 1)]
    assert client.get("/api/messages/IMunknown/faq", headers=auth).status_code == 404
    assert client.post("/api/messages/IM!/faq/wrong", headers=auth).status_code in (400, 404)
    assert client.get(f"/api/messages/{sid}/faq").status_code == 401


def test_a_digit_int_cannot_read_picks_an_option_and_keeps_the_gaps_report_working(
        faq_app, fake_api):
    """"\u136a" (Ethiopic two) is a digit to str.isdigit() but not to int(): it once made
    the webhook answer 500 (the message lost) and, stored with a question, every FAQ gaps
    report fail for as long as the question was kept."""
    client = faq_app.test_client()
    conversation, offered = clarified(client, faq_app)
    pick = message_added(body="\u136a", conversation_sid=conversation)
    picked = post_event(client, pick)
    assert picked.status_code == 200
    assert f"FAQ '{offered[1]}'" in picked.headers["X-Webhook-Outcome"]
    why = faq_app.test_cli_runner().invoke(args=["why", pick["MessageSid"]])
    assert (f"faq: answer {offered[1]}; not scored: a number picked from a clarification"
            in why.output), why.output  # not "0.00" as if the entries had been scored
    odd = post_event(client, message_added(body="i lost my card or it was stolen \u24f6"))
    assert odd.status_code == 200
    gaps = faq_app.test_cli_runner().invoke(args=["faq", "gaps", "--json"])
    assert gaps.exit_code == 0, gaps.output
    examples = [e for line in gaps.output.splitlines() for e in json.loads(line)["examples"]]
    assert "i lost my card or it was stolen \u24f6" in examples


@pytest.mark.parametrize("between", ["HELP", "info"])
def test_help_after_a_clarification_keeps_the_offer(faq_app, fake_api, between):
    """HELP and INFO are answered by Twilio and end nothing (the customer still listens):
    the "2" after one still picks, as after a "thanks"."""
    client = faq_app.test_client()
    conversation, offered = clarified(client, faq_app)
    helped = post_event(client, message_added(body=between, conversation_sid=conversation))
    assert helped.headers["X-Webhook-Outcome"].startswith("ignored")
    picked = post_event(client, message_added(body="2", conversation_sid=conversation))
    assert f"FAQ '{offered[1]}'" in picked.headers["X-Webhook-Outcome"]
    stopped, _ = clarified(client, faq_app)
    post_event(client, message_added(body="STOP", conversation_sid=stopped))
    assert offered_ids(faq_app, stopped) == []  # an opt-out still ends it
