"""`setup --address` and `setup show`, against the fake API over real HTTP."""

import pytest

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PUBLIC = "https://bot.example.com"
OURS = PUBLIC + "/webhooks/conversations"
NUMBER = "+15017122661"


@pytest.fixture
def runner(make_app):
    return make_app(PUBLIC_BASE_URL=PUBLIC).test_cli_runner()


@pytest.fixture
def resources(fake_api):
    return fake_api.resources


def setup(runner, *args):
    result = runner.invoke(args=["setup", *args])
    return result.exit_code, result.output


def test_without_webhooks_here_the_number_gets_a_scoped_webhook(runner, resources):
    """No account or service webhook posts here: each new conversation gets its own."""
    code, out = setup(runner, "--address", NUMBER)
    assert code == 0, out
    auto = resources.address(NUMBER)["auto_creation"]
    assert auto == {"enabled": True, "type": "webhook", "webhook_url": OURS,
                    "webhook_method": "POST",
                    "webhook_filters": ["onDeliveryUpdated", "onMessageAdded"]}
    assert resources.address(NUMBER)["type"] == "sms"
    assert "do not post onMessageAdded here" in out
    assert f"address configuration of {NUMBER} (created):" in out
    assert "  - auto-creation    off\n  + auto-creation    on\n" in out
    assert f"  + webhook URL      {OURS}\n" in out
    assert out.rstrip().endswith("reach this bot: yes, through the conversation-scoped "
                                 f"webhook ({OURS})")
    code, out = setup(runner, "--address", NUMBER)
    assert code == 0 and f"{NUMBER} is set up already; nothing to change" in out


def test_with_the_account_webhooks_here_the_type_is_default(runner, resources, fake_api):
    """An existing scoped webhook is dropped: otherwise every event would arrive twice."""
    setup(runner, "--address", NUMBER)
    fake_api.webhook_config.account.update(post_webhook_url=OURS,
                                           filters=["onMessageAdded", "onDeliveryUpdated"])
    code, out = setup(runner, "--address", NUMBER)
    assert code == 0, out
    assert resources.address(NUMBER)["auto_creation"] == {"enabled": True, "type": "default"}
    assert "post onMessageAdded here already" in out and "(updated)" in out
    assert "  - type             webhook\n  + type             default\n" in out
    assert "yes, through the account-wide webhooks" in out


def test_a_service_with_its_own_webhooks_here(runner, resources, fake_api):
    service = fake_api.webhook_config.add_service(
        "Support", post_webhook_url=OURS, filters=["onMessageAdded"], method="POST")
    code, out = setup(runner, "--address", "whatsapp:+14155238886", "--service", service)
    assert code == 0, out
    config = resources.address("whatsapp:+14155238886")
    assert config["type"] == "whatsapp"
    assert config["auto_creation"] == {"enabled": True, "type": "default",
                                       "conversation_service_sid": service}
    assert f"service {service} webhooks" in out


def test_dry_run_changes_nothing(runner, resources):
    code, out = setup(runner, "--address", NUMBER, "--dry-run")
    assert code == 0 and "(dry run: nothing changed)" in out
    assert resources.address(NUMBER) is None


@pytest.mark.parametrize("address", ["5017122661", "+0123", "+1501712266112345", "hello"])
def test_a_number_that_is_not_e164_is_refused_before_any_call(runner, fake_api, address):
    code, out = setup(runner, "--address", address)
    assert code == 2 and "is not an E.164 number" in out
    assert fake_api.requests == []


def test_a_whatsapp_address_with_type_sms_is_refused_before_any_call(runner, fake_api):
    """The prefix and --type contradict each other: refused, not silently dropped; a
    plain number with --type whatsapp gets the prefix."""
    code, out = setup(runner, "--address", "whatsapp:" + NUMBER, "--type", "sms")
    assert code == 2 and "is a WhatsApp address but --type is sms" in out
    assert fake_api.requests == []
    code, out = setup(runner, "--address", NUMBER, "--type", "whatsapp", "--dry-run")
    assert code == 0 and f"address configuration of whatsapp:{NUMBER}" in out, out


def test_a_number_handed_to_studio_is_not_taken_without_force(runner, resources, fake_api):
    resources.addresses["IG" + "1" * 32] = {
        "sid": "IG" + "1" * 32, "type": "sms", "address": NUMBER, "friendly_name": None,
        "auto_creation": {"enabled": True, "type": "studio", "studio_flow_sid": "FW" + "2" * 32},
        "account_sid": fake_api.account_sid, "url": "x", "address_country": None,
        "date_created": None, "date_updated": None}
    code, out = setup(runner, "--address", NUMBER)
    assert code == 2 and f"Studio flow FW{'2' * 32}" in out and "nothing changed" in out
    assert resources.address(NUMBER)["auto_creation"]["type"] == "studio"
    code, out = setup(runner, "--address", NUMBER, "--force")
    assert code == 0 and resources.address(NUMBER)["auto_creation"]["type"] == "webhook"


def test_setup_needs_public_base_url(make_app, fake_api):
    result = make_app().test_cli_runner().invoke(args=["setup", "--address", NUMBER])
    assert result.exit_code == 2 and "PUBLIC_BASE_URL is not set" in result.output


def test_show_says_per_number_whether_messages_reach_this_bot(runner, resources, fake_api):
    assert "no address configuration" in setup(runner, "show")[1]
    setup(runner, "--address", NUMBER)
    setup(runner, "--address", "+15005550006")
    setup(runner, "--address", "+15005550007")
    resources.address("+15005550006")["auto_creation"]["enabled"] = False
    resources.address("+15005550007")["auto_creation"].update(
        webhook_url="https://elsewhere.example.net/hook")
    code, out = setup(runner, "show")
    assert code == 0, out
    verdicts = [line.strip() for line in out.splitlines() if "-> reaches" in line]
    assert verdicts[0] == (f"-> reaches this bot: yes, through the conversation-scoped "
                           f"webhook ({OURS})")
    assert verdicts[1].startswith("-> reaches this bot: auto-creation is off")
    assert verdicts[2].startswith("-> reaches this bot: no: new conversations go to service "
                                  f"{resources.default_service_sid}, whose account-wide "
                                  "webhooks do not post onMessageAdded here, and their scoped "
                                  "webhook goes to https://elsewhere.example.net/hook")
    fake_api.webhook_config.account.update(post_webhook_url=OURS, filters=["onMessageAdded"])
    out = setup(runner, "show")[1]
    assert "yes, twice: the conversation-scoped webhook and the account-wide webhooks" in out


def test_doctor_names_a_number_whose_messages_do_not_reach_this_bot(make_app, resources):
    """The doctor's addresses check: OK with none, FAIL naming the number and the fix."""
    from app.provisioning import doctor
    from app.services import services

    app = make_app(PUBLIC_BASE_URL=PUBLIC)

    def check():
        ctx = doctor.Context(settings=services(app).settings, db=services(app).db)
        return doctor.run(ctx, [doctor.check_credentials, doctor.check_addresses])[1]

    assert check().status == "OK" and "no address configuration" in check().detail
    setup(app.test_cli_runner(), "--address", NUMBER)
    assert check().line() == f"OK   addresses: {NUMBER} reach this bot"
    resources.address(NUMBER)["auto_creation"]["enabled"] = False
    assert check().line() == (
        f"FAIL addresses: {NUMBER}: auto-creation is off: a new customer's message creates "
        f"no conversation -- fix: flask --app wsgi setup --address {NUMBER}")
