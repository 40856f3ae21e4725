"""The in-container worker ("zygote") of one reused sandbox (paper 2.6.4, container reuse).

This file is NOT imported by k15ray: the host starts it as ``python3 -I -S -c <this source>``
inside a bubblewrap container, as PID 1 of the container's PID namespace. It must therefore use
the standard library only and run on any Python >= 3.9.

Protocol (stdin/stdout of this process, owned by the host): each message is a 4-byte big-endian
length followed by UTF-8 JSON. A request is ``{"files": {name: text}, "steps": [step, ...]}``;
each step ``{"argv", "stdin", "timeout_s", "memory_mb", "max_processes", "max_file_mb",
"max_open_files", "output_limit_bytes", "env", "must_succeed"}`` runs in ``/work`` after the
previous one (the request stops after a failed ``must_succeed`` step, such as a compilation). The reply is ``{"steps": [outcome, ...]}``.

Between two requests every process of the container but this one is SIGKILLed and ``/work`` is
emptied, so nothing of one run (files, daemons) survives into the next. Being PID 1 of its
namespace, this process ignores signals sent from inside the container (the kernel drops them),
and it makes itself non-dumpable so that the programs it runs cannot ptrace it or open its
``/proc/1/fd`` or ``/proc/1/mem``.
"""

import contextlib
import ctypes
import json
import os
import resource
import selectors
import signal
import struct
import sys
import time

WORK = "/work"
PR_SET_DUMPABLE = 4
MEMORY_MARKERS = (b"MemoryError", b"std::bad_alloc", b"Cannot allocate memory", b"out of memory")


