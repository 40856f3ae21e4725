"""The seccomp filter, run through a small classic-BPF interpreter (the kernel's semantics)."""

from __future__ import annotations

import struct

import pytest

from k15ray.sandbox.seccomp import _AARCH64, _X86_64, DENIED, seccomp_program

ALLOW, EPERM, KILL = 0x7FFF0000, 0x00050001, 0x80000000
X86_64, AARCH64, I386 = 0xC000003E, 0xC00000B7, 0x40000003


def run_bpf(program: bytes, nr: int, arch: int) -> int:
    """Evaluate ``program`` on seccomp_data {nr, arch}: LD abs, JEQ/JGE with K, RET K only."""
    insns = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    data = {0: nr, 4: arch}
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = data[k]
        elif code in (0x15, 0x35):
            taken = acc == k if code == 0x15 else acc >= k
            pc += jt if taken else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        pc += 1


@pytest.mark.parametrize(
    ("machine", "arch", "numbers"), [("x86_64", X86_64, _X86_64), ("aarch64", AARCH64, _AARCH64)]
)
def test_filter_refuses_exactly_the_denied_calls(
    machine: str, arch: int, numbers: dict[str, int]
) -> None:
    program = seccomp_program(machine)
    assert program is not None
    # 3 header insns (+1 x32 check on x86-64) + one JEQ per denied call + allow/errno/kill
    assert len(program) == 8 * (3 + (machine == "x86_64") + len(DENIED) + 3)
    denied = {numbers[name] for name in DENIED}
    for nr in range(0, 460):
        assert run_bpf(program, nr, arch) == (EPERM if nr in denied else ALLOW), nr
    assert run_bpf(program, 0, I386) == KILL  # another ABI: killed, not filtered by number
    if machine == "x86_64":
        assert run_bpf(program, 0x40000000 + 0, arch) == EPERM  # x32 read(2): refused
    # read, write, openat, clone, execve, wait4, pidfd_open must stay allowed (the zygote's own)
    essentials = {
        "x86_64": [0, 1, 257, 56, 59, 61, 434],
        "aarch64": [63, 64, 56, 220, 221, 260, 434],
    }
    assert all(run_bpf(program, nr, arch) == ALLOW for nr in essentials[machine])


def test_unsupported_architecture_has_no_filter() -> None:
    assert seccomp_program("riscv64") is None
