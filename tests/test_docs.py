"""Every code block of README.md and docs/*.md runs as written, or says that it does not.

The convention, for whoever writes docs:

* A fenced block names its kind after the backticks: ``python``, ``bash`` (or ``sh``, ``shell``,
  ``console``), ``yaml``, or an output kind (``json``, ``text``). Indented code blocks are not
  used: they cannot name a kind.
* ``python`` and ``bash`` blocks are executed by this file: the blocks of one document in order, in
  one fresh interpreter (names carry over, as in notebook cells), in a temporary working
  directory; bash blocks with ``bash -euo pipefail``. ``yaml`` blocks must load as a
  ``k15ray train`` config.
* ``illustrative`` after the kind (```` ```bash illustrative ````) exempts a block: one that needs a
  GPU, a server, the network or a long run, or that shows an API with placeholders.
  ``<!-- test: {illustrative: true} -->`` before a block does the same and keeps the fence plain
  (README's two set-up commands, which CI runs itself from ``.ci/run``).
* An HTML comment right before a block adjusts its run, as a YAML mapping:
  ``<!-- test: {setup: [data, policy], replace: {"old": "new"}, slow: true, timeout_s: 600} -->``.
  ``setup`` writes the files the block names, small: ``data`` = ``runs/data/{train,heldout,sft}.jsonl``
  (``k15ray gen-data``), ``policy`` = a tiny random model in ``runs/quickstart/sft/final`` (where
  README's main job leaves its SFT model); ``replace`` substitutes text first (small sizes);
  ``slow`` marks the document's test ``slow``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

PYTHON, SHELL, YAML, OUTPUT = "python", "shell", "yaml", "output"
KINDS = {
    "python": PYTHON, "bash": SHELL, "sh": SHELL, "shell": SHELL, "console": SHELL,
    "yaml": YAML, "json": OUTPUT, "text": OUTPUT,
}
SETUPS = ("data", "policy")
OPTIONS = {"setup", "replace", "slow", "timeout_s", "illustrative"}

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>.*)$")
_TEST_COMMENT = re.compile(r"<!--\s*test:(?P<body>.*?)-->\s*$", re.S)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a document."""

    doc: str  # path relative to the repository root
    line: int  # 1-based line of the block's first code line
    info: str  # the fence's info string, e.g. "bash illustrative"
    code: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str | None:
        words = self.info.split()
        return KINDS.get(words[0]) if words else None

    @property
    def illustrative(self) -> bool:
        return "illustrative" in self.info.split()[1:] or bool(self.options.get("illustrative"))

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    def runnable_code(self) -> str:
        code = self.code
        for old, new in (self.options.get("replace") or {}).items():
            assert old in code, f"{self.where}: replace: {old!r} is not in the block"
            code = code.replace(old, new)
        return code


