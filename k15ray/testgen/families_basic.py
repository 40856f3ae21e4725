"""Generated code problems, part 1: sums, divisibility, gcd, bases, modes, brackets, pairs.

Each family's ``bodies`` are correct solutions written differently; ``wrong`` are buggy ones the
agreement rules must catch. Bodies read the tokens of stdin from ``data`` (``family.READERS``) and
the problem's constants (``M``, ``K``, ...) as globals.
"""

from __future__ import annotations

import random
from typing import Any

from k15ray.testgen.family import IO_NOTE, Family, Params, array_input, random_ints, size_n


def _values_bound(size: int) -> int:
    return (20, 1000, 10**9)[size - 1]


# --- sum modulo M -------------------------------------------------------------------------------
def _sum_mod_gen(p: Params, size: int, case: int) -> str:
    v = _values_bound(size)
    n = size_n(size, case)
    if case == 3:
        return array_input(random_ints(n, -v, -1))  # all negative: the sum's residue must be >= 0
    return array_input(random_ints(n, -v, v))


SUM_MOD = Family(
    name="sum_mod",
    level=1,
    tags=("math", "arrays"),
    statement=lambda p, s: (
        f"Read an integer n (1 <= n <= {(10, 60, 300)[s - 1]}) and then n integers a_1..a_n "
        f"(|a_i| <= {_values_bound(s)}). Print (a_1 + ... + a_n) mod {p['M']}, as a number in "
        f"[0, {p['M'] - 1}].\n\n{IO_NOTE}"
    ),
    params=lambda rng: {"M": rng.choice([7, 10, 13, 97, 101, 1000, 1009, 65537, 998244353, 10**9 + 7])},
    generate=_sum_mod_gen,
    bodies=(
        "n = int(data[0])\nprint(sum(int(x) for x in data[1:n + 1]) % M)",
        "n = int(data[0])\ns = 0\nfor x in data[1:n + 1]:\n    s = (s + int(x)) % M\nprint(s)",
        "import functools\nn = int(data[0])\nprint(functools.reduce(lambda acc, x: (acc + int(x)) % M, data[1:n + 1], 0))",
        "n = int(data[0])\nvals = list(map(int, data[1:1 + n]))\nprint(sum(v % M for v in vals) % M)",
    ),
    wrong=(
        "import math\nn = int(data[0])\nprint(int(math.fmod(sum(map(int, data[1:n + 1])), M)))",  # negative residues
        "n = int(data[0])\nprint(sum(map(int, data[1:n])) % M)",  # drops the last value
    ),
)


# --- count multiples of K -----------------------------------------------------------------------
def _count_div_gen(p: Params, size: int, case: int) -> str:
    v = _values_bound(size)
    n = size_n(size, case)
    if case in (3, 4):
        return array_input([p["K"] * x for x in random_ints(n, -5, 5)])  # zeros and negative multiples
    return array_input(random_ints(n, -v, v))


COUNT_DIVISIBLE = Family(
    name="count_divisible",
    level=1,
    tags=("math", "arrays"),
    statement=lambda p, s: (
        f"Read an integer n (1 <= n <= {(10, 60, 300)[s - 1]}) and then n integers "
        f"(|a_i| <= {_values_bound(s)}). Print how many of them are divisible by {p['K']} "
        f"(0 and negative multiples count).\n\n{IO_NOTE}"
    ),
    params=lambda rng: {"K": rng.randint(2, 13)},
    generate=_count_div_gen,
    bodies=(
        "n = int(data[0])\nprint(sum(1 for x in data[1:n + 1] if int(x) % K == 0))",
        "n = int(data[0])\nc = 0\nfor i in range(1, n + 1):\n    if int(data[i]) % K == 0:\n        c += 1\nprint(c)",
        "n = int(data[0])\nprint(len([x for x in map(int, data[1:n + 1]) if x % K == 0]))",
        "n = int(data[0])\nprint(list(map(lambda v: int(v) % K, data[1:n + 1])).count(0))",
    ),
    wrong=(
        "n = int(data[0])\nprint(sum(1 for x in data[1:n + 1] if int(x) > 0 and int(x) % K == 0))",  # skips 0, negatives
        "n = int(data[0])\nprint(sum(1 for x in data[1:n + 1] if int(x) // K * K == int(x) and int(x) != 0))",  # skips 0
    ),
)


