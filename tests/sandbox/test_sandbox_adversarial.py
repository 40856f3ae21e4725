"""The adversarial suite of the sandbox (docs/sandbox.md): hostile programs leave the host untouched, no process of a
run survives it, and the sandbox keeps serving afterwards.

One single-worker sandbox serves the whole module, so every attack is followed (``_assert_clean``)
by a run in the very container the attack used, which must see only itself and the zygote in its
PID namespace and an empty ``/work``.
"""

from __future__ import annotations

import ast
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from k15ray.config.sandbox import SandboxConfig
from k15ray.sandbox import Sandbox
from k15ray.sandbox.seccomp import seccomp_program

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/python3").exists(), reason="needs /usr/bin/python3"
)

CLEAN_CHECK = """
import os
pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
print(pids == [1, os.getpid()], sorted(os.listdir('/work')), sorted(os.listdir('/work/tmp')))
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(SandboxConfig(workers=1, output_limit_bytes=1 << 20)).start()
    yield sb
    sb.close()


def _descendants(pid: int) -> set[int]:
    """All host processes below ``pid`` (through /proc/PID/task/TID/children)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                children = Path(f"/proc/{p}/task/{tid}/children").read_text().split()
            except FileNotFoundError:
                continue
            for c in map(int, children):
                if c not in found:
                    found.add(c)
                    todo.append(c)
    return found


def _host_cmdlines_containing(marker: str) -> list[int]:
    hits = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if marker in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace"):
                    hits.append(int(p))
            except OSError:
                continue
    return hits


def _assert_clean(sandbox: Sandbox, processes_before: set[int] | None = None) -> None:
    """The container still serves, holds no leftover process or file, and the host side holds
    no new process below the container."""
    after = sandbox.run(CLEAN_CHECK)
    assert after.status == "ok", after
    assert after.stdout == "True ['main.py', 'tmp'] []\n", after.stdout
    if processes_before is not None:
        (bwrap_pid,) = sandbox.pool.pids
        assert _descendants(bwrap_pid) == processes_before


def _container_processes(sandbox: Sandbox) -> set[int]:
    (bwrap_pid,) = sandbox.pool.pids
    return _descendants(bwrap_pid)


def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    before = _container_processes(sandbox)
    started = time.monotonic()
    r = sandbox.run(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        timeout_s=1.0,
    )
    assert r.status == "timeout", r
    assert time.monotonic() - started < 10
    _assert_clean(sandbox, before)


def test_memory_bomb_hits_the_address_space_limit(sandbox: Sandbox) -> None:
    r = sandbox.run(
        "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))\n", memory_mb=128
    )
    assert r.status == "memory", r
    assert "MemoryError" in r.stderr
    _assert_clean(sandbox)


@pytest.mark.skipif(seccomp_program() is None, reason="no seccomp filter for this architecture")
def test_memory_that_would_outlive_a_process_is_refused(sandbox: Sandbox) -> None:
    # SysV shared memory / queues / semaphores live as long as the container's IPC namespace and
    # memfd pages escape RLIMIT_AS: the seccomp filter refuses them all with EPERM (errno 1).
    code = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
calls = {'shmget': lambda: libc.shmget(0, 1 << 30, 0o1600), 'msgget': lambda: libc.msgget(0, 0o1600),
         'semget': lambda: libc.semget(0, 1, 0o1600), 'mq_open': lambda: libc.mq_open(b'/q', 0o100, 0o600, None)}
for name, call in calls.items():
    ctypes.set_errno(0)
    print(name, call(), ctypes.get_errno())
try:
    os.memfd_create('m')
except OSError as err:
    print('memfd_create', err.errno)
