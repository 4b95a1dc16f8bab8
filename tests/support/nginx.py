"""A real nginx on loopback running a shipped site (deploy/nginx/bot.conf, or the
plain-HTTP bootstrap.conf used before the certificate exists).

nginx is Debian's package, installed on first use when it is missing and apt-get works
(`installed_nginx()`); the tests that need it skip with the reason when it cannot be had.
Each nginx runs with its own prefix, configuration, pid, logs and temp folders under the
test's tmp_path, on unprivileged ports, in the foreground (`daemon off;`), and stops at
the end of the `nginx()` block.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import ROOT, free_port

SITE = ROOT / "deploy" / "nginx" / "bot.conf"
BOOTSTRAP = ROOT / "deploy" / "nginx" / "bootstrap.conf"  # plain HTTP, before the certificate
# The shipped files' placeholders and what the test puts in their place (see render()).
PLACEHOLDER_NAME = "bot.example.com"
PLACEHOLDER_CERT_DIR = "/etc/letsencrypt/live/bot.example.com"
PLACEHOLDER_WEBROOT = "/var/www/letsencrypt"
PLACEHOLDER_UPSTREAM = "127.0.0.1:5000"


@functools.cache
def installed_nginx() -> tuple[str | None, str]:
    """Return (path to nginx, "") or (None, why it cannot be had). Installs Debian's
    package once per test process when it is missing and this is root with apt-get."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)),
        None)
    if found:
        return found, ""
    if not shutil.which("apt-get"):
        return None, "nginx is not installed and apt-get is not available to install it"
    if os.geteuid() != 0:
        return None, "nginx is not installed and only root can apt-get install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "nginx"]):
        try:
            result = subprocess.run(command, env=env, capture_output=True, text=True,
                                    timeout=300)
        except subprocess.TimeoutExpired:
            return None, f"`{' '.join(command)}` did not finish within 300 s"
        if result.returncode != 0:
            return None, f"`{' '.join(command)}` failed: {result.stderr.strip()[-300:]}"
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return (found, "") if os.access(found, os.X_OK) else (None, "nginx installed but not found")


def self_signed_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """Make a self-signed certificate and key for `name` with the openssl CLI."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True, timeout=60)
    return cert, key


def render(site: str, *, name: str, http_port: int, webroot: Path, cert: Path | None = None,
           key: Path | None = None, https_port: int | None = None,
           upstream_port: int | None = None) -> str:
    """A shipped site with its placeholders replaced, listening on loopback only: the
    TLS site (bot.conf) with certificate, https port and upstream, or the bootstrap
    (plain HTTP) without. Fails if a placeholder is missing: then the file and its
    documentation disagree."""
    replacements = []
    if cert is not None:
        replacements += [
            (f"{PLACEHOLDER_CERT_DIR}/fullchain.pem", str(cert)),
            (f"{PLACEHOLDER_CERT_DIR}/privkey.pem", str(key)),
            (f"server {PLACEHOLDER_UPSTREAM};", f"server 127.0.0.1:{upstream_port};"),
            ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
            ("listen [::]:443 ssl;", ""),
        ]
    replacements += [
        (PLACEHOLDER_NAME, name),
        (PLACEHOLDER_WEBROOT, str(webroot)),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
    ]
    for old, new in replacements:
        assert old in site, f"the site no longer contains {old!r}"
        site = site.replace(old, new)
    return site


@dataclass
class Nginx:
    process: subprocess.Popen
    https_url: str | None  # https://<name>:<port>, the public origin (None: bootstrap)
    http_url: str
    https_port: int | None
    folder: Path
    cert: Path | None

    @property
    def error_log(self) -> str:
        return (self.folder / "error.log").read_text(errors="replace")


@contextmanager
def nginx(binary: str, folder: Path, *, name: str, upstream_port: int | None = None,
          https_port: int | None = None, site: Path = SITE):
    """Run a shipped site: bot.conf in front of 127.0.0.1:`upstream_port`, or (with
    `site=BOOTSTRAP`) the plain-HTTP bootstrap; yield an Nginx. The certbot webroot is
    `folder / "webroot"`."""
    folder.mkdir(parents=True, exist_ok=True)
    tls = site != BOOTSTRAP
    cert, key = self_signed_certificate(folder, name) if tls else (None, None)
    https_port = (https_port or free_port()) if tls else None
    http_port = free_port()
    rendered = folder / site.name
    rendered.write_text(render(site.read_text(), name=name, cert=cert, key=key,
                               https_port=https_port, http_port=http_port,
                               upstream_port=upstream_port, webroot=folder / "webroot"))
    temp = {kind: folder / kind for kind in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    # As root, nginx's workers would switch to `nobody`, who cannot read tmp_path.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = folder / "nginx.conf"
    conf.write_text(
        f"{user}worker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} info;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"    access_log {folder / 'access.log'};\n"
        f"    client_body_temp_path {temp['body']};\n    proxy_temp_path {temp['proxy']};\n"
        f"    fastcgi_temp_path {temp['fastcgi']};\n    uwsgi_temp_path {temp['uwsgi']};\n"
        f"    scgi_temp_path {temp['scgi']};\n"
        f"    include {rendered};\n"
        "}\n")
    check = subprocess.run([binary, "-t", "-p", str(folder), "-c", str(conf)],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, f"nginx -t failed:\n{check.stderr}"
    with open(folder / "stderr.log", "w") as stderr:
        process = subprocess.Popen(
            [binary, "-p", str(folder), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=stderr)
    server = Nginx(process, f"https://{name}:{https_port}" if tls else None,
                   f"http://{name}:{http_port}", https_port, folder, cert)
    try:
        if tls:
            wait_listening(https_port, process)
        wait_listening(http_port, process)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_listening(port: int, process: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx not listening on {port} within {timeout}s")
