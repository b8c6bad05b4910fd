"""A local HTTP server on 127.0.0.1 that honours Range requests and counts the bytes it sends,
for the remote-raster tests (``tests/`` is on the path through its conftest).

It runs in a process of its own: GDAL may hold Python's GIL while it waits for an answer,
which a server thread of the test process could then never give. ``/<prefix>/<name>`` serves
``root/<name>`` whatever the prefix, so each test can use fresh URLs (GDAL caches what it
read of a URL for the life of the process). ``/_stats`` answers the counts as JSON;
``/_force/<name>/<status>`` makes the server answer that status for that file name."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Served:
    """The server's address; bytes of file content sent per path asked for (prefix included)
    and the paths asked for, fetched from the server."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _stats(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/_stats") as answer:
            return json.load(answer)

    @property
    def sent(self) -> Counter:
        return Counter(self._stats()["sent"])

    @property
    def asked(self) -> list[str]:
        return self._stats()["asked"]

    def force(self, name: str, status: int) -> None:
        urllib.request.urlopen(f"{self.url}/_force/{name}/{status}").close()


@contextmanager
def range_server(root: Path) -> Iterator[Served]:
    process = subprocess.Popen([sys.executable, __file__, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield Served(process.stdout.readline().strip())
    finally:
        process.terminate()
        process.wait(timeout=10)


def serve(root: Path) -> None:
    lock = threading.Lock()
    sent: Counter = Counter()
    asked: list[str] = []
    forced: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            headers = {"Content-Length": str(len(body))} | (headers or {})
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _target(self) -> Path | None:
            path = self.path.split("?", 1)[0]
            if path == "/_stats":
                with lock:
                    self._answer(200, json.dumps({"sent": sent, "asked": asked}).encode())
                return None
            if path.startswith("/_force/"):
                _, _, name, status = path.split("/")
                forced[name] = int(status)
                self._answer(200)
                return None
            with lock:
                asked.append(path)
            name = path.rsplit("/", 1)[-1]
            if name in forced:
                self._answer(forced[name])
                return None
            if not name or not (root / name).is_file():
                self._answer(404)
                return None
            return root / name

        def do_HEAD(self) -> None:
            target = self._target()
            if target is not None:
                self._answer(200, headers={"Accept-Ranges": "bytes", "Content-Length": str(target.stat().st_size)})

        def do_GET(self) -> None:
            target = self._target()
            if target is None:
                return
            size = target.stat().st_size
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            start, end = (int(match[1]), min(int(match[2] or size - 1), size - 1)) if match else (0, size - 1)
            with target.open("rb") as f:
                f.seek(start)
                body = f.read(end - start + 1)
            headers = {"Accept-Ranges": "bytes"}
            if match:
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            self._answer(206 if match else 200, body, headers)
            with lock:
                sent[self.path.split("?", 1)[0]] += len(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