# --- gcd of n numbers ---------------------------------------------------------------------------
def _gcd_gen(p: Params, size: int, case: int) -> str:
    import cyaron

    n = size_n(size, case)
    g = int(cyaron.randint(1, p["G"]))
    return array_input([g * x for x in random_ints(n, 1, _values_bound(size) // p["G"] + 1)])


GCD_ALL = Family(
    name="gcd_all",
    level=1,
    tags=("math", "number_theory"),
    statement=lambda p, s: (
        f"Read an integer n (1 <= n <= {(10, 60, 300)[s - 1]}) and then n positive integers. "
        f"Print their greatest common divisor.\n\n{IO_NOTE}"
    ),
    params=lambda rng: {"G": rng.choice([2, 3, 6, 10, 12, 30])},
    generate=_gcd_gen,
    bodies=(
        "import functools, math\nn = int(data[0])\nprint(functools.reduce(math.gcd, map(int, data[1:n + 1])))",
        "n = int(data[0])\ng = 0\nfor x in data[1:n + 1]:\n    a, b = g, int(x)\n    while b:\n        a, b = b, a % b\n    g = a\nprint(g)",
        "import sys\nsys.setrecursionlimit(10000)\ndef gcd(a, b):\n    return a if b == 0 else gcd(b, a % b)\nn = int(data[0])\ng = int(data[1])\nfor x in data[2:n + 1]:\n    g = gcd(g, int(x))\nprint(g)",
        "import math\nn = int(data[0])\nprint(math.gcd(*[int(x) for x in data[1:n + 1]]))",
    ),
    wrong=(
        "import math\nn = int(data[0])\nprint(math.gcd(int(data[1]), int(data[min(2, n)])))",  # first two only
        "n = int(data[0])\nprint(min(int(x) for x in data[1:n + 1]))",  # the minimum
    ),
)


# --- numbers in base B --------------------------------------------------------------------------
def _base_gen(p: Params, size: int, case: int) -> str:
    n = size_n(size, case)
    values = random_ints(n, 0, _values_bound(size))
    if case < 3:
        values[0] = case  # 0, 1 and 2 early: zero is the classic miss
    return array_input(values)


BASE_CONVERT = Family(
    name="base_convert",
    level=2,
    tags=("strings", "math"),
    statement=lambda p, s: (
        f"Read an integer n (1 <= n <= {(10, 60, 300)[s - 1]}) and then n integers "
        f"0 <= a_i <= {_values_bound(s)}. Print each a_i written in base {p['B']}, one per line "
        f"(no leading zeros; 0 is written 0).\n\n{IO_NOTE}"
    ),
    params=lambda rng: {"B": rng.randint(2, 9)},
    generate=_base_gen,
    bodies=(
        "n = int(data[0])\nfor x in map(int, data[1:n + 1]):\n    digits = []\n    while True:\n        digits.append(str(x % B))\n        x //= B\n        if x == 0:\n            break\n    print(''.join(reversed(digits)))",
        "def conv(x):\n    return str(x) if x < B else conv(x // B) + str(x % B)\nn = int(data[0])\nprint('\\n'.join(conv(int(x)) for x in data[1:n + 1]))",
        "n = int(data[0])\nout = []\nfor x in map(int, data[1:n + 1]):\n    s = ''\n    while x >= B:\n        x, r = divmod(x, B)\n        s = str(r) + s\n    out.append(str(x) + s)\nprint('\\n'.join(out))",
        "n = int(data[0])\nfor x in map(int, data[1:n + 1]):\n    p = 1\n    while p * B <= x:\n        p *= B\n    s = ''\n    while p:\n        s += str(x // p)\n        x %= p\n        p //= B\n    print(s)",
    ),
    wrong=(
        "n = int(data[0])\nfor x in map(int, data[1:n + 1]):\n    s = ''\n    while x:\n        s = str(x % B) + s\n        x //= B\n    print(s)",  # 0 -> empty line
        "n = int(data[0])\nfor x in map(int, data[1:n + 1]):\n    s = ''\n    while True:\n        s += str(x % B)\n        x //= B\n        if not x:\n            break\n    print(s)",  # digits reversed
    ),
)


# --- most frequent value ------------------------------------------------------------------------
def _mode_gen(p: Params, size: int, case: int) -> str:
    n = size_n(size, case)
    return array_input(random_ints(n, -p["V"], p["V"]))


MODE = Family(
    name="mode",
    level=2,
    tags=("arrays", "counting"),
    statement=lambda p, s: (
        f"Read an integer n (1 <= n <= {(10, 60, 300)[s - 1]}) and then n integers in "
        f"[-{p['V']}, {p['V']}]. Print the value that occurs most often; when several values "
        f"occur equally often, print the smallest of them.\n\n{IO_NOTE}"
    ),
    params=lambda rng: {"V": rng.choice([3, 5, 9, 20])},
    generate=_mode_gen,
    bodies=(
        "from collections import Counter\nn = int(data[0])\nc = Counter(map(int, data[1:n + 1]))\nprint(max(c, key=lambda v: (c[v], -v)))",
        "n = int(data[0])\nvals = sorted(map(int, data[1:n + 1]))\nbest, best_count, i = vals[0], 0, 0\nwhile i < n:\n    j = i\n    while j < n and vals[j] == vals[i]:\n        j += 1\n    if j - i > best_count:\n        best, best_count = vals[i], j - i\n    i = j\nprint(best)",
        "n = int(data[0])\ncounts = {}\nfor x in data[1:n + 1]:\n    counts[int(x)] = counts.get(int(x), 0) + 1\ntop = max(counts.values())\nprint(min(v for v, c in counts.items() if c == top))",
        "n = int(data[0])\nvals = [int(x) for x in data[1:n + 1]]\nprint(min(set(vals), key=lambda v: (-vals.count(v), v)))",
    ),
    wrong=(
        "from collections import Counter\nn = int(data[0])\nc = Counter(map(int, data[1:n + 1]))\nprint(max(c, key=lambda v: (c[v], v)))",  # largest on ties
        "from collections import Counter\nn = int(data[0])\nprint(Counter(map(int, data[1:n + 1])).most_common(1)[0][0])",  # first seen on ties
    ),
)


# --- balanced brackets --------------------------------------------------------------------------
def _balanced(pairs: str, length: int) -> str:
    import cyaron

    if length <= 0:
        return ""
    k = 2 * int(cyaron.randint(0, (length - 2) // 2))
    o = int(cyaron.randint(0, len(pairs) // 2 - 1))
    return pairs[2 * o] + _balanced(pairs, k) + pairs[2 * o + 1] + _balanced(pairs, length - 2 - k)


def _brackets_gen(p: Params, size: int, case: int) -> str:
    import cyaron

    pairs = p["PAIRS"]
    n = 2 * max(1, size_n(size, case) // 2)
    kind = case % 4
    if kind == 0:
        s = _balanced(pairs, n)
    elif kind == 1:  # balanced, then one bracket swapped for another: counts may still match
        chars = list(_balanced(pairs, n))
        i = int(cyaron.randint(0, len(chars) - 1))
        chars[i] = pairs[int(cyaron.randint(0, len(pairs) - 1))]
        s = "".join(chars)
    elif kind == 2:  # a rotation of a balanced string: right counts, wrong order
        b = _balanced(pairs, n)
        r = int(cyaron.randint(0, len(b) - 1))
        s = b[r:] + b[:r]
    else:
        s = cyaron.String.random(n, charset=pairs)
    return f"{len(s)}\n{s}\n"


BRACKETS = Family(
    name="brackets",
    level=2,
    tags=("strings", "stacks"),
    statement=lambda p, s: (
        f"Read an integer n (1 <= n <= {(10, 60, 300)[s - 1]}) and then a string of n characters, "
        f"each one of {' '.join(p['PAIRS'])}. Print YES if its brackets are balanced (every "
        f"opening bracket is closed by the matching bracket, properly nested) and NO otherwise.\n\n{IO_NOTE}"
    ),
    params=lambda rng: {"PAIRS": rng.choice(["()", "()[]", "()[]{}", "[]{}", "<>()"])},
    generate=_brackets_gen,
    bodies=(
        "s = data[1]\nmatch = {PAIRS[i + 1]: PAIRS[i] for i in range(0, len(PAIRS), 2)}\nstack = []\nok = True\nfor ch in s:\n    if ch in match:\n        if not stack or stack.pop() != match[ch]:\n            ok = False\n            break\n    else:\n        stack.append(ch)\nprint('YES' if ok and not stack else 'NO')",
        "s = data[1]\nwhile True:\n    t = s\n    for i in range(0, len(PAIRS), 2):\n        t = t.replace(PAIRS[i:i + 2], '')\n    if t == s:\n        break\n    s = t\nprint('NO' if s else 'YES')",
        "s = data[1]\nopens = PAIRS[0::2]\ncloses = PAIRS[1::2]\nstack = []\nfor ch in s:\n    if ch in opens:\n        stack.append(opens.index(ch))\n    elif stack and stack[-1] == closes.index(ch):\n        stack.pop()\n    else:\n        stack.append(-1)\n        break\nprint('YES' if not stack else 'NO')",
        "s = data[1]\nst = ''\nbad = False\nfor ch in s:\n    k = PAIRS.index(ch)\n    if k % 2 == 0:\n        st += ch\n    elif st.endswith(PAIRS[k - 1]):\n        st = st[:-1]\n    else:\n        bad = True\nprint('NO' if bad or st else 'YES')",
    ),
    wrong=(
        "s = data[1]\nprint('YES' if all(s.count(PAIRS[i]) == s.count(PAIRS[i + 1]) for i in range(0, len(PAIRS), 2)) else 'NO')",  # counts only
        "s = data[1]\nmatch = {PAIRS[i + 1]: PAIRS[i] for i in range(0, len(PAIRS), 2)}\nstack = []\nok = True\nfor ch in s:\n    if ch in match:\n        if not stack or stack.pop() != match[ch]:\n            ok = False\n    else:\n        stack.append(ch)\nprint('YES' if ok else 'NO')",  # forgets unclosed brackets
    ),
)


# --- pairs summing to T -------------------------------------------------------------------------
def _pairs_gen(p: Params, size: int, case: int) -> str:
    n = size_n(size, case)
    values = random_ints(n, -p["V"], p["V"])
    if case == 4 and p["T"] % 2 == 0:
        values = [p["T"] // 2] * n  # equal halves: pairs of a value with itself
    return array_input(values)


PAIR_SUM = Family(
    name="pair_sum_count",
    level=2,
    tags=("arrays", "hashing"),
    statement=lambda p, s: (
        f"Read an integer n (1 <= n <= {(10, 60, 300)[s - 1]}) and then n integers a_1..a_n in "
        f"[-{p['V']}, {p['V']}]. Print the number of pairs of positions i < j with "
        f"a_i + a_j = {p['T']}.\n\n{IO_NOTE}"
    ),
    params=lambda rng: _pair_params(rng),
    generate=_pairs_gen,
    bodies=(
        "from collections import Counter\nn = int(data[0])\nc = Counter(map(int, data[1:n + 1]))\ntotal = 0\nfor v, k in c.items():\n    w = T - v\n    if v < w:\n        total += k * c.get(w, 0)\n    elif v == w:\n        total += k * (k - 1) // 2\nprint(total)",
        "n = int(data[0])\nseen = {}\ntotal = 0\nfor x in map(int, data[1:n + 1]):\n    total += seen.get(T - x, 0)\n    seen[x] = seen.get(x, 0) + 1\nprint(total)",
        "n = int(data[0])\na = [int(x) for x in data[1:n + 1]]\nprint(sum(1 for i in range(n) for j in range(i + 1, n) if a[i] + a[j] == T))",
        "import itertools\nn = int(data[0])\nprint(sum(x + y == T for x, y in itertools.combinations(map(int, data[1:n + 1]), 2)))",
    ),
    wrong=(
        "n = int(data[0])\na = [int(x) for x in data[1:n + 1]]\nprint(sum(1 for i in range(n) for j in range(i, n) if a[i] + a[j] == T))",  # i <= j
        "n = int(data[0])\ns = set(map(int, data[1:n + 1]))\nprint(sum(1 for v in s if T - v in s and v < T - v))",  # distinct values only
    ),
)


def _pair_params(rng: random.Random) -> dict[str, Any]:
    v = rng.choice([5, 10, 50])
    return {"V": v, "T": rng.randint(-v, v)}


FAMILIES_BASIC: tuple[Family, ...] = (SUM_MOD, COUNT_DIVISIBLE, GCD_ALL, BASE_CONVERT, MODE, BRACKETS, PAIR_SUM)
