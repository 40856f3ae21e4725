"""The bubblewrap command line of one sandbox container (DESIGN.md, "Rewards and the sandbox").

A container sees: ``/usr`` (read-only, with the usual ``/bin``, ``/lib``... links), the loader
cache, a fresh ``/proc`` of its own PID namespace, a minimal ``/dev``, and a size-capped tmpfs
``/work`` (``/tmp`` links into it), which is the only writable place. Nothing else of the host: not ``/root``, ``/home``, ``/tmp``
(so not ``/tmp/ray`` and Ray's auth token), ``/etc`` beyond the loader cache, nor ``/work`` of the
host. It has no network (a new, empty network namespace), no inherited environment, runs as the
unprivileged uid/gid 65534 (``nobody``) with no capabilities, cannot create user namespaces, and
dies with the host process that started it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from k15ray.config.sandbox import SandboxConfig

NOBODY = "65534"
ZYGOTE_SOURCE = (Path(__file__).parent / "_zygote.py").read_text()


class SandboxUnavailableError(RuntimeError):
    """The sandbox cannot run on this machine (bubblewrap missing or not permitted)."""


def find_bwrap(config: SandboxConfig) -> str:
    """The bubblewrap executable, or a ``SandboxUnavailableError`` saying how to install it."""
    path = config.bwrap_path or shutil.which("bwrap")
    if not path or not os.access(path, os.X_OK):
        raise SandboxUnavailableError(
            "bubblewrap (`bwrap`) was not found"
            + (f" at {config.bwrap_path!r}" if config.bwrap_path else " on PATH")
            + ": install the Debian/Ubuntu package `bubblewrap` (apt-get install bubblewrap), "
            "or set sandbox.bwrap_path"
        )
    return path


def find_cxx(config: SandboxConfig) -> str | None:
    """The C++ compiler usable inside the sandbox (under /usr), or None when there is none."""
    path = config.cxx_path or shutil.which("g++")
    if not path:
        return None
    resolved = os.path.realpath(path)
    return resolved if resolved.startswith("/usr/") and os.access(resolved, os.X_OK) else None


def _root_links() -> list[str]:
    """Recreate /bin, /sbin, /lib, /lib32, /lib64 as on the host: links into /usr or binds."""
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    return args


def bwrap_argv(bwrap: str, config: SandboxConfig) -> list[str]:
    """The command that starts one container running the zygote (``_zygote.py``) as PID 1."""
    return [
        bwrap,
        "--unshare-all",  # user, pid, net, ipc, uts, cgroup namespaces
        "--unshare-user",
        "--disable-userns",
        "--uid", NOBODY,
        "--gid", NOBODY,
        "--hostname", "sandbox",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        "--clearenv",
        "--cap-drop", "ALL",
        "--ro-bind", "/usr", "/usr",
        *_root_links(),
        "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
        "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(config.work_dir_mb << 20),
        "--perms", "0700",
        "--tmpfs", "/work",
        "--symlink", "/work/tmp", "/tmp",
        "--remount-ro", "/",
        "--remount-ro", "/dev",  # else /dev (and /dev/shm) is a writable tmpfs of unbounded size
        "--chdir", "/work",
        config.python_path, "-I", "-S", "-c", ZYGOTE_SOURCE,
    ]  # fmt: skip
