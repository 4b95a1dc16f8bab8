"""app/logs.py: what a log line may show of a URL."""

import pytest

from app.logs import without_query


@pytest.mark.parametrize("url, shown", [
    ("/api/stats", "/api/stats"),
    ("/api/stats?token=abc&since=24h", "/api/stats?[redacted]"),
    ("/admin/?", "/admin/?[redacted]"),
    ("/admin/#token=abc", "/admin/?[redacted]"),
    ("https://bot.example.com/webhooks/conversations?tenant=a%20b",
     "https://bot.example.com/webhooks/conversations?[redacted]"),
    ("-", "-"),
    ("", ""),
])
def test_without_query(url, shown):
    assert without_query(url) == shown
