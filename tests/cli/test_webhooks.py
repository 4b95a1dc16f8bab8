"""`webhooks show` and `webhooks configure`, against the fake API over real HTTP."""

import pytest

from app import create_app
from tests.support.webhooks import AUTH_TOKEN

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PUBLIC = "https://bot.example.com"
OURS = PUBLIC + "/webhooks/conversations"


@pytest.fixture
def runner(make_app):
    return make_app(PUBLIC_BASE_URL=f"{PUBLIC},https://support.example.org").test_cli_runner()


@pytest.fixture
def config(fake_api):
    return fake_api.webhook_config


def test_show_lists_each_scope_and_says_whether_it_reaches_this_server(runner, config):
    """Account-wide and per service, with a verdict; a service without URLs inherits."""
    config.account.update(post_webhook_url="https://old.example.net/hook",
                          filters=["onMessageAdded"])
    sales = config.add_service("Sales", post_webhook_url=OURS, filters=["onMessageAdded"])
    result = runner.invoke(args=["webhooks", "show"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "account-wide:" in out and "https://old.example.net/hook" in out
    assert "-> not this server" in out
    assert f"service {sales} (Sales):" in out
    assert "this server, but without the filters onDeliveryUpdated" in out
    assert "(Default Conversations Service): no webhooks of its own" in out


def test_configure_points_the_account_here_keeping_other_filters(runner, config):
    """URL, method and the handled filters change; a filter set for someone else stays;
    the listing shows before and after; a second run has nothing to do."""
    config.account.update(post_webhook_url="https://old.example.net/hook", method="GET",
                          filters=["onConversationAdded"], pre_webhook_url=None)
    result = runner.invoke(args=["webhooks", "configure"])
    assert result.exit_code == 0, result.output
    assert config.account["post_webhook_url"] == OURS
    assert config.account["method"] == "POST"
    assert set(config.account["filters"]) == {
        "onConversationAdded", "onDeliveryUpdated", "onMessageAdded"}
    assert config.account["target"] == "webhook"
    lines = result.output.splitlines()
    assert "  - post-event URL  https://old.example.net/hook" in lines
    assert f"  + post-event URL  {OURS}" in lines
    assert "  - method          GET" in lines and "  + method          POST" in lines
    assert "    pre-event URL   (none)" in lines
    again = runner.invoke(args=["webhooks", "configure"])
    assert again.exit_code == 0 and "nothing to change" in again.output
    assert len(config.updates) == 1


def test_dry_run_shows_the_change_and_changes_nothing(runner, config):
    result = runner.invoke(args=["webhooks", "configure", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry run: nothing changed" in result.output
    assert f"  + post-event URL  {OURS}" in result.output.splitlines()
    assert config.updates == [] and config.account["post_webhook_url"] is None


def test_configure_one_service_with_its_pre_event_url(runner, config):
    """--service changes that service only; --pre sets the pre-event URL too; another
    origin of PUBLIC_BASE_URL may be chosen with --url."""
    sid = config.add_service("Support")
    url = "https://support.example.org/webhooks/conversations"
    result = runner.invoke(args=["webhooks", "configure", "--service", sid, "--pre",
                                 "--url", url])
    assert result.exit_code == 0, result.output
    assert config.service(sid)["post_webhook_url"] == url
    assert config.service(sid)["pre_webhook_url"] == url + "/pre"
    assert config.account["post_webhook_url"] is None
    assert [scope for scope, _ in config.updates] == [sid]
    unknown = runner.invoke(args=["webhooks", "configure", "--service", "IS" + "0" * 32])
    assert unknown.exit_code == 1 and "no Conversation Service IS000" in unknown.output


@pytest.mark.parametrize(("url", "reason"), [
    ("http://bot.example.com/webhooks/conversations", "is not https"),
    ("https://elsewhere.example.com/webhooks/conversations", "is not in PUBLIC_BASE_URL"),
    ("https://127.0.0.1:5000/webhooks/conversations",
     "127.0.0.1 is a loopback address (this machine): Twilio cannot reach it"),
    ("https://localhost/webhooks/conversations",
     "localhost is this machine (localhost): Twilio cannot reach it"),
    ("https://10.0.0.7/webhooks/conversations",
     "10.0.0.7 is a private network address: Twilio cannot reach it"),
    ("https://169.254.10.1/webhooks/conversations",
     "169.254.10.1 is a link-local address: Twilio cannot reach it"),
])
def test_a_url_this_server_would_not_get_is_refused_unless_forced(runner, config, url, reason):
    refused = runner.invoke(args=["webhooks", "configure", "--url", url])
    assert refused.exit_code == 2
    assert reason in refused.output and "--force" in refused.output
    assert config.updates == []
    forced = runner.invoke(args=["webhooks", "configure", "--url", url, "--force"])
    assert forced.exit_code == 0, forced.output
    assert "warning: " in forced.output and config.account["post_webhook_url"] == url


@pytest.mark.parametrize(("url", "reason"), [
    ("bot.example.com/webhooks/conversations", "is not an http(s) URL"),
    ("ftp://bot.example.com/webhooks/conversations", "is not an http(s) URL"),
    ("https:///webhooks/conversations", "is not an http(s) URL"),
    ("https://bot.example.com:port/webhooks/conversations", "has a malformed host or port"),
    ("https://[::1/webhooks/conversations", "has a malformed host or port"),
    ("https://bot.example.com/web hooks", "has a space in it"),  # was accepted
])
def test_a_malformed_url_is_refused_even_with_force(runner, config, url, reason):
    """--force overrides a judgement (not https, not public, not ours), never a URL
    Twilio could not call at all."""
    for args in ([], ["--force"]):
        refused = runner.invoke(args=["webhooks", "configure", "--url", url, *args])
        assert refused.exit_code == 2 and reason in refused.output, refused.output
        assert "nothing changed" in refused.output and "warning" not in refused.output
    assert config.updates == []


def test_without_public_base_url_or_credentials_nothing_is_configured(env, make_app, config):
    """No PUBLIC_BASE_URL and no --url: refused with the fix; dry-run mode: refused."""
    no_public = make_app().test_cli_runner().invoke(args=["webhooks", "configure"])
    assert no_public.exit_code == 2 and "PUBLIC_BASE_URL is not set" in no_public.output
    dry = create_app({**env, "TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": "",
                      "PUBLIC_BASE_URL": PUBLIC}).test_cli_runner()
    for args in (["webhooks", "configure"], ["webhooks", "show"]):
        result = dry.invoke(args=args)
        assert result.exit_code == 2 and "no Twilio credentials (dry-run mode)" in result.output
    assert config.updates == []


def test_a_flex_target_is_not_switched_without_force(runner, config):
    """Account-wide webhooks routed to Flex: changing the target would cut Flex off."""
    config.account["target"] = "flex"
    result = runner.invoke(args=["webhooks", "configure"])
    assert result.exit_code == 2 and "'flex'" in result.output and "--service" in result.output
    assert config.updates == []


def test_services_with_their_own_webhooks_are_pointed_out(runner, config):
    """After configuring account-wide, a service that overrides it is named."""
    sid = config.add_service("Legacy", post_webhook_url="https://old.example.net/hook")
    result = runner.invoke(args=["webhooks", "configure"])
    assert result.exit_code == 0, result.output
    assert f"note: service {sid} (Legacy) has webhooks of its own" in result.output
    assert f"webhooks configure --service {sid}" in result.output


def test_rejected_credentials_are_reported(runner, fake_api):
    """Twilio's 401 is shown with its code, and the exit status is 1."""
    fake_api.auth_token = AUTH_TOKEN[::-1]
    result = runner.invoke(args=["webhooks", "show"])
    assert result.exit_code == 1
    assert "HTTP 401" in result.output and "20003" in result.output
