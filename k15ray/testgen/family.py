"""Families of generated code problems: one statement, one CYaRon input generator, many solutions.

A ``Family`` is a problem with parameters (a modulus, a divisor, a bracket alphabet, ...): each of
its problems fixes the parameters and an input size. Its reference solutions are written
differently on purpose (paper 2.3.5 asks for several ground-truth solutions per problem so that
their outputs can vote): every ``bodies`` entry is a different algorithm or formulation, and each
is combined with each of the ``READERS`` (three ways of reading stdin), so 4 bodies give 12
programs. ``wrong`` holds plausible buggy solutions (off-by-one, a missed edge case, a wrong tie
rule) that the agreement rules must catch.

A solution program is: the problem's constants (``K = 7``), a reader (which leaves the input's
whitespace-separated tokens in ``data``), then the body.

Inputs come from ``generate(params, size, case)``, written with CYaRon's API (``cyaron.randint``,
``cyaron.Vector.random``, ``cyaron.String.random``), which draws from Python's global ``random``:
``generate_inputs`` seeds it per (problem, case), so the same problem always gets the same inputs.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

READERS: tuple[str, ...] = (
    "import sys\ndata = sys.stdin.read().split()\n",
    "import sys\ndata = [tok for line in sys.stdin for tok in line.split()]\n",
    "data = open(0).read().split()\n",
)
"""Three ways to read all of stdin into ``data``, the list of its whitespace-separated tokens."""

IO_NOTE = "Read from standard input, write to standard output, and give your program in a ```python code block."
SIZES: tuple[int, ...] = (1, 2, 3)
"""Input size levels: small, medium, large (each family says what they mean)."""

Params = Mapping[str, Any]
Generator = Callable[[Params, int, int], str]


@dataclass(frozen=True)
class Family:
    """A parametrised problem: statement, CYaRon generator, correct bodies and wrong ones."""

    name: str
    level: int
    """Base difficulty (1 = easiest); a problem's difficulty is level + size - 1."""
    tags: tuple[str, ...]
    statement: Callable[[Params, int], str]
    params: Callable[[random.Random], dict[str, Any]]
    generate: Generator
    bodies: tuple[str, ...]
    wrong: tuple[str, ...]

    def program(self, params: Params, body: str, reader: int = 0) -> str:
        """A complete solution: constants, reader, body."""
        constants = "".join(f"{k} = {v!r}\n" for k, v in params.items())
        return constants + READERS[reader] + body.strip("\n") + "\n"

    def correct_programs(self, params: Params) -> list[str]:
        """Every body with every reader: len(bodies) * len(READERS) differently written programs."""
        return [self.program(params, b, r) for b in self.bodies for r in range(len(READERS))]

    def wrong_programs(self, params: Params) -> list[str]:
        return [self.program(params, b, i % len(READERS)) for i, b in enumerate(self.wrong)]


def case_seed(problem_id: str, case: int) -> int:
    """The seed of one input of one problem."""
    return zlib.crc32(f"{problem_id}/{case}".encode())


def numbers_line(values: list[int]) -> str:
    return " ".join(str(v) for v in values)


def array_input(values: list[int]) -> str:
    """``n`` on the first line, the values on the second."""
    return f"{len(values)}\n{numbers_line(values)}\n"


def random_ints(n: int, low: int, high: int) -> list[int]:
    """n integers in [low, high], repeats allowed (``cyaron.Vector.random`` in repeatable mode)."""
    import cyaron
    from cyaron.vector import VectorRandomMode

    return [int(v[0]) for v in cyaron.Vector.random(n, [(low, high)], VectorRandomMode.repeatable)]


def size_n(size: int, case: int) -> int:
    """How many values an input of this size level holds: the first cases are the smallest
    (edge cases: 1, 2, 3 values), then random up to 10 / 60 / 300."""
    import cyaron

    if case < 3:
        return case + 1
    return int(cyaron.randint(1, (10, 60, 300)[size - 1]))
