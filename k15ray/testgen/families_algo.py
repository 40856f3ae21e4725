"""Generated code problems, part 2: range sums, primes, maximum subarray, recurrences, LIS, islands.

Same conventions as ``families_basic``: bodies read ``data`` and the problem's constants.
"""

from __future__ import annotations

import random
from typing import Any

from k15ray.testgen.family import (
    IO_NOTE,
    Family,
    Params,
    array_input,
    numbers_line,
    random_ints,
    size_n,
)


# --- range sums ---------------------------------------------------------------------------------
def _range_gen(p: Params, size: int, case: int) -> str:
    import cyaron

    n = size_n(size, case)
    values = random_ints(n, -p["V"], p["V"])
    q = size_n(size, case)
    lines = []
    for i in range(q):
        lo = int(cyaron.randint(1, n))
        hi = lo if i == 0 else int(cyaron.randint(lo, n))  # l == r at least once
        lines.append(f"{lo} {hi}")
    return array_input(values) + f"{q}\n" + "\n".join(lines) + "\n"


RANGE_SUMS = Family(
    name="range_sums",
    level=2,
    tags=("arrays", "prefix_sums"),
    statement=lambda p, s: (
        f"Read n (1 <= n <= {(10, 60, 300)[s - 1]}), then n integers a_1..a_n (|a_i| <= {p['V']}), "
        "then q and q lines each holding l r (1 <= l <= r <= n). For each query print "
        "a_l + ... + a_r on its own line.\n\n" + IO_NOTE
    ),
    params=lambda rng: {"V": rng.choice([9, 100, 10**6])},
    generate=_range_gen,
    bodies=(
        "n = int(data[0])\na = list(map(int, data[1:n + 1]))\npre = [0]\nfor x in a:\n    pre.append(pre[-1] + x)\nq = int(data[n + 1])\nout = []\nfor i in range(q):\n    l, r = int(data[n + 2 + 2 * i]), int(data[n + 3 + 2 * i])\n    out.append(pre[r] - pre[l - 1])\nprint('\\n'.join(map(str, out)))",
        "import itertools\nn = int(data[0])\npre = [0, *itertools.accumulate(map(int, data[1:n + 1]))]\nq = int(data[n + 1])\nrest = list(map(int, data[n + 2:n + 2 + 2 * q]))\nfor l, r in zip(rest[0::2], rest[1::2]):\n    print(pre[r] - pre[l - 1])",
        "n = int(data[0])\na = [int(x) for x in data[1:n + 1]]\nq = int(data[n + 1])\npos = n + 2\nfor _ in range(q):\n    l, r = int(data[pos]), int(data[pos + 1])\n    pos += 2\n    print(sum(a[l - 1:r]))",
        "n = int(data[0])\nit = iter(data[1:])\na = [int(next(it)) for _ in range(n)]\ntotal = 0\npre = {0: 0}\nfor i, x in enumerate(a, 1):\n    total += x\n    pre[i] = total\nfor _ in range(int(next(it))):\n    l = int(next(it))\n    r = int(next(it))\n    print(pre[r] - pre[l - 1])",
    ),
    wrong=(
        "n = int(data[0])\na = [int(x) for x in data[1:n + 1]]\nq = int(data[n + 1])\nfor i in range(q):\n    l, r = int(data[n + 2 + 2 * i]), int(data[n + 3 + 2 * i])\n    print(sum(a[l - 1:r - 1]))",  # r exclusive
        "n = int(data[0])\na = [int(x) for x in data[1:n + 1]]\nq = int(data[n + 1])\nfor i in range(q):\n    l, r = int(data[n + 2 + 2 * i]), int(data[n + 3 + 2 * i])\n    print(sum(a[l:r]))",  # 0-based l
    ),
)


# --- primes up to n -----------------------------------------------------------------------------
def _primes_gen(p: Params, size: int, case: int) -> str:
    import cyaron

    top = (30, 2000, p["N"])[size - 1]
    q = size_n(size, case) if size < 3 else min(size_n(size, case), 20)
    values = [int(cyaron.randint(1, top)) for _ in range(q)]
    if case < 5:
        values[0] = (1, 2, 4, 9, 25)[case]  # 1, the first prime, squares of primes
    return f"{q}\n{numbers_line(values)}\n"


