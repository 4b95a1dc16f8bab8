"""A local fake of an OpenAI-compatible chat-completions endpoint, over real HTTP.

Serves POST /v1/chat/completions like OpenAI, vLLM or Ollama do, answering with what
`reply(request)` returns (a string: the message's content), and records every request's
JSON. `delay` holds each answer that long (a timeout to provoke), `drip` sends it a byte
at a time (a server that trickles: each read is quick, the whole is not); `fail(status)` answers
the next calls with that HTTP error. A customer's text the fake receives is found in
`requests`, so tests can check where the prompt put it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self, reply: Callable[[dict], str] | None = None):
        self.reply = reply or (lambda request: '{"action": "decline", "text": "", "cited": []}')
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.delay = 0.0
        self.drip = 0.0  # seconds between the body's bytes: a server that trickles
        self.failures: list[int] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def fail(self, status: int, times: int = 1) -> None:
        self.failures += [status] * times

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(body)
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found"}})
                if fake.delay:
                    time.sleep(fake.delay)
                if fake.failures:
                    return self._send(fake.failures.pop(0), {"error": {
                        "message": "fake failure", "type": "server_error"}})
                content = fake.reply(body)
                return self._send(200, {
                    "id": f"chatcmpl-{len(fake.requests)}", "object": "chat.completion",
                    "created": int(time.time()), "model": body.get("model", ""),
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

            def _send(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    if fake.drip:
                        for at in range(len(data)):
                            self.wfile.write(data[at:at + 1])
                            self.wfile.flush()
                            time.sleep(fake.drip)
                    else:
                        self.wfile.write(data)
                except OSError:  # the client gave up (its timeout)
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def customer_data(request: dict) -> dict:
    """The JSON document the prompt gave the model (the user message)."""
    return json.loads(request["messages"][-1]["content"])
