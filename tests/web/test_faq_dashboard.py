"""The FAQ in the dashboard (issue 19): each customer message's match under it in the
thread (outcome, entry, candidates with scores), an operator marking it wrong there, and
the gaps page listing what the FAQ did not answer, grouped by meaning."""

import json
import re

import pytest
from sqlalchemy import select

from app.services import services
from app.store.models import FaqMatch
from tests.support.dashboard import get, login, post
from tests.support.decisions import CARD_DELIVERY, CARD_LOST_OR_STOLEN
from tests.support.sending import run_until_idle
from tests.support.webhooks import message_added, post_event

pytestmark = pytest.mark.usefixtures("any_conversation")

TOKEN = "t0k3n-for-the-faq-dashboard-0123456789ab"
PUBLIC = "https://bot.example.com"
RULES = CARD_DELIVERY + CARD_LOST_OR_STOLEN


@pytest.fixture
def bot(make_app, tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    return make_app(RESPONDER_RULES=path, ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL=PUBLIC,
                    AUTO_REPLY_COOLDOWN="0")


@pytest.fixture
def browser(bot):
    client = bot.test_client()
    login(client, TOKEN)
    return client


def say(client, body, conversation="CH" + "c" * 32):
    params = message_added(body=body, conversation_sid=conversation)
    response = post_event(client, params, url=PUBLIC + "/webhooks/conversations")
    assert response.status_code == 200
    return params["MessageSid"]


def page(client, path, status=200):
    response = get(client, path)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def under(html, message_sid):
    """What the thread shows under one customer message (its decision and FAQ match)."""
    start = html.index(f'id="m-{message_sid}"')
    return html[start:html.index("</li>", start)]


def test_the_thread_shows_the_match_and_an_operator_marks_it_wrong(bot, browser):
    """Under the message: the entry and the candidates with their scores, a 'Mark wrong'
    button; pressing it comes back to the message, says it is marked and the gaps page
    lists the question as marked wrong, nearest the entry that answered."""
    sid = say(browser, "my card still hasn't arrived, it's been two weeks")
    conversation = "CH" + "c" * 32
    shown = under(page(browser, f"/admin/conversations/{conversation}"), sid)
    assert "Bot answered from the FAQ: <q>card-delivery</q>" in shown
    assert re.search(r'FAQ: answered <span class="code">card-delivery</span> <small>· '
                     r'candidates <span class="code">card-delivery</span> 0\.\d\d', shown)
    assert "Mark wrong" in shown and "marked wrong" not in shown

    response = post(browser, f"/admin/messages/{sid}/faq/wrong")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/admin/conversations/{conversation}#m-{sid}")
    after = page(browser, f"/admin/conversations/{conversation}")
    assert "Marked wrong: it shows on the FAQ gaps page" in after
    assert "marked wrong" in under(after, sid) and "Mark wrong" not in under(after, sid)

    gaps = page(browser, "/admin/faq")
    assert "1 × <q>my card still hasn&#39;t arrived, it&#39;s been two weeks</q>" in gaps
    assert "1 marked wrong" in gaps and '<span class="code">card-delivery</span>' in gaps


def test_marking_wrong_needs_the_form_token_and_a_recorded_match(bot, browser):
    """No CSRF token: refused (the form expired), nothing marked; a message without a FAQ
    match: 404; not a SID: 400."""
    sid = say(browser, "when will my card arrive?")
    refused = browser.post(f"/admin/messages/{sid}/faq/wrong", base_url=PUBLIC)
    assert refused.status_code == 400 and "the form expired" in refused.get_data(as_text=True)
    assert "Mark wrong" in page(browser, f"/admin/conversations/{'CH' + 'c' * 32}")
    assert post(browser, f"/admin/messages/IM{'0' * 32}/faq/wrong").status_code == 404
    assert post(browser, "/admin/messages/not-a-sid/faq/wrong").status_code == 400


def test_the_gaps_page_groups_what_the_faq_did_not_answer(bot, browser):
    """Declined questions that mean the same are one group with its count, largest
    first; the page says what to do with them; an empty period says so."""
    assert "Nothing in this period" in page(browser, "/admin/faq")
    for n, text in enumerate(("do you have a mobile app?", "is there an app for my phone",
                              "what's the weather like")):
        say(browser, text, conversation=f"CH{n:032d}")
    gaps = page(browser, "/admin/faq?since=24h")
    groups = re.findall(r"<h2>(\d+) × <q>(.*?)</q></h2>", gaps)
    assert [count for count, _ in groups] == ["2", "1"]
    assert "2 declined" in gaps and "write the entries the top groups ask for" in gaps
    assert page(browser, "/admin/faq?since=1y", status=400)


def groups_on(html):
    return re.findall(r"<h2>(\d+) × <q>(.*?)</q></h2>", html)


@pytest.mark.parametrize("reask", [False, True])
def test_a_wrong_pick_is_grouped_with_the_question_it_answered(bot, browser, fake_api, reask):
    """The customer asked, the bot asked "did you mean" (and again, after "3" of two),
    the customer answered "2" and the operator marks that answer wrong: one gap, the
    question (not "2" or "3"), counted once, answered wrongly by the entry picked."""
    conversation = "CH" + "d" * 32
    say(browser, "i lost my card or it was stolen", conversation)
    if reask:
        say(browser, "3", conversation)
    pick = say(browser, "2", conversation)
    shown = under(page(browser, f"/admin/conversations/{conversation}"), pick)
    picked = re.search(r"Bot answered from the FAQ: <q>([\w-]+)</q>", shown).group(1)
    assert "not scored: a number picked" in shown
    post(browser, f"/admin/messages/{pick}/faq/wrong")
    gaps = page(browser, "/admin/faq")
    assert groups_on(gaps) == [("1", "i lost my card or it was stolen")]
    assert f'answered wrongly by</small> <span class="code">{picked}</span>' in gaps
    assert "1 marked wrong" in gaps and "asked which" not in gaps


def test_an_answer_without_scores_marked_wrong_keeps_its_own_question(bot, browser):
    """The answer model's answers carry no scores either, and are not picks: marked
    wrong, the customer's own question is the gap, not an older clarification."""
    conversation = "CH" + "f" * 32
    say(browser, "i lost my card or it was stolen", conversation)
    model_answered = "IM" + "9" * 32
    with services(bot).db.transaction() as conn:
        conn.execute(FaqMatch.__table__.insert().values(
            message_sid=model_answered, conversation_sid=conversation, outcome="answer",
            faq_id="card-delivery", text="can I change the PIN of my new card?",
            candidates=json.dumps([{"faq_id": "card-delivery", "score": 0.0}])))
    post(browser, f"/admin/messages/{model_answered}/faq/wrong")
    assert sorted(groups_on(page(browser, "/admin/faq"))) == [
        ("1", "can I change the PIN of my new card?"), ("1", "i lost my card or it was stolen")]


def test_long_and_repeated_questions_stay_readable(bot, browser):
    """A 3,000-character message is cut on the gaps page; the same text sent again is
    counted, not shown twice among the examples."""
    for n in range(3):
        say(browser, "y" * 3000, conversation=f"CH{n:032d}")
    say(browser, "yy " * 10, conversation=f"CH{9:032d}")
    gaps = page(browser, "/admin/faq")
    [(count, title)] = [g for g in groups_on(gaps) if g[1].startswith("yyy")]
    assert count == "3" and len(title) <= 200 and title.endswith("…")
    assert gaps.count("y" * 150) == 1  # the title: no example repeats it


def test_marking_wrong_twice_keeps_the_first_time(bot, browser):
    sid = say(browser, "when will my card arrive?")
    post(browser, f"/admin/messages/{sid}/faq/wrong")
    with services(bot).db.session() as s:
        first = s.scalar(select(FaqMatch.wrong_at).where(FaqMatch.message_sid == sid))
    post(browser, f"/admin/messages/{sid}/faq/wrong")
    with services(bot).db.session() as s:
        assert s.scalar(select(FaqMatch.wrong_at).where(FaqMatch.message_sid == sid)) == first


def test_a_clarification_and_a_handoff_read_in_plain_words(bot, browser):
    """Not "rule 'handoff'" or "FAQ entry 'faq:clarify'"."""
    conversation = "CH" + "e" * 32
    say(browser, "i lost my card or it was stolen", conversation)
    say(browser, "can I talk to a human please", conversation)
    html = page(browser, f"/admin/conversations/{conversation}")
    assert "Bot asked which question was meant" in html
    assert "Bot handed off to an agent" in html
    assert "faq:clarify" not in html and "rule <q>handoff</q>" not in html


def test_searching_a_replys_message_sid_goes_to_that_reply(bot, browser, fake_api):
    """The reply's Twilio MessageSid (from Twilio's console, a receipt): the thread, at
    the reply's own place."""
    say(browser, "when will my card arrive?")
    run_until_idle(services(bot).sender)
    reply_sid = fake_api.created[-1].sid
    response = get(browser, f"/admin/?q={reply_sid}")
    assert response.status_code == 302
    location = response.headers["Location"]
    anchor = location.rpartition("#")[2]
    assert re.fullmatch(r"r-\d+", anchor), location
    path = location.removeprefix(PUBLIC).partition("#")[0]
    assert path == f"/admin/conversations/{'CH' + 'c' * 32}"
    assert f'id="{anchor}"' in page(browser, path)


def test_a_slip_is_undone_in_the_dashboard_the_api_and_the_cli(bot, browser):
    """Marked wrong by mistake: Undo in the thread (or DELETE, or `faq wrong --undo`)
    takes it off the gaps page."""
    sid = say(browser, "when will my card arrive?")
    post(browser, f"/admin/messages/{sid}/faq/wrong")
    assert "1 marked wrong" in page(browser, "/admin/faq")
    response = post(browser, f"/admin/messages/{sid}/faq/wrong", undo="1")
    assert response.status_code == 302
    after = page(browser, response.headers["Location"].removeprefix(PUBLIC).partition("#")[0])
    assert "No longer marked wrong." in after and "Mark wrong" in under(after, sid)
    assert "Nothing in this period" in page(browser, "/admin/faq")

    auth = {"Authorization": f"Bearer {TOKEN}"}
    api = bot.test_client()
    assert api.post(f"/api/messages/{sid}/faq/wrong", headers=auth,
                    base_url=PUBLIC).status_code == 200
    assert api.get(f"/api/messages/{sid}/faq", headers=auth, base_url=PUBLIC).get_json()["wrong_at"]
    undone = api.delete(f"/api/messages/{sid}/faq/wrong", headers=auth, base_url=PUBLIC)
    assert undone.get_json() == {"no_longer_marked_wrong": sid}
    assert api.get(f"/api/messages/{sid}/faq", headers=auth,
                   base_url=PUBLIC).get_json()["wrong_at"] is None

    runner = bot.test_cli_runner()
    assert runner.invoke(args=["faq", "wrong", sid]).output.strip() == f"{sid}: marked wrong"
    result = runner.invoke(args=["faq", "wrong", "--undo", sid])
    assert result.exit_code == 0 and "no longer marked wrong" in result.output
    assert "Nothing in this period" in page(browser, "/admin/faq")


def test_a_replys_message_sid_is_found_after_twilio_echoed_it(bot, browser, fake_api):
    """Twilio posts our reply back as onMessageAdded (ignored: our own message) under the
    same MessageSid: the search still lands on the reply, which the thread shows."""
    say(browser, "when will my card arrive?")
    run_until_idle(services(bot).sender)
    created = fake_api.created[-1]
    echo = message_added(conversation_sid="CH" + "c" * 32, message_sid=created.sid,
                         author="system", body=created.form.get("Body"),
                         extra={"Attributes": created.form.get("Attributes")})
    assert post_event(browser, echo, url=PUBLIC + "/webhooks/conversations").headers[
        "X-Webhook-Outcome"].startswith("ignored: our own message")
    location = get(browser, f"/admin/?q={created.sid}").headers["Location"]
    anchor = location.rpartition("#")[2]
    assert re.fullmatch(r"r-\d+", anchor)
    assert f'id="{anchor}"' in page(browser, location.removeprefix(PUBLIC).partition("#")[0])


def test_a_message_on_an_older_page_of_its_thread_is_shown_where_it_is(bot, browser):
    """A search (or Mark wrong) for a message older than the thread's newest page goes
    to the page that shows it."""
    conversation = "CH" + "a" * 32
    first = say(browser, "when will my card arrive?", conversation)
    for n in range(30):
        say(browser, f"and another thing, number {n}", conversation)
    for response in (get(browser, f"/admin/?q={first}"),
                     post(browser, f"/admin/messages/{first}/faq/wrong")):
        location = response.headers["Location"]
        assert "before=" in location and location.endswith(f"#m-{first}")
        shown = page(browser, location.removeprefix(PUBLIC).partition("#")[0])
        assert f'id="m-{first}"' in shown and "Newest messages →" in shown


def test_a_number_not_offered_is_not_a_question_of_its_own(bot, browser):
    """"4" of two gets the clarification again; nobody marks anything: the gaps list the
    customer's question once, not "4"."""
    conversation = "CH" + "b" * 32
    say(browser, "i lost my card or it was stolen", conversation)
    say(browser, "4", conversation)
    say(browser, "5", conversation)
    assert groups_on(page(browser, "/admin/faq")) == [("1", "i lost my card or it was stolen")]


def test_a_zero_is_a_reask_too(bot, browser):
    """"0" gets the clarification again; the "1" after it, marked wrong, is the
    customer's question, counted once."""
    conversation = "CH" + "9" * 32
    say(browser, "i lost my card or it was stolen", conversation)
    say(browser, "0", conversation)
    pick = say(browser, "1", conversation)
    post(browser, f"/admin/messages/{pick}/faq/wrong")
    assert groups_on(page(browser, "/admin/faq")) == [("1", "i lost my card or it was stolen")]