def _prctl(option: int, value: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _reap() -> None:
    """Collect every exited child (orphans are reparented to us: we are PID 1)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_all() -> None:
    """SIGKILL every process of the container except this one, until none is left.

    As PID 1 of the namespace, ``kill(-1, SIGKILL)`` reaches every other process of it in one
    pass under the kernel's task-list lock, so a fork bomb cannot outrun it for long.
    """
    me = os.getpid()
    for _ in range(1000):
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
        _reap()
        if not [p for p in os.listdir("/proc") if p.isdigit() and int(p) != me]:
            return
        time.sleep(0.001)
    raise RuntimeError("processes survived kill_all")


def wipe_work() -> None:
    """Empty /work without recursion: every subdirectory is first moved up to /work itself.

    A program may leave directories nested thousands deep (beyond PATH_MAX and Python's
    recursion limit) or remove its own permissions from them, /work included: every directory is
    made 0700 again, entries are handled relative to directory fds, and a nested directory is
    renamed into /work rather than descended into.
    """
    os.chmod(WORK, 0o700)
    top = os.open(WORK, os.O_RDONLY | os.O_DIRECTORY)
    moved = 0
    try:
        for _ in range(1_000_000):
            entries = list(os.scandir(top))
            if not entries:
                return
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.name, dir_fd=top)
                    continue
                os.chmod(entry.name, 0o700, dir_fd=top)
                fd = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
                try:
                    for sub in os.scandir(fd):
                        if sub.is_dir(follow_symlinks=False):
                            os.chmod(sub.name, 0o700, dir_fd=fd)
                            moved += 1
                            os.rename(sub.name, f".wipe{moved}", src_dir_fd=fd, dst_dir_fd=top)
                        else:
                            os.unlink(sub.name, dir_fd=fd)
                finally:
                    os.close(fd)
                os.rmdir(entry.name, dir_fd=top)
        raise RuntimeError("could not empty /work")
    finally:
        os.close(top)


def _child(step: dict, stdin_fd: int, out_w: int, err_w: int) -> None:
    """In the forked child: limits, fresh session, std fds, clean env, exec. Never returns."""
    try:
        os.setsid()
        os.dup2(stdin_fd, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, 65536)
        cpu_s = int(step["timeout_s"]) + 1  # CPU seconds: the wall limit rounded up, plus one
        mem = int(step["memory_mb"]) << 20
        limits = [
            (resource.RLIMIT_CPU, (cpu_s, cpu_s + 1)),
            (resource.RLIMIT_AS, (mem, mem)),
            (resource.RLIMIT_NPROC, (step["max_processes"], step["max_processes"])),
            (resource.RLIMIT_FSIZE, (step["max_file_mb"] << 20, step["max_file_mb"] << 20)),
            (resource.RLIMIT_NOFILE, (step["max_open_files"], step["max_open_files"])),
            (resource.RLIMIT_CORE, (0, 0)),
        ]
        for which, value in limits:
            resource.setrlimit(which, value)
        for sig in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(WORK)
        os.execve(step["argv"][0], step["argv"], step["env"])
    except BaseException as err:  # exec failed: report like a shell would
        os.write(2, ("sandbox: cannot run {!r}: {}\n".format(step["argv"][0], err)).encode())
    os._exit(127)


def _collect(pid: int, out_r: int, err_r: int, step: dict, started: float) -> dict:
    """Read stdout/stderr (capped) until the child exits, the deadline passes, or a cap is hit."""
    limit = int(step["output_limit_bytes"])
    bufs = {out_r: bytearray(), err_r: bytearray()}
    sel = selectors.DefaultSelector()
    for fd in (out_r, err_r):
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    pidfd = os.pidfd_open(pid)
    sel.register(pidfd, selectors.EVENT_READ)
    deadline = started + float(step["timeout_s"])
    reason = ""
    wall_s = 0.0
    drain_until = 0.0  # set once the child has exited: read what is left, briefly
    while not reason:
        now = time.monotonic()
        readers = len(sel.get_map()) - (0 if drain_until else 1)
        if drain_until and (readers == 0 or now >= drain_until):
            break
        if not drain_until and now >= deadline:
            reason = "timeout"
            break
        for key, _ in sel.select((drain_until or deadline) - now):
            if key.fd == pidfd:
                sel.unregister(pidfd)
                _, status, usage = os.wait4(pid, 0)
                kill_all()  # daemons and other leftovers die with their run
                wall_s = time.monotonic() - started
                drain_until = time.monotonic() + 0.5
                continue
            try:
                data = os.read(key.fd, 1 << 16)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(key.fd)
                continue
            bufs[key.fd] += data
            if len(bufs[key.fd]) > limit:
                reason = "output_limit"
                break
    if not drain_until:
        wall_s = time.monotonic() - started
    sel.close()
    os.close(pidfd)
    if not drain_until:  # still running: timeout or output cap
        os.kill(pid, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
    kill_all()
    for fd in (out_r, err_r):
        os.close(fd)
    return _outcome(status, usage, reason, bufs[out_r], bufs[err_r], limit, wall_s, step)


def _outcome(status, usage, reason, out, err, limit, wall_s, step) -> dict:  # noqa: ANN001
    """Classify how the step ended (the statuses of ``SandboxResult``)."""
    cpu_s = usage.ru_utime + usage.ru_stime
    signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -signum
    if reason:
        verdict = reason
    elif signum == signal.SIGXCPU or (signum == signal.SIGKILL and cpu_s >= int(step["timeout_s"])):
        verdict = "timeout"
    elif exit_code != 0 and any(m in err[-4096:] for m in MEMORY_MARKERS):
        verdict = "memory"
    elif signum in (signal.SIGKILL, signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        verdict = "killed"
    elif exit_code != 0:
        verdict = "runtime_error"
    else:
        verdict = "ok"
    return {
        "status": verdict,
        "exit_code": exit_code,
        "signal": signum,
        "stdout": bytes(out[:limit]).decode("utf-8", "replace"),
        "stderr": bytes(err[:limit]).decode("utf-8", "replace"),
        "wall_s": wall_s,
        "cpu_s": cpu_s,
    }


def run_step(step: dict) -> dict:
    # stdin: an unlinked file of the size-capped /work (memfd_create is refused by seccomp)
    path = os.path.join(WORK, ".stdin")
    stdin_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.unlink(path)
    _write_all(stdin_fd, step["stdin"].encode())
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(step, stdin_fd, out_w, err_w)
    for fd in (stdin_fd, out_w, err_w):
        os.close(fd)
    return _collect(pid, out_r, err_r, step, started)


def serve() -> None:
    _prctl(PR_SET_DUMPABLE, 0)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    rfd, wfd = sys.stdin.fileno(), sys.stdout.fileno()
    # Hide the host pipes from the fds 0-2 that a forked child inherits before its dup2s.
    rfd, wfd = os.dup(rfd), os.dup(wfd)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    _write_all(wfd, struct.pack(">I", 5) + b"ready")
    while True:
        try:
            (size,) = struct.unpack(">I", _read_exact(rfd, 4))
            request = json.loads(_read_exact(rfd, size))
        except EOFError:
            return
        outcomes = []
        try:
            for name, text in request["files"].items():
                with open(os.path.join(WORK, name), "w", encoding="utf-8") as f:
                    f.write(text)
            os.makedirs(os.path.join(WORK, "tmp"), exist_ok=True)
            for step in request["steps"]:
                outcomes.append(run_step(step))
                if step.get("must_succeed") and outcomes[-1]["status"] != "ok":
                    break  # e.g. a program that did not compile
        finally:
            kill_all()
            wipe_work()
        reply = json.dumps({"steps": outcomes}).encode()
        _write_all(wfd, struct.pack(">I", len(reply)) + reply)


if __name__ == "__main__":
    serve()