"""
    r = sandbox.run(code)
    assert r.stdout.split("\n")[:5] == [
        "shmget -1 1",
        "msgget -1 1",
        "semget -1 1",
        "mq_open -1 1",
        "memfd_create 1",
    ], r
    _assert_clean(sandbox)


def test_infinite_loop_times_out_on_wall_clock(sandbox: Sandbox) -> None:
    r = sandbox.run("while True:\n    pass\n", timeout_s=0.5)
    assert r.status == "timeout"
    assert 0.5 <= r.wall_s < 2.0, r.wall_s
    sleeper = sandbox.run(
        "import time\ntime.sleep(60)\n", timeout_s=0.5
    )  # no CPU used: the wall limit acts
    assert sleeper.status == "timeout" and sleeper.wall_s < 2.0
    _assert_clean(sandbox)


def test_200_mb_of_output_is_cut_at_the_cap(sandbox: Sandbox) -> None:
    started = time.monotonic()
    r = sandbox.run(
        "import sys\nblock = 'x' * (1 << 20)\nfor _ in range(200):\n    sys.stdout.write(block)\n"
    )
    assert r.status == "output_limit", r
    assert len(r.stdout) == 1 << 20  # exactly the cap: 1 MiB kept, the rest dropped
    assert time.monotonic() - started < 10
    err = sandbox.run("import sys\nsys.stderr.write('e' * (200 << 20))\n")
    assert err.status == "output_limit" and len(err.stderr) == 1 << 20
    _assert_clean(sandbox)


def test_writes_outside_the_work_dir_never_reach_the_host(sandbox: Sandbox, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    targets = [f"/usr/{tag}", f"/etc/{tag}", f"/{tag}", f"/root/{tag}", f"/home/{tag}",
               f"/tmp/{tag}", str(tmp_path / tag), f"/work/main/{tag}", f"/dev/shm/{tag}"]  # fmt: skip
    code = f"""
import os
for path in {targets!r}:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write('pwned')
        print('wrote', path)
    except OSError as err:
        print('denied', path, type(err).__name__)
writable = []
for root, dirs, _ in os.walk('/'):
    dirs[:] = [d for d in dirs if root != '/' or d not in ('proc', 'usr')]
    for probe_dir in [root] + (['/usr', '/usr/lib', '/usr/local'] if root == '/' else []):
        try:
            open(os.path.join(probe_dir, '.probe'), 'w').close()
            writable.append(probe_dir)
        except OSError:
            pass
print('writable', writable)
big = 0
try:
    with open('/work/big', 'wb') as f:
        while True:
            f.write(b'z' * (1 << 20))
            big += 1
except OSError:
    print('work dir full at', big, 'MiB')
"""
    r = sandbox.run(code)
    assert r.status == "ok", r
    for path in targets:
        assert not Path(path).exists(), f"{path} appeared on the host"
    # Inside, /tmp is the container's own /work/tmp: writable, gone after the run.
    assert f"wrote /tmp/{tag}" in r.stdout
    assert "denied /usr/" in r.stdout and "denied /etc/" in r.stdout
    # The container's /work (and /tmp, a link into it) is its only writable place: /dev, /dev/shm
    # and the root are read-only, so nothing can fill an unbounded tmpfs or outlive the run.
    (line,) = [ln for ln in r.stdout.splitlines() if ln.startswith("writable ")]
    writable = ast.literal_eval(line.removeprefix("writable "))
    assert writable[0] == "/work" and "/work/tmp" in writable
    assert all(p.startswith("/work/") for p in writable[1:]), writable
    # RLIMIT_FSIZE (16 MiB) stops a single file before the 64 MiB tmpfs fills up.
    assert "work dir full at 16 MiB" in r.stdout
    _assert_clean(sandbox)


def test_a_booby_trapped_work_dir_is_still_emptied(sandbox: Sandbox) -> None:
    # 3000 nested directories (deeper than PATH_MAX allows as one path, and than Python's
    # recursion limit), some made read-only, symlinks out to /usr, and /work itself chmod 0.
    code = """
import os
os.chdir('/work')
for i in range(3000):
    os.mkdir('d')
    open('f', 'w').write('x')
    os.symlink('/usr', 'l')
    if i % 7 == 0:
        os.chmod('.', 0o500)
    os.chdir('d')
os.chmod('/work', 0)
print('trapped')
"""
    restarts = sandbox.pool.restarts
    r = sandbox.run(code)
    assert (r.status, r.stdout) == ("ok", "trapped\n"), r
    _assert_clean(sandbox)
    assert sandbox.pool.restarts == restarts  # cleaned in place, not by replacing the container
    assert Path("/usr/bin/python3").exists()  # the symlinks' target was not followed


def test_no_network_at_all(sandbox: Sandbox) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    code = f"""
import socket
for addr in [('127.0.0.1', {port}), ('1.1.1.1', 53), ('8.8.8.8', 443)]:
    try:
        socket.create_connection(addr, timeout=1).close()
        print('connected', addr)
    except OSError as err:
        print('refused', addr, type(err).__name__)
