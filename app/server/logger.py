"""gunicorn's logger, minus what may carry a secret: query strings and credentials.

An operator who puts ADMIN_TOKEN in a URL (`/api/stats?token=...`) must not find it in
the logs, whether or not the request was served. So, for every route alike:

- the access log shows each request's path and `?[redacted]` for its query string
  (`%(r)s`, `%(q)s`), and the Referer without its query (`%(f)s`); no route takes
  anything in its query that a log needs, and a route added later is covered too;
- the user name of Basic auth (`%(u)s`) is never shown: it may be a token;
- header and environment atoms that a custom --access-logformat may name lose the same:
  Authorization and Cookie entirely, URLs (Referer, Location, RAW_URI) their query;
- gunicorn's warnings about requests it refuses ("Invalid request from ip=...: ...")
  keep what was wrong and drop the quoted bytes, which were the request line or a
  header line whole; "Error handling request <uri>" loses the query too.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from ..logs import without_query

INVALID = "Invalid request from ip="
_SECRET = ("authorization", "cookie")
_URL = ("referer", "location", "raw_uri", "request_uri")


class RedactingLogger(Logger):
    """gunicorn's logger; no line it writes shows a query string or a credential."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["r"] = f"{atoms['m']} {without_query(environ['RAW_URI'])} {atoms['H']}"
        atoms["q"] = "[redacted]" if atoms["q"] else ""
        atoms["f"] = without_query(atoms["f"])
        atoms["u"] = "-"
        if "{" in self.cfg.access_log_format:  # only a custom format names these
            for key, value in atoms.items():
                if key.startswith("{"):
                    atoms[key] = _redacted(key[1:key.rindex("}")], value)
        return atoms

    def warning(self, msg, *args, **kwargs):
        # gunicorn formats this one in advance (workers/base.py handle_error):
        # "Invalid request from ip=<ip>: <error>", where <error> is "<what>: <bytes>".
        # The worker's own refusals pass arguments, and no bytes of the request.
        if not args and msg.startswith(INVALID):
            ip, _, error = msg[len(INVALID):].partition(": ")
            msg = f"{INVALID}{ip}: {error.partition(': ')[0]}"
        super().warning(msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        if msg.startswith("Error handling request") and args:  # ... %s %s, method, uri
            args = (*args[:-1], without_query(str(args[-1])))
        super().exception(msg, *args, **kwargs)


def _redacted(name: str, value):
    name = name.lower()
    if any(secret in name for secret in _SECRET):
        return "-"
    if name == "query_string":
        return "[redacted]" if value else value
    if any(url in name for url in _URL) and isinstance(value, str):
        return without_query(value)
    return value
