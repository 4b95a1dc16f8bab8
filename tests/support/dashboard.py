"""Helpers for dashboard tests: a test client that logs in and posts forms with their
CSRF token, all on the public https origin (so the Secure cookie is sent back)."""

import re

ORIGIN = "https://bot.example.com"


def csrf(client, path="/admin/login") -> str:
    page = client.get(path, base_url=ORIGIN).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def login(client, token, **kwargs):
    return client.post("/admin/login", data={"token": token, "csrf": csrf(client)},
                       base_url=ORIGIN, **kwargs)


def get(client, path, **kwargs):
    return client.get(path, base_url=ORIGIN, **kwargs)


def post(client, path, **data):
    token = csrf(client, "/admin/")
    return client.post(path, data={"csrf": token, **data}, base_url=ORIGIN)
