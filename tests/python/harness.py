"""Test harness: a real `grape serve` process, the official client, and a record of HTTP exchanges.

`GRAPE_BIN` names the server binary (default `<repo>/target/debug/grape`).
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def grape_bin() -> Path:
    path = Path(os.environ.get("GRAPE_BIN", REPO / "target" / "debug" / "grape"))
    if not path.is_absolute():
        path = REPO / path
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GrapeServer:
    """One `grape serve` process on a storage directory; can be stopped, killed and started again."""

    def __init__(self, storage: Path, log_dir: Path):
        self.storage = Path(storage)
        self.log_dir = Path(log_dir)
        self.proc: subprocess.Popen | None = None
        self.http_port = 0
        self.grpc_port = 0
        self.starts = 0
        self.stderr_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> "GrapeServer":
        binary = grape_bin()
        if not binary.exists():
            pytest.fail(
                f"grape server binary not found at {binary}: build it (cargo build -p grape-server) or set GRAPE_BIN",
                pytrace=False,
            )
        self.storage.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.grpc_port = free_port()
        while self.grpc_port == self.http_port:
            self.grpc_port = free_port()
        self.starts += 1
        self.stderr_path = self.log_dir / f"server-{self.starts}.stderr"
        env = dict(os.environ, GRAPE__LOG_LEVEL="warn", NO_COLOR="1")
        cmd = [
            str(binary),
            "serve",
            "--storage-path",
            str(self.storage),
            "--http-port",
            str(self.http_port),
            "--grpc-port",
            str(self.grpc_port),
        ]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT, env=env)
        self._wait_ready(cmd)
        return self

    def _wait_ready(self, cmd: list[str]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"grape server exited with code {self.proc.returncode} before it was ready\n"
                    f"command: {' '.join(cmd)}\n--- server output ---\n{self.stderr_tail()}",
                    pytrace=False,
                )
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
                    last = f"status {r.status}"
            except urllib.error.HTTPError as e:
                last = f"status {e.code}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.1)
        self.kill()
        pytest.fail(
            f"grape server not ready after {READY_TIMEOUT_S}s (GET /readyz: {last})\n"
            f"command: {' '.join(cmd)}\n--- server output ---\n{self.stderr_tail()}",
            pytrace=False,
        )

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then wait (SIGKILL if it does not exit in time). Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL (kill -9), no chance to flush anything."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self, max_chars: int = 6000) -> str:
        if self.stderr_path is None or not self.stderr_path.exists():
            return "<no server output>"
        data = _ANSI.sub("", self.stderr_path.read_bytes().decode("utf-8", "replace"))
        if len(data) > max_chars:
            data = "...\n" + data[-max_chars:]
        return data or "<empty>"


# ---------------------------------------------------------------------------------------------------
# Recording of HTTP exchanges, for failure reports.

_MAX_BODY = 3000


def _clip(b: bytes | str | None) -> str:
    if b is None:
        return ""
    if isinstance(b, bytes):
        b = b.decode("utf-8", "replace")
    return b if len(b) <= _MAX_BODY else b[:_MAX_BODY] + f"... <{len(b) - _MAX_BODY} more chars>"


class Recorder:
    def __init__(self, keep: int = 8):
        self.exchanges: collections.deque = collections.deque(maxlen=keep)
        self.servers: list[GrapeServer] = []

    def middleware(self, request, call_next):
        try:
            req_body = request.content
        except Exception:  # streaming body
            req_body = b"<stream>"
        entry = {"method": request.method, "url": str(request.url), "request": req_body}
        self.exchanges.append(entry)
        try:
            response = call_next(request)
        except Exception as e:
            entry["error"] = repr(e)
            raise
        try:
            entry["status"] = response.status_code
            entry["response"] = response.content
        except Exception as e:  # pragma: no cover
            entry["response"] = f"<unreadable: {e!r}>"
        return response

    def attach(self, client: QdrantClient) -> QdrantClient:
        client.http.client.add_middleware(self.middleware)
        return client

    def clear(self) -> None:
        self.exchanges.clear()

    def format(self) -> str:
        if not self.exchanges:
            return "<no HTTP exchange recorded>"
        out = []
        for i, e in enumerate(self.exchanges, 1):
            out.append(f"[{i}] {e['method']} {e['url']}")
            if e["request"]:
                out.append(f"    request body: {_clip(e['request'])}")
            if "error" in e:
                out.append(f"    transport error: {e['error']}")
            else:
                out.append(f"    -> status {e.get('status')}: {_clip(e.get('response'))}")
        return "\n".join(out)


RECORDER = Recorder()


def make_client(server: GrapeServer) -> QdrantClient:
    client = QdrantClient(url=server.url, timeout=30, prefer_grpc=False)
    return RECORDER.attach(client)


def make_grpc_client(server: GrapeServer) -> QdrantClient:
    """A client with `prefer_grpc=True` whose REST port is a closed one, so no call can fall back to REST
    unnoticed."""
    return QdrantClient(
        host="127.0.0.1",
        port=free_port(),
        grpc_port=server.grpc_port,
        prefer_grpc=True,
        timeout=30,
        check_compatibility=False,
    )


# ---------------------------------------------------------------------------------------------------
# Small helpers shared by the tests.


def status_of(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def error_text(exc: BaseException) -> str:
    content = getattr(exc, "content", b"") or b""
    try:
        body = json.loads(content)
        return json.dumps(body)
    except Exception:
        return content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)


def wait_collection_green(client: QdrantClient, name: str, timeout: float = 60.0, min_indexed: int = 0):
    """Polls get_collection until status is green and at least `min_indexed` vectors are indexed.

    Returns the last CollectionInfo (the caller asserts on it; this never raises on timeout).
    """
    deadline = time.monotonic() + timeout
    info = client.get_collection(name)
    while time.monotonic() < deadline:
        indexed = info.indexed_vectors_count or 0
        if info.status == models.CollectionStatus.GREEN and indexed >= min_indexed:
            return info
        time.sleep(0.25)
        info = client.get_collection(name)
    return info