print(sorted(name for _, name in socket.if_nameindex()))
"""
    try:
        r = sandbox.run(code)
        assert r.status == "ok", r
        assert "connected" not in r.stdout
        assert r.stdout.count("refused") == 3
        assert r.stdout.splitlines()[-1] == "['lo']"  # a new network namespace: loopback only
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody reached the host's listening socket
    finally:
        server.close()
    _assert_clean(sandbox)


def test_secrets_in_env_and_files_stay_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "k15-secret-" + uuid.uuid4().hex
    monkeypatch.setenv("K15RAY_TEST_SECRET", secret)  # in the parent before the workers start
    (tmp_path / "secret.txt").write_text(secret)
    ray_like = Path(f"/tmp/ray-{uuid.uuid4().hex}/session_latest")  # like Ray's auth token
    ray_like.mkdir(parents=True)
    (ray_like / "auth_token").write_text(secret)
    code = f"""
import os
seen = [repr(dict(os.environ))]  # the secret itself is not in this source: a regex finds it
for path in [{str(tmp_path / "secret.txt")!r}, {str(ray_like / "auth_token")!r}, '/proc/1/environ',
             '/proc/self/environ', '/proc/1/cmdline', '/root/.bashrc', '/etc/passwd', '/etc/shadow']:
    try:
        seen.append(open(path, errors='replace').read())
        print('read', path)
    except OSError as err:
        print('denied', path, type(err).__name__)
for root, dirs, files in os.walk('/'):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ('/proc', '/usr', '/dev')]
    for name in files:
        try:
            seen.append(open(os.path.join(root, name), errors='replace').read(1 << 16))
        except OSError:
            pass
print('tmp', os.listdir('/tmp'), 'root', os.path.exists('/root'), 'home', os.path.exists('/home'))
import re
found = sorted(set(re.findall('k15-secret-[0-9a-f]{{32}}', ' '.join(seen))))
print('found', found)
"""
    try:
        with Sandbox(SandboxConfig(workers=1)) as sb:
            r = sb.run(code)
            # Positive control: the same program does find the secret where it can see it.
            control = sb.run(code.replace("seen = [", "seen = [input(), "), stdin=secret)
        assert control.stdout.splitlines()[-1] == f"found [{secret!r}]"
        assert r.status == "ok", r
        assert secret not in r.stdout + r.stderr
        assert r.stdout.splitlines()[-1] == "found []"
        assert "tmp [] root False home False" in r.stdout
        assert "denied /proc/1/environ PermissionError" in r.stdout  # the zygote is not dumpable
    finally:
        (ray_like / "auth_token").unlink()
        ray_like.rmdir()
        ray_like.parent.rmdir()


def test_killing_the_parent_does_not_stop_the_service(sandbox: Sandbox) -> None:
    restarts = sandbox.pool.restarts
    code = """
import os, signal
for target in (os.getppid(), 1, -1):
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
        try:
            os.kill(target, sig)
        except OSError:
            pass
print('still here')
"""
    r = sandbox.run(code)
    # kill(-1, ...) reaches every process the program may signal but itself, and the kernel drops
    # signals sent to PID 1 (the zygote) from inside its namespace: the program prints, the
    # container goes on serving.
    assert r.status == "ok" and r.stdout == "still here\n", r
    assert sandbox.pool.restarts == restarts  # the same container goes on serving
    _assert_clean(sandbox)


def test_a_daemon_dies_with_its_run(sandbox: Sandbox) -> None:
    before = _container_processes(sandbox)
    marker = f"{time.time_ns() % 10**9}.25"
    code = f"""
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv('/usr/bin/sleep', ['sleep', '{marker}'])
    os._exit(0)
print('parent exits')
"""
    r = sandbox.run(code)
    assert r.status == "ok" and r.stdout == "parent exits\n", r
    assert _host_cmdlines_containing(f"sleep\0{marker}") == []  # no such process on the host
    _assert_clean(sandbox, before)


def test_a_container_killed_from_outside_is_replaced(sandbox: Sandbox) -> None:
    (bwrap_pid,) = sandbox.pool.pids
    restarts = sandbox.pool.restarts
    os.kill(bwrap_pid, 9)
    r = sandbox.run("print('back')")
    assert r.status == "ok" and r.stdout == "back\n"
    assert sandbox.pool.restarts == restarts + 1
    assert sandbox.pool.pids != [bwrap_pid]