COUNT_PRIMES = Family(
    name="count_primes",
    level=2,
    tags=("math", "number_theory"),
    statement=lambda p, s: (
        f"Read q and then q integers 1 <= x_i <= {(30, 2000, p['N'])[s - 1]}. For each x_i print the "
        "number of primes p <= x_i, one per line.\n\n" + IO_NOTE
    ),
    params=lambda rng: {"N": rng.choice([5000, 10000, 20000])},
    generate=_primes_gen,
    bodies=(
        "q = int(data[0])\nxs = [int(x) for x in data[1:q + 1]]\nm = max(xs)\nsieve = [True] * (m + 1)\nsieve[0] = False\nif m >= 1:\n    sieve[1] = False\nfor i in range(2, int(m ** 0.5) + 1):\n    if sieve[i]:\n        for j in range(i * i, m + 1, i):\n            sieve[j] = False\ncount = [0] * (m + 1)\nfor i in range(1, m + 1):\n    count[i] = count[i - 1] + sieve[i]\nprint('\\n'.join(str(count[x]) for x in xs))",
        "q = int(data[0])\nxs = list(map(int, data[1:q + 1]))\nm = max(xs)\nflags = bytearray([1]) * (m + 1)\nflags[0:2] = b'\\x00\\x00'[:min(2, m + 1)]\nfor i in range(2, int(m ** 0.5) + 1):\n    if flags[i]:\n        flags[i * i::i] = bytearray(len(range(i * i, m + 1, i)))\nfor x in xs:\n    print(sum(flags[:x + 1]))",
        "def is_prime(k):\n    if k < 2:\n        return False\n    if k % 2 == 0:\n        return k == 2\n    d = 3\n    while d * d <= k:\n        if k % d == 0:\n            return False\n        d += 2\n    return True\nq = int(data[0])\nxs = list(map(int, data[1:q + 1]))\nprimes = [k for k in range(max(xs) + 1) if is_prime(k)]\nimport bisect\nfor x in xs:\n    print(bisect.bisect_right(primes, x))",
        "q = int(data[0])\nxs = list(map(int, data[1:q + 1]))\nm = max(xs)\nprimes = []\nfor k in range(2, m + 1):\n    is_p = True\n    for p in primes:\n        if p * p > k:\n            break\n        if k % p == 0:\n            is_p = False\n            break\n    if is_p:\n        primes.append(k)\nfor x in xs:\n    print(len([p for p in primes if p <= x]))",
    ),
    wrong=(
        "q = int(data[0])\nxs = [int(x) for x in data[1:q + 1]]\nm = max(xs)\nsieve = [True] * (m + 1)\nsieve[0] = False\nfor i in range(2, int(m ** 0.5) + 1):\n    if sieve[i]:\n        for j in range(i * i, m + 1, i):\n            sieve[j] = False\nfor x in xs:\n    print(sum(sieve[:x + 1]))",  # counts 1 as a prime
        "q = int(data[0])\nxs = [int(x) for x in data[1:q + 1]]\nm = max(xs)\nsieve = [False, False] + [True] * (m - 1)\nfor i in range(2, int(m ** 0.5)):\n    if sieve[i]:\n        for j in range(i * i, m + 1, i):\n            sieve[j] = False\nfor x in xs:\n    print(sum(sieve[:x + 1]))",  # stops one divisor early
    ),
)


# --- maximum subarray ---------------------------------------------------------------------------
def _maxsub_gen(p: Params, size: int, case: int) -> str:
    n = size_n(size, case)
    if case in (3, 4):
        return array_input(random_ints(n, -p["V"], -1))  # all negative
    return array_input(random_ints(n, -p["V"], p["V"]))


