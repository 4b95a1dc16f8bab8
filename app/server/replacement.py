"""Whether this gunicorn worker replaces one that died, rather than being one of the
server's first: gunicorn.conf.py's `post_fork` sets it, wsgi.py reads it when the
configuration does not load. A first worker that cannot load it halts the server (exit
3: it refuses to start); a replacement must not, since the other workers still serve
with the configuration they loaded when it was whole (a rules file broken in place)."""

REPLACEMENT = False
