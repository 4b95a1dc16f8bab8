"""`conversations ...` and `participants ...`, against the fake API over real HTTP."""

import json

import pytest

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

CUSTOMER = "+15558675310"
NUMBER = "+15017122661"


@pytest.fixture
def resources(fake_api):
    return fake_api.resources


def run(runner, *args):
    result = runner.invoke(args=list(args))
    return result.exit_code, result.output


def test_create_is_the_quickstart_in_one_command(runner, resources):
    """A conversation, an SMS participant bound to our number, and a chat participant."""
    code, out = run(runner, "conversations", "create", "--name", "Order 1042",
                    "--attributes", '{"order": 1042}', "--sms", CUSTOMER, "--proxy", NUMBER,
                    "--chat", "alice@support")
    assert code == 0, out
    [conversation] = resources.conversations.values()
    assert (conversation["friendly_name"], json.loads(conversation["attributes"])) == (
        "Order 1042", {"order": 1042})
    sms, agent = resources.participants[conversation["sid"]]
    assert sms["messaging_binding"] == {"type": "sms", "address": CUSTOMER,
                                        "proxy_address": NUMBER}
    assert agent["identity"] == "alice@support" and agent["messaging_binding"] is None
    assert out.splitlines() == [
        f"created conversation {conversation['sid']} (active, 'Order 1042')",
        f"added {sms['sid']}: SMS {CUSTOMER} via {NUMBER}",
        f"added {agent['sid']}: chat alice@support",
    ]


def test_create_with_a_whatsapp_participant(runner, resources):
    code, out = run(runner, "conversations", "create", "--whatsapp", "whatsapp:" + CUSTOMER,
                    "--proxy", "whatsapp:+14155238886")
    assert code == 0, out
    [members] = resources.participants.values()
    assert members[0]["messaging_binding"]["address"] == "whatsapp:" + CUSTOMER
    assert members[0]["messaging_binding"]["proxy_address"] == "whatsapp:+14155238886"
    assert "tip: --chat IDENTITY" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--sms", CUSTOMER], "an SMS participant needs --proxy"),
    (["--sms", "5558675310", "--proxy", NUMBER], "the address '5558675310' is not an E.164"),
    (["--sms", CUSTOMER, "--proxy", "15017122661"], "the proxy '15017122661' is not an E.164"),
    (["--sms", "whatsapp:" + CUSTOMER, "--proxy", NUMBER], "is a WhatsApp address"),
    (["--proxy", NUMBER], "--proxy goes with --sms or --whatsapp"),
    (["--attributes", "[1, 2]"], "attributes must be a JSON object"),
    (["--attributes", "{'a': 1}"], "attributes are not JSON"),
    (["--attributes", json.dumps({"x": "a" * 16 * 1024})],
     "Twilio takes at most 16 KB (16384 bytes)"),
    (["--name", "n" * 257], "Twilio takes at most 256"),
])
def test_invalid_input_is_refused_before_any_call(runner, fake_api, args, message):
    code, out = run(runner, "conversations", "create", *args)
    assert code == 2 and message in out, out
    assert fake_api.requests == []


def test_a_twilio_error_is_shown_with_its_code_and_what_was_done(runner, resources):
    """Twilio refuses a binding already in an open conversation (50416): the new
    conversation exists without it, and the message says so and how to go on."""
    run(runner, "conversations", "create", "--sms", CUSTOMER, "--proxy", NUMBER)
    code, out = run(runner, "conversations", "create", "--sms", CUSTOMER, "--proxy", NUMBER)
    assert code == 1
    second = list(resources.conversations)[1]
    assert f"error: adding the SMS participant {CUSTOMER} (via {NUMBER}) to {second}: " \
           "HTTP 409, Twilio error 50416: Unable to create record: A binding for this " \
           "participant and proxy address already exists" in out
    assert out.splitlines()[1].endswith(" -- https://www.twilio.com/docs/api/errors/50416")
    assert f"note: conversation {second} exists without the SMS participant" in out


def test_list_filters_by_state_and_close_closes(runner, resources):
    run(runner, "conversations", "create", "--name", "first")
    run(runner, "conversations", "create", "--name", "second")
    first, second = resources.conversations
    code, out = run(runner, "conversations", "close", first)
    assert (code, out.strip()) == (0, f"{first}: state closed")
    out = run(runner, "conversations", "list", "--state", "active")[1]
    assert second in out and first not in out and "second" in out
    out = run(runner, "conversations", "list", "--state", "closed")[1]
    assert first in out and second not in out
    assert run(runner, "conversations", "list", "--state", "inactive")[1].strip() == \
        "no conversations in state inactive"


def test_show_lists_participants_and_the_last_messages_with_delivery(runner, fake_api,
                                                                     resources):
    run(runner, "conversations", "create", "--sms", CUSTOMER, "--proxy", NUMBER,
        "--attributes", '{"vip": true}')
    [sid] = resources.conversations
    [member] = resources.participants[sid]
    fake_api.add_message(sid, CUSTOMER, "Where is my order?")
    reply = fake_api.add_message(sid, "support-bot", "Thanks! An agent will reply.")
    fake_api.add_receipt(sid, reply["sid"], "failed", 30007)
    code, out = run(runner, "conversations", "show", sid)
    assert code == 0, out
    assert out.splitlines() == [
        f"{sid} active",
        '  attributes: {"vip":true}',
        "participants (1):",
        f"  {member['sid']} SMS {CUSTOMER} via {NUMBER} attributes={{}}",
        "messages (newest 10):",
        *[line for line in out.splitlines() if line.startswith("  #")],
    ]
    messages = [line for line in out.splitlines() if line.startswith("  #")]
    assert messages[0].endswith(f"{CUSTOMER}: Where is my order? -- no receipts")
    assert messages[1].endswith("support-bot: Thanks! An agent will reply. -- failed 30007 "
                                "(filtered by the carrier as spam)")


def test_participants_add_and_remove(runner, resources):
    run(runner, "conversations", "create")
    [sid] = resources.conversations
    code, out = run(runner, "participants", "add", sid, "--chat", "bob@support",
                    "--attributes", '{"role": "agent"}')
    assert code == 0, out
    [member] = resources.participants[sid]
    assert json.loads(member["attributes"]) == {"role": "agent"}
    assert out.strip() == f"added {member['sid']} to {sid}: chat bob@support"
    code, out = run(runner, "participants", "remove", sid, member["sid"])
    assert (code, out.strip()) == (0, f"removed {member['sid']} from {sid}")
    assert resources.participants[sid] == []
    code, out = run(runner, "participants", "remove", sid, member["sid"])
    assert (code, out.strip()) == (1, f"error: {member['sid']} is not a participant of {sid}: "
                                      f"nothing removed (`conversations show {sid}` lists its "
                                      "participants)")
    code, out = run(runner, "participants", "add", sid, "--chat", "a", "--sms", CUSTOMER,
                    "--proxy", NUMBER)
    assert code == 2 and "exactly one of --sms, --whatsapp or --chat" in out


@pytest.mark.parametrize("args", [["conversations", "show", "CH123"],
                                  ["conversations", "close", "IM" + "0" * 32],
                                  ["participants", "remove", "CH" + "0" * 32, "+15558675310"]])
def test_bad_sids_are_refused_before_any_call(runner, fake_api, args):
    code, out = run(runner, *args)
    assert code == 2 and "is not a" in out and fake_api.requests == []