MAX_SUBARRAY = Family(
    name="max_subarray",
    level=3,
    tags=("arrays", "dynamic_programming"),
    statement=lambda p, s: (
        f"Read n (1 <= n <= {(10, 60, 300)[s - 1]}) and n integers (|a_i| <= {p['V']}). Print the "
        "largest sum of a non-empty block of consecutive elements.\n\n" + IO_NOTE
    ),
    params=lambda rng: {"V": rng.choice([5, 50, 1000, 10**6])},
    generate=_maxsub_gen,
    bodies=(
        "n = int(data[0])\na = list(map(int, data[1:n + 1]))\nbest = cur = a[0]\nfor x in a[1:]:\n    cur = max(x, cur + x)\n    best = max(best, cur)\nprint(best)",
        "n = int(data[0])\ns = 0\nlow = 0\nbest = None\nfor x in map(int, data[1:n + 1]):\n    s += x\n    if best is None or s - low > best:\n        best = s - low\n    low = min(low, s)\nprint(best)",
        "n = int(data[0])\na = [int(x) for x in data[1:n + 1]]\nbest = a[0]\nfor i in range(n):\n    t = 0\n    for j in range(i, n):\n        t += a[j]\n        if t > best:\n            best = t\nprint(best)",
        "def solve(a, lo, hi):\n    if hi - lo == 1:\n        return a[lo]\n    mid = (lo + hi) // 2\n    left = s = a[mid - 1]\n    for i in range(mid - 2, lo - 1, -1):\n        s += a[i]\n        left = max(left, s)\n    right = s = a[mid]\n    for i in range(mid + 1, hi):\n        s += a[i]\n        right = max(right, s)\n    return max(solve(a, lo, mid), solve(a, mid, hi), left + right)\nn = int(data[0])\nprint(solve([int(x) for x in data[1:n + 1]], 0, n))",
    ),
    wrong=(
        "n = int(data[0])\nbest = cur = 0\nfor x in map(int, data[1:n + 1]):\n    cur = max(0, cur + x)\n    best = max(best, cur)\nprint(best)",  # allows the empty block
        "n = int(data[0])\ns = 0\nbest = None\nfor x in map(int, data[1:n + 1]):\n    s += x\n    best = s if best is None else max(best, s)\nprint(best)",  # prefixes only
    ),
)


# --- linear recurrence modulo M -----------------------------------------------------------------
def _rec_gen(p: Params, size: int, case: int) -> str:
    import cyaron

    top = (20, 2000, 30000)[size - 1]
    q = min(size_n(size, case), 10)
    values = [int(cyaron.randint(0, top)) for _ in range(q)]
    if case < 3:
        values[0] = case  # F(0), F(1), F(2)
    return f"{q}\n{numbers_line(values)}\n"


LINEAR_RECURRENCE = Family(
    name="linear_recurrence",
    level=3,
    tags=("math", "dynamic_programming"),
    statement=lambda p, s: (
        f"F(0) = {p['A']}, F(1) = {p['B']} and F(k) = {p['C']} * F(k-1) + F(k-2) for k >= 2. Read q "
        f"and then q integers 0 <= n_i <= {(20, 2000, 30000)[s - 1]}; for each print F(n_i) mod "
        f"{p['M']} on its own line.\n\n" + IO_NOTE
    ),
    params=lambda rng: _rec_params(rng),
    generate=_rec_gen,
    bodies=(
        "q = int(data[0])\nfor t in data[1:q + 1]:\n    a, b = A % M, B % M\n    for _ in range(int(t)):\n        a, b = b, (C * b + a) % M\n    print(a)",
        "q = int(data[0])\nns = [int(t) for t in data[1:q + 1]]\nf = [A % M, B % M]\nwhile len(f) <= max(ns):\n    f.append((C * f[-1] + f[-2]) % M)\nprint('\\n'.join(str(f[k]) for k in ns))",
        "def mul(x, y):\n    return [[(x[i][0] * y[0][j] + x[i][1] * y[1][j]) % M for j in range(2)] for i in range(2)]\ndef power(m, e):\n    r = [[1, 0], [0, 1]]\n    while e:\n        if e & 1:\n            r = mul(r, m)\n        m = mul(m, m)\n        e >>= 1\n    return r\nq = int(data[0])\nfor t in data[1:q + 1]:\n    k = int(t)\n    if k == 0:\n        print(A % M)\n        continue\n    r = power([[C, 1], [1, 0]], k - 1)\n    print((r[0][0] * B + r[0][1] * A) % M)",
        "memo = {0: A % M, 1: B % M}\ndef f(k):\n    for i in range(2, k + 1):\n        if i not in memo:\n            memo[i] = (C * memo[i - 1] + memo[i - 2]) % M\n    return memo[k]\nq = int(data[0])\nprint('\\n'.join(str(f(int(t))) for t in data[1:q + 1]))",
    ),
    wrong=(
        "q = int(data[0])\nfor t in data[1:q + 1]:\n    a, b = A % M, B % M\n    for _ in range(int(t) + 1):\n        a, b = b, (C * b + a) % M\n    print(a)",  # F(n + 1)
        "q = int(data[0])\nfor t in data[1:q + 1]:\n    a, b = B % M, A % M\n    for _ in range(int(t)):\n        a, b = b, (C * b + a) % M\n    print(a)",  # swapped start values
    ),
)