def parse_blocks(text: str, doc: str) -> list[Block]:
    """The fenced blocks of markdown ``text``, each with the ``<!-- test: -->`` comment before it."""
    lines = text.split("\n")
    blocks, i = [], 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body, j = [], i + 1
        while j < len(lines) and not re.match(rf"^ *{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[j]):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        blocks.append(Block(doc, i + 2, opening["info"].strip(), "\n".join(body) + "\n", _options(lines[:i], doc, i)))
        i = j + 1
    return blocks


def _options(before: list[str], doc: str, fence_index: int) -> dict[str, Any]:
    k = len(before) - 1
    while k >= 0 and not before[k].strip():
        k -= 1
    if k < 0 or not before[k].rstrip().endswith("-->"):
        return {}
    start = k
    while start >= 0 and "<!--" not in before[start]:
        start -= 1
    match = _TEST_COMMENT.search("\n".join(before[start : k + 1]).strip())
    if not match:
        return {}
    options = yaml.safe_load(match["body"]) or {}
    where = f"{doc}:{fence_index + 1}"
    assert isinstance(options, dict) and set(options) <= OPTIONS, f"{where}: test options {options!r}; keys {OPTIONS}"
    assert set(options.get("setup") or []) <= set(SETUPS), f"{where}: setup must be among {SETUPS}"
    return options


def doc_blocks() -> list[Block]:
    return [b for path in DOCS for b in parse_blocks(path.read_text(), str(path.relative_to(ROOT)))]


def executed(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.kind in (PYTHON, SHELL) and not b.illustrative]


# ---------------------------------------------------------------------- the convention holds
def test_every_block_is_executed_or_marked_illustrative() -> None:
    problems = []
    for block in doc_blocks():
        if block.kind is None:
            problems.append(f"{block.where}: ```{block.info}: name the kind: {sorted(KINDS)}")
        elif block.illustrative and block.kind == OUTPUT:
            problems.append(f"{block.where}: output blocks are never run; drop 'illustrative'")
        elif block.illustrative and set(block.options) - {"illustrative"}:
            problems.append(f"{block.where}: an illustrative block with test options: run it or drop them")
    assert not problems, "\n".join(problems) + "\n(the convention: tests/test_docs.py, its docstring)"


def test_no_indented_code_blocks() -> None:
    """Indented code cannot name its kind: use a fence (list items may indent their text)."""
    found = []
    for path in DOCS:
        in_fence, in_list, blank_before = False, False, True
        for number, line in enumerate(path.read_text().split("\n"), 1):
            if _FENCE.match(line):
                in_fence = not in_fence
            elif not in_fence and line.strip():
                if re.match(r"^\s*([-*+]|\d+\.)\s", line):
                    in_list = True
                elif not line.startswith(" "):
                    in_list = False
                if blank_before and line.startswith("    ") and not in_list:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
            blank_before = not line.strip()
    assert not found, "indented code blocks; fence them:\n" + "\n".join(found)


def test_the_parser_reads_kinds_marks_and_options() -> None:
    text = (
        "Intro.\n\n```bash illustrative\nk15ray train x.yaml\n```\n\n"
        '<!-- test: {setup: [data], replace: {"8": "2"}} -->\n   ```python\n   print(8)\n   ```\n\n'
        "```\nno kind\n```\n"
    )
    shell, python, bare = parse_blocks(text, "x.md")
    assert (shell.kind, shell.illustrative, shell.line) == (SHELL, True, 4)
    assert (python.kind, python.illustrative, python.runnable_code()) == (PYTHON, False, "print(2)\n")
    assert python.options["setup"] == ["data"] and executed([shell, python, bare]) == [python]
    assert bare.kind is None


def test_yaml_blocks_load_as_train_configs() -> None:
    from k15ray.config.experiment import experiment_from_mapping

    blocks = [b for b in doc_blocks() if b.kind == YAML and not b.illustrative]
    assert blocks, "docs/envs.md shows the env section as YAML"
    for block in blocks:
        experiment_from_mapping(yaml.safe_load(block.runnable_code()) or {}, where=f"{block.where}: ")


# ---------------------------------------------------------------------- the blocks run
_RUNNER = """
import json, subprocess, sys
ns = {"__name__": "__main__"}
for block in json.load(open(sys.argv[1])):
    print(f"--- {block['where']}", flush=True)
    if block["kind"] == "python":  # tracebacks name the document and its line numbers
        exec(compile("\\n" * (block["line"] - 1) + block["code"], block["path"], "exec"), ns)
    else:
        subprocess.run(["bash", "-euo", "pipefail", "-c", block["code"]], check=True)
"""


def _docs_with_executed_blocks() -> list[Any]:
    params = []
    for path in DOCS:
        blocks = executed(parse_blocks(path.read_text(), str(path.relative_to(ROOT))))
        if blocks:
            slow = any(b.options.get("slow") for b in blocks)
            params.append(pytest.param(path, marks=[pytest.mark.slow] if slow else [], id=str(path.relative_to(ROOT))))
    return params


def _setup(workdir: Path, needs: set[str]) -> None:
    if "data" in needs:
        from k15ray.tasks import write_splits

        write_splits(workdir / "runs" / "data", 40, 6, seed=0, levels=(1,))
    if "policy" in needs:
        from k15ray.models import create_model

        create_model("tiny", workdir / "runs" / "quickstart" / "sft" / "final", seed=0)


@pytest.mark.parametrize("path", _docs_with_executed_blocks())
def test_code_blocks_run(path: Path, tmp_path: Path) -> None:
    blocks = executed(parse_blocks(path.read_text(), str(path.relative_to(ROOT))))
    _setup(tmp_path, {s for b in blocks for s in b.options.get("setup") or []})
    plan = [
        {"where": b.where, "kind": b.kind, "path": str(path), "line": b.line, "code": b.runnable_code()}
        for b in blocks
    ]
    (tmp_path / "blocks.json").write_text(json.dumps(plan))
    (tmp_path / "run_blocks.py").write_text(_RUNNER)
    env = {k: v for k, v in os.environ.items() if k not in ("TUNE_RESULT_DIR", "RAY_AIR_LOCAL_CACHE_DIR")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python`, `k15ray`
    timeout_s = max([int(b.options.get("timeout_s", 0)) for b in blocks] + [300 * len(blocks)])
    done = subprocess.run(
        [sys.executable, str(tmp_path / "run_blocks.py"), str(tmp_path / "blocks.json")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout_s,
    )
    assert done.returncode == 0, (done.stdout[-4000:] + "\n" + done.stderr[-6000:])
