"""gunicorn's side of the server: the worker that reads each request whole before a
thread serves it (`worker.py`), and the logger that keeps query strings and credentials
out of every line gunicorn writes (`logger.py`). gunicorn.conf.py names both.

Both import only gunicorn and the standard library: bench/gunicorn.conf.py loads them
from their files for the benchmark's other apps, without importing this one.
"""