def _rec_params(rng: random.Random) -> dict[str, Any]:
    m = rng.choice([1000, 10007, 998244353, 10**9 + 7])
    return {"A": rng.randint(0, 9), "B": rng.randint(1, 9), "C": rng.randint(1, 4), "M": m}


# --- longest increasing subsequence -------------------------------------------------------------
def _lis_gen(p: Params, size: int, case: int) -> str:
    n = size_n(size, case)
    return array_input(random_ints(n, 1, p["V"]))  # a small range makes repeated values


LIS = Family(
    name="lis",
    level=3,
    tags=("arrays", "dynamic_programming"),
    statement=lambda p, s: (
        f"Read n (1 <= n <= {(10, 60, 300)[s - 1]}) and n integers in [1, {p['V']}]. Print the length "
        "of the longest strictly increasing subsequence (not necessarily contiguous).\n\n" + IO_NOTE
    ),
    params=lambda rng: {"V": rng.choice([5, 10, 30, 1000])},
    generate=_lis_gen,
    bodies=(
        "import bisect\nn = int(data[0])\ntails = []\nfor x in map(int, data[1:n + 1]):\n    i = bisect.bisect_left(tails, x)\n    if i == len(tails):\n        tails.append(x)\n    else:\n        tails[i] = x\nprint(len(tails))",
        "n = int(data[0])\na = [int(x) for x in data[1:n + 1]]\nbest = [1] * n\nfor i in range(n):\n    for j in range(i):\n        if a[j] < a[i] and best[j] + 1 > best[i]:\n            best[i] = best[j] + 1\nprint(max(best))",
        "n = int(data[0])\ntails = []\nfor x in map(int, data[1:n + 1]):\n    lo, hi = 0, len(tails)\n    while lo < hi:\n        mid = (lo + hi) // 2\n        if tails[mid] < x:\n            lo = mid + 1\n        else:\n            hi = mid\n    tails[lo:lo + 1] = [x]\nprint(len(tails))",
        "n = int(data[0])\na = [int(x) for x in data[1:n + 1]]\nL = []\nfor i, x in enumerate(a):\n    L.append(1 + max([L[j] for j in range(i) if a[j] < x], default=0))\nprint(max(L))",
    ),
    wrong=(
        "import bisect\nn = int(data[0])\ntails = []\nfor x in map(int, data[1:n + 1]):\n    i = bisect.bisect_right(tails, x)\n    if i == len(tails):\n        tails.append(x)\n    else:\n        tails[i] = x\nprint(len(tails))",  # non-decreasing
        "n = int(data[0])\na = [int(x) for x in data[1:n + 1]]\nbest = run = 1\nfor i in range(1, n):\n    run = run + 1 if a[i] > a[i - 1] else 1\n    best = max(best, run)\nprint(best)",  # contiguous runs
    ),
)


# --- islands in a grid --------------------------------------------------------------------------
def _islands_gen(p: Params, size: int, case: int) -> str:
    import cyaron

    side = (4, 8, 16)[size - 1]
    rows, cols = int(cyaron.randint(1, side)), int(cyaron.randint(1, side))
    density = (0.3, 0.45, 0.6)[case % 3]
    grid = ["".join("#" if random.random() < density else "." for _ in range(cols)) for _ in range(rows)]
    return f"{rows} {cols}\n" + "\n".join(grid) + "\n"


_STEPS = {4: "[(1, 0), (-1, 0), (0, 1), (0, -1)]", 8: "[(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if a or b]"}

