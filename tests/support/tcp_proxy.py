"""A loopback TCP proxy that can be cut and restored: the database 'goes away' for a moment.

Run as `python -m tests.support.tcp_proxy --target HOST:PORT` (see `ProxyProcess`) it can also be
frozen with SIGSTOP: the database then hangs instead of going away. That process is cut
by SIGUSR1 and restored by SIGUSR2, and says so on stdout once done.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        listener, self._listener = self._listener, None
        if listener:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    restore = start

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut while this one was connecting
                    client.close()
                    upstream.close()
                    return
                self._connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class ProxyProcess:
    """The proxy in a process of its own, so that a test can freeze it (SIGSTOP) like a
    host that stops answering: its kernel still accepts and ACKs, nothing comes back.
    It can be cut and restored too, like TcpProxy: each call returns once it is done."""

    def __init__(self, target_host: str, target_port: int):
        from tests.support.servers import ROOT

        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.tcp_proxy", "--target", f"{target_host}:{target_port}"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def cut(self) -> None:
        """Refuse new connections and reset every open one (not while frozen)."""
        self._tell(signal.SIGUSR1, "cut")

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        self._tell(signal.SIGUSR2, "restored")

    def _tell(self, sig: signal.Signals, done: str) -> None:
        os.kill(self.process.pid, sig)
        answer = self.process.stdout.readline().strip()
        if answer != done:
            raise RuntimeError(f"proxy answered {answer!r} to {sig.name}, not {done!r}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.thaw()
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()

    def __enter__(self) -> ProxyProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv=None) -> None:
    """`python -m tests.support.tcp_proxy --target 127.0.0.1:5432`: print the port, serve until
    killed; SIGUSR1 cuts, SIGUSR2 restores (each answered with a line: cut, restored)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True, help="host:port to forward to")
    host, port = parser.parse_args(argv).target.rsplit(":", 1)
    proxy = TcpProxy(host, int(port)).start()

    def on_signal(sig, _frame) -> None:
        # In the main thread, which only waits in pause(): printing here is safe.
        if sig == signal.SIGUSR1:
            proxy.cut()
            print("cut", flush=True)
        else:
            proxy.restore()
            print("restored", flush=True)

    signal.signal(signal.SIGUSR1, on_signal)
    signal.signal(signal.SIGUSR2, on_signal)
    print(proxy.port, flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
