"""The token throttle in a real gunicorn: 300 wrong tokens at once, spread over two
workers, get exactly the per-address limit of 401s and 429s for the rest."""

import re
from concurrent.futures import ThreadPoolExecutor

import requests

from app.web import throttle
from tests.support.servers import gunicorn

TOKEN = "system-throttle-admin-token-0123456789abcdef"
WRONG = "wrong-" * 6


def test_a_burst_of_wrong_tokens_across_workers(tmp_path, server_env):
    env = {**server_env, "ADMIN_TOKEN": TOKEN, "LOG_LEVEL": "INFO"}
    with gunicorn(env, tmp_path / "server.log", workers=2) as server:
        server.wait_workers(2)

        def attempt(i: int) -> int:
            path = "/metrics" if i % 3 == 0 else "/api/queue"
            return requests.get(server.url + path, timeout=10, headers={
                "Authorization": f"Bearer {WRONG}", "Connection": "close"}).status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(attempt, range(300)))
        assert statuses.count(401) == throttle.PER_ADDRESS
        assert statuses.count(429) == 300 - throttle.PER_ADDRESS
        session = requests.Session()
        page = session.get(server.url + "/admin/login", timeout=10).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        login = session.post(server.url + "/admin/login", timeout=10,
                             data={"token": TOKEN, "csrf": csrf}, allow_redirects=False)
        assert login.status_code == 429 and int(login.headers["Retry-After"]) > 0
        assert len(re.findall(r"WARNING .* locked out", server.log)) == 1
        assert WRONG not in server.log and TOKEN not in server.log
