"""``k15ray serve`` as a user runs it: a real process, real HTTP, Ctrl-C (SIGINT) stops it cleanly."""

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

import httpx
import pytest

READY = "serving; press Ctrl-C to stop\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_command_serves_then_stops_on_ctrl_c() -> None:
    port = _free_port()
    # Ray's socket paths must stay short (AF_UNIX limit): a fresh directory directly under /tmp
    ray_tmp = tempfile.mkdtemp(prefix="k15c-", dir="/tmp")  # removed at the end, as in conftest
    env = {**os.environ, "RAY_TMPDIR": ray_tmp,
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "k15ray.cli", "serve", "--rewards", "math", "--no-sandbox",
           "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if READY in lines:
                break
            time.sleep(0.5)
        assert READY in lines, "".join(lines)
        assert f"rewards: http://127.0.0.1:{port}/v1/rewards\n" in lines, "".join(lines)
        r = httpx.post(f"http://127.0.0.1:{port}/v1/rewards/math",
                       json={"response": "\\boxed{12}", "reference": "12"}, timeout=60)
        assert (r.json()["score"], r.json()["correct"]) == (1.0, True)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, "".join(lines)
        reader.join(timeout=10)
        assert "stopping\n" in lines
        with pytest.raises(httpx.HTTPError):  # the port is closed again
            httpx.get(f"http://127.0.0.1:{port}/v1/rewards/", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)
