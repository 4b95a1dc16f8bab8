"""The auto-reply switch, one action for the CLI and the dashboard: both log who turned
it, and both read where it stands as stored."""

import logging

from tests.support.dashboard import get, login, post

TOKEN = "switch-from-every-door-0123456789abcdef"


def switched_lines(caplog):
    return [r.getMessage() for r in caplog.records if "auto-reply switched" in r.getMessage()]


def test_the_cli_and_the_dashboard_log_who_turned_the_switch(make_app, caplog):
    """`autoreply off` and the dashboard's button: one line each, naming the door; each
    sees what the other set."""
    app = make_app(ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL="https://bot.example.com")
    caplog.set_level(logging.INFO, logger="app.operator")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["autoreply", "off"]).exit_code == 0
    browser = app.test_client()
    login(browser, TOKEN)
    assert "Turn on" in get(browser, "/admin/").get_data(as_text=True)
    assert post(browser, "/admin/autoreply", value="on").status_code == 302
    assert runner.invoke(args=["autoreply", "status"]).output.startswith("auto-reply on: "
                                                                          "runtime switch")
    assert switched_lines(caplog) == ["auto-reply switched value=off by=cli",
                                      "auto-reply switched value=on by=dashboard"]