ISLANDS = Family(
    name="islands",
    level=3,
    tags=("graphs", "grids"),
    statement=lambda p, s: (
        f"Read r and c (1 <= r, c <= {(4, 8, 16)[s - 1]}) and then r lines of c characters, each . "
        f"(water) or # (land). Land cells are connected when they touch {'by a side' if p['CONN'] == 4 else 'by a side or a corner'}. "
        "Print the number of islands (connected groups of land cells).\n\n" + IO_NOTE
    ),
    params=lambda rng: {"CONN": rng.choice([4, 8])},
    generate=_islands_gen,
    bodies=(
        "from collections import deque\nr, c = int(data[0]), int(data[1])\ng = data[2:2 + r]\nSTEPS = " + _STEPS[8] + " if CONN == 8 else " + _STEPS[4] + "\nseen = set()\ncount = 0\nfor i in range(r):\n    for j in range(c):\n        if g[i][j] == '#' and (i, j) not in seen:\n            count += 1\n            seen.add((i, j))\n            dq = deque([(i, j)])\n            while dq:\n                y, x = dq.popleft()\n                for dy, dx in STEPS:\n                    ny, nx = y + dy, x + dx\n                    if 0 <= ny < r and 0 <= nx < c and g[ny][nx] == '#' and (ny, nx) not in seen:\n                        seen.add((ny, nx))\n                        dq.append((ny, nx))\nprint(count)",
        "r, c = int(data[0]), int(data[1])\ng = [list(row) for row in data[2:2 + r]]\ncount = 0\nfor i in range(r):\n    for j in range(c):\n        if g[i][j] != '#':\n            continue\n        count += 1\n        stack = [(i, j)]\n        g[i][j] = '.'\n        while stack:\n            y, x = stack.pop()\n            for dy in (-1, 0, 1):\n                for dx in (-1, 0, 1):\n                    if (dy or dx) and (CONN == 8 or dy == 0 or dx == 0):\n                        ny, nx = y + dy, x + dx\n                        if 0 <= ny < r and 0 <= nx < c and g[ny][nx] == '#':\n                            g[ny][nx] = '.'\n                            stack.append((ny, nx))\nprint(count)",
        "r, c = int(data[0]), int(data[1])\ng = data[2:2 + r]\nparent = {}\ndef find(a):\n    while parent[a] != a:\n        parent[a] = parent[parent[a]]\n        a = parent[a]\n    return a\nfor i in range(r):\n    for j in range(c):\n        if g[i][j] == '#':\n            parent[(i, j)] = (i, j)\nfor (i, j) in list(parent):\n    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):\n        if CONN == 4 and dy and dx:\n            continue\n        o = (i + dy, j + dx)\n        if o in parent:\n            parent[find(o)] = find((i, j))\nprint(len({find(a) for a in parent}))",
        "import sys\nsys.setrecursionlimit(10000)\nr, c = int(data[0]), int(data[1])\ng = data[2:2 + r]\nseen = [[False] * c for _ in range(r)]\ndef fill(y, x):\n    if not (0 <= y < r and 0 <= x < c) or seen[y][x] or g[y][x] != '#':\n        return\n    seen[y][x] = True\n    for dy in (-1, 0, 1):\n        for dx in (-1, 0, 1):\n            if abs(dy) + abs(dx) == 1 or (CONN == 8 and dy and dx):\n                fill(y + dy, x + dx)\nn = 0\nfor y in range(r):\n    for x in range(c):\n        if g[y][x] == '#' and not seen[y][x]:\n            n += 1\n            fill(y, x)\nprint(n)",
    ),
    wrong=(
        "from collections import deque\nr, c = int(data[0]), int(data[1])\ng = data[2:2 + r]\nSTEPS = " + _STEPS[4] + " if CONN == 8 else " + _STEPS[8] + "\nseen = set()\ncount = 0\nfor i in range(r):\n    for j in range(c):\n        if g[i][j] == '#' and (i, j) not in seen:\n            count += 1\n            seen.add((i, j))\n            dq = deque([(i, j)])\n            while dq:\n                y, x = dq.popleft()\n                for dy, dx in STEPS:\n                    ny, nx = y + dy, x + dx\n                    if 0 <= ny < r and 0 <= nx < c and g[ny][nx] == '#' and (ny, nx) not in seen:\n                        seen.add((ny, nx))\n                        dq.append((ny, nx))\nprint(count)",  # the other connectivity
        "r, c = int(data[0]), int(data[1])\ng = data[2:2 + r]\nn = 0\nfor i in range(r):\n    for j in range(c):\n        if g[i][j] == '#' and not (i and g[i - 1][j] == '#') and not (j and g[i][j - 1] == '#'):\n            n += 1\nprint(n)",  # counts top-left corners: wrong for U shapes
    ),
)


FAMILIES_ALGO: tuple[Family, ...] = (RANGE_SUMS, COUNT_PRIMES, MAX_SUBARRAY, LINEAR_RECURRENCE, LIS, ISLANDS)
