"""One pre-started container: a bubblewrap process running the zygote, and its message pipe.

The host talks to the zygote with length-prefixed JSON messages (``_zygote.py``). A worker that
dies (a program killed it, or it stopped answering within the request's deadline) is killed as a
whole (``bwrap`` and, through its PID namespace, everything in it) and reported as dead; the pool
starts a new one.

When the host runs as root, bubblewrap is started as the host's ``nobody`` (65534): the
container's uid then maps to an unprivileged host uid, so the kernel enforces ``RLIMIT_NPROC``
(root's own processes are exempt from it) and host files readable only by root stay closed even
to a program that escaped the mount namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import struct
import subprocess
import tempfile
import time
from typing import Any

from k15ray.sandbox.bwrap import SandboxUnavailableError

NOBODY = 65534
START_TIMEOUT_S = 30.0


class WorkerDied(Exception):
    """The worker's container ended or stopped answering; ``reason`` says which."""

    def __init__(self, reason: str, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


class Worker:
    """A live container; ``request`` sends one request and waits for its reply."""

    def __init__(self, argv: list[str], seccomp: bytes | None = None) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        pass_fds: tuple[int, ...] = ()
        if seccomp is not None:  # bwrap reads the BPF program from an inherited fd
            with tempfile.TemporaryFile() as program:
                program.write(seccomp)
                program.flush()
                fd = os.open(f"/proc/self/fd/{program.fileno()}", os.O_RDONLY)
            argv = [argv[0], "--seccomp", str(fd), *argv[1:]]
            pass_fds = (fd,)
        as_nobody: dict[str, Any] = (
            {"user": NOBODY, "group": NOBODY, "extra_groups": []} if os.geteuid() == 0 else {}
        )
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            close_fds=True,
            start_new_session=True,  # Ctrl-C of the host does not reach the containers
            cwd="/",
            pass_fds=pass_fds,
            **as_nobody,
        )
        for fd in pass_fds:
            os.close(fd)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin
        self._out = self.proc.stdout.fileno()
        try:
            hello = self._recv(time.monotonic() + START_TIMEOUT_S)
        except WorkerDied as err:
            message = self.stderr() or "no message"
            self.kill()
            raise SandboxUnavailableError(
                f"a sandbox container failed to start ({err}): {message}. bubblewrap needs "
                "unprivileged user namespaces: try `bwrap --unshare-all --ro-bind /usr /usr true`"
            ) from err
        assert hello == b"ready", hello
        self.requests = 0

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        """What bubblewrap or the zygote wrote to stderr (the reason a container failed)."""
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode("utf-8", "replace").strip()

    def request(self, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send ``payload``, return the reply; ``WorkerDied`` (worker killed) if none in time."""
        data = json.dumps(payload).encode()
        try:
            self._in.write(struct.pack(">I", len(data)) + data)
            self._in.flush()
        except (BrokenPipeError, OSError) as err:
            self.kill()
            raise WorkerDied(f"sandbox worker is gone: {err}") from err
        try:
            reply = json.loads(self._recv(time.monotonic() + timeout_s))
        except WorkerDied:
            self.kill()
            raise
        self.requests += 1
        return dict(reply)

    def _recv(self, deadline: float) -> bytes:
        (size,) = struct.unpack(">I", self._read_exact(4, deadline))
        return self._read_exact(size, deadline)

    def _read_exact(self, n: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        with selectors.DefaultSelector() as sel:
            sel.register(self._out, selectors.EVENT_READ)
            while n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WorkerDied("sandbox worker did not answer in time", timed_out=True)
                if not sel.select(remaining):
                    continue
                chunk = os.read(self._out, min(n, 1 << 20))
                if not chunk:
                    raise WorkerDied("sandbox worker died (a program may have killed it)")
                chunks.append(chunk)
                n -= len(chunk)
        return b"".join(chunks)

    def kill(self) -> None:
        """Kill the container (bwrap is the PID namespace's parent: everything in it dies)."""
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL not delivered yet: give up
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._stderr.close()
