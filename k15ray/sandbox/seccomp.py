"""A seccomp filter for the sandbox: system calls a test program never needs, refused with EPERM.

Why: without cgroups, memory is bounded per process (``RLIMIT_AS``), and a few kinds of kernel
memory escape that bound and outlive the process: System V shared memory, message queues and
semaphores (they live as long as the IPC namespace, i.e. the reused container), POSIX message
queues, and ``memfd`` files. Refusing them keeps "the host is untouched" true under a hostile
program. The rest of the list closes kernel interfaces that only widen the attack surface
(``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring``, keyrings, ``ptrace``, cross-process
memory access, mounts and namespaces).

The filter is classic BPF (``struct sock_filter``: u16 code, u8 jt, u8 jf, u32 k) handed to
``bwrap --seccomp FD``. It checks the architecture first (another ABI, e.g. i386 system calls made
from an x86-64 process, kills the process) and, on x86-64, refuses the x32 ABI's numbers.
Supported: x86-64 and aarch64; elsewhere ``seccomp_program`` returns None and no filter is used.
"""

from __future__ import annotations

import errno
import platform
import struct

# BPF opcodes (linux/filter.h, linux/bpf_common.h)
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
# seccomp_data offsets and return values (linux/seccomp.h)
_NR_OFFSET, _ARCH_OFFSET = 0, 4
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
_X32_SYSCALL_BIT = 0x40000000

# fmt: off
DENIED = (
    "shmget", "shmat", "shmctl", "semget", "semop", "semctl", "semtimedop", "msgget", "msgsnd",
    "msgrcv", "msgctl", "mq_open", "memfd_create", "keyctl", "add_key", "request_key", "bpf",
    "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kexec_load", "mount",
    "umount2", "pivot_root", "unshare", "setns",
)
# fmt: on

# System call numbers: asm/unistd_64.h (x86-64) and asm-generic/unistd.h (aarch64).
_X86_64 = dict(
    shmget=29, shmat=30, shmctl=31, semget=64, semop=65, semctl=66, semtimedop=220, msgget=68,
    msgsnd=69, msgrcv=70, msgctl=71, mq_open=240, memfd_create=319, keyctl=250, add_key=248,
    request_key=249, bpf=321, perf_event_open=298, userfaultfd=323, io_uring_setup=425,
    io_uring_enter=426, io_uring_register=427, ptrace=101, process_vm_readv=310,
    process_vm_writev=311, pidfd_getfd=438, kexec_load=246, mount=165, umount2=166,
    pivot_root=155, unshare=272, setns=308,
)  # fmt: skip
_AARCH64 = dict(
    shmget=194, shmat=196, shmctl=195, semget=190, semop=193, semctl=191, semtimedop=192,
    msgget=186, msgsnd=189, msgrcv=188, msgctl=187, mq_open=180, memfd_create=279, keyctl=219,
    add_key=217, request_key=218, bpf=280, perf_event_open=241, userfaultfd=282,
    io_uring_setup=425, io_uring_enter=426, io_uring_register=427, ptrace=117,
    process_vm_readv=270, process_vm_writev=271, pidfd_getfd=438, kexec_load=104, mount=40,
    umount2=39, pivot_root=41, unshare=97, setns=268,
)  # fmt: skip
# AUDIT_ARCH_* (linux/audit.h): the architecture word of seccomp_data
_ARCHES = {"x86_64": (0xC000003E, _X86_64), "aarch64": (0xC00000B7, _AARCH64)}


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The filter for ``machine`` (default: this one), or None where it is not supported."""
    arch = _ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, numbers = arch
    nrs = sorted({numbers[name] for name in DENIED})
    # Layout: [ld arch][jeq arch][ld nr][x32 check?][jeq nr]*len(nrs)[allow][errno][kill]
    x32 = numbers is _X86_64
    n = 3 + int(x32) + len(nrs) + 3
    errno_at, kill_at = n - 2, n - 1
    prog = [_insn(_LD_W_ABS, _ARCH_OFFSET)]
    prog.append(_insn(_JEQ_K, audit_arch, 0, kill_at - 2))  # wrong ABI -> kill
    prog.append(_insn(_LD_W_ABS, _NR_OFFSET))
    if x32:
        prog.append(_insn(_JGE_K, _X32_SYSCALL_BIT, errno_at - 4, 0))
    for nr in nrs:
        i = len(prog)
        prog.append(_insn(_JEQ_K, nr, errno_at - (i + 1), 0))
    prog.append(_insn(_RET_K, _RET_ALLOW))
    prog.append(_insn(_RET_K, _RET_ERRNO | errno.EPERM))
    prog.append(_insn(_RET_K, _RET_KILL_PROCESS))
    assert len(prog) == n
    return b"".join(prog)
