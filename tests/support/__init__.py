"""What the tests share and are not tests themselves: the fake Conversations API, real
server processes, signed webhooks, databases, proxies and small readers."""
