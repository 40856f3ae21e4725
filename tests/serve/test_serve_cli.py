"""``k15ray serve`` as a user and a service manager run it: a real process, real HTTP, stopped by
SIGINT (Ctrl-C, also when started in the background with SIGINT ignored) or SIGTERM (systemd,
Docker, Kubernetes), once ready and during start-up: exit status 0, one line, no traceback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

READY = "serving; press Ctrl-C to stop\n"
RAY_CONNECTING = "Started a local Ray instance"  # Ray's log line before the driver connects
SERVE_STARTED = 'Started Serve in namespace "serve"'  # Serve's log line before it deploys


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ignore_sigint() -> None:
    """What a non-interactive shell does to a command started with ``&``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class Served:
    """A running ``k15ray serve`` and its output (stdout and stderr together), read as it comes."""

    proc: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, ready: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None and not ready():
            time.sleep(0.05)
        assert ready(), f"exit {self.proc.poll()}:\n{self.output()}"

    def has_child(self) -> bool:
        """True once the process has started a child (Ray's GCS server, early in ``ray.init``)."""
        task_dir = Path(f"/proc/{self.proc.pid}/task")
        try:
            return any((t / "children").read_text().strip() for t in task_dir.iterdir())
        except OSError:
            return False

    def stop(self, sig: signal.Signals, timeout_s: float = 120) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout_s)
        time.sleep(0.5)  # let the reader take the last lines
        return code


@pytest.fixture
def serve_process() -> Iterator[Callable[..., Served]]:
    started: list[Served] = []
    # Ray's socket paths must stay short (AF_UNIX limit): a fresh directory directly under /tmp
    ray_tmp = tempfile.mkdtemp(prefix="k15c-", dir="/tmp")  # removed at the end, as in conftest

    def start(preexec_fn: Callable[[], None] | None = None, **extra_env: str) -> Served:
        port = _free_port()
        env = {**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1",
               **extra_env}
        cmd = [sys.executable, "-m", "k15ray.cli", "serve", "--rewards", "math", "--no-sandbox",
               "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, preexec_fn=preexec_fn)
        served = Served(proc, port)
        assert proc.stdout is not None
        threading.Thread(target=lambda: served.lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
        started.append(served)
        return served

    yield start
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()
    shutil.rmtree(ray_tmp, ignore_errors=True)


def _assert_stopped_cleanly(served: Served, code: int, sig: signal.Signals) -> None:
    out = served.output()
    assert code == 0, out
    assert "Traceback" not in out, out
    assert f"{sig.name} received; stopping\n" in served.lines, out
    with pytest.raises(httpx.HTTPError):  # the port is closed again
        httpx.get(f"http://127.0.0.1:{served.port}/v1/rewards/", timeout=5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "background"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGTERM", "SIGINT-background"],
)
def test_serve_command_serves_then_stops_on_signal(
    serve_process: Callable[..., Served], sig: signal.Signals, background: bool
) -> None:
    served = serve_process(_ignore_sigint if background else None)
    served.wait_for(lambda: READY in served.lines, timeout_s=240)
    assert f"rewards: http://127.0.0.1:{served.port}/v1/rewards\n" in served.lines, served.output()
    r = httpx.post(f"http://127.0.0.1:{served.port}/v1/rewards/math",
                   json={"response": "\\boxed{12}", "reference": "12"}, timeout=60)
    assert (r.json()["score"], r.json()["correct"]) == (1.0, True)
    _assert_stopped_cleanly(served, served.stop(sig), sig)


@pytest.mark.slow
def test_serve_command_under_direct_ingress_prints_the_replica_url(serve_process: Callable[..., Served]) -> None:
    # opt-in (docs/serve.md): the replica answers HTTP on a port of its own; the printed URL is it
    served = serve_process(RAY_SERVE_ENABLE_DIRECT_INGRESS="1", RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S="1")
    served.wait_for(lambda: READY in served.lines, timeout_s=240)
    urls = [line.split(": ", 1)[1].strip() for line in served.lines if line.startswith("rewards: http://")]
    assert len(urls) == 1, served.output()
    port = int(urls[0].split(":")[2].split("/")[0])
    assert port != served.port and 30000 <= port <= 31000, urls  # Ray 2.60's replica port range
    r = httpx.post(f"{urls[0]}/math", json={"response": "\\boxed{12}", "reference": "12"}, timeout=60)
    assert (r.json()["score"], r.json()["correct"]) == (1.0, True)
    _assert_stopped_cleanly(served, served.stop(signal.SIGTERM), signal.SIGTERM)


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["Ray starts", "driver connects", "Serve deploys"])
def test_serve_command_stops_on_sigterm_during_start_up(
    serve_process: Callable[..., Served], moment: str
) -> None:
    served = serve_process()
    if moment == "Ray starts":  # ray.init has started its first process
        served.wait_for(served.has_child, timeout_s=120)
    else:
        line = RAY_CONNECTING if moment == "driver connects" else SERVE_STARTED
        served.wait_for(lambda: line in served.output(), timeout_s=180)
    assert READY not in served.lines
    _assert_stopped_cleanly(served, served.stop(signal.SIGTERM), signal.SIGTERM)
