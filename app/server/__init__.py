"""gunicorn's side of the server: the worker that reads each request whole before a
thread serves it (`worker.py`), and the logger that keeps query strings and credentials
out of every line gunicorn writes (`logger.py`). gunicorn.conf.py names both.

worker.py imports only gunicorn and the standard library: bench/gunicorn.conf.py loads
it from its file for the benchmark's other apps, without importing this one.
"""
