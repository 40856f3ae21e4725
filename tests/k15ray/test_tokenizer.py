"""The character tokenizer: round trip, special tokens, chat template, AutoTokenizer loading."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer

from k15ray.models import build_tokenizer, save_tokenizer
from k15ray.models.tokenizer import CHARACTERS, SPECIAL_TOKENS
from k15ray.prompting import encode_prompt, stop_token_ids
from k15ray.types import Prompt

TEXT = "<think>Plan: 47+85\n7+5+0=12, write 2 carry 1\nCheck: 132-85=47 ✓</think>\\boxed{132}"


def test_round_trip_one_token_per_character() -> None:
    tok = build_tokenizer()
    ids = tok.encode("What is 47 × 6?", add_special_tokens=False)
    assert len(ids) == len("What is 47 × 6?")  # 15 characters -> 15 tokens
    assert tok.decode(ids) == "What is 47 × 6?"
    full = tok.encode(TEXT, add_special_tokens=False)
    assert tok.decode(full) == TEXT
    # <think> and </think> are one token each: 2 specials + the 71 characters between them + 11
    assert len(full) == 2 + len(TEXT) - len("<think>") - len("</think>")


def test_special_tokens_and_vocab() -> None:
    tok = build_tokenizer()
    assert len(tok) == len(SPECIAL_TOKENS) + len(CHARACTERS)
    assert tok.pad_token_id == 0 and tok.eos_token_id == 1
    assert tok.encode("é", add_special_tokens=False) == [tok.unk_token_id]
    assert tok.decode(tok.encode("<think>a</think>"), skip_special_tokens=True) == "a"


def test_autotokenizer_loads_saved_dir(tmp_path: Path) -> None:
    save_tokenizer(build_tokenizer(), tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    assert "chat_template" in (tmp_path / "tokenizer_config.json").read_text()
    loaded = AutoTokenizer.from_pretrained(str(tmp_path))
    assert loaded.encode(TEXT, add_special_tokens=False) == build_tokenizer().encode(
        TEXT, add_special_tokens=False
    )
    assert loaded.eos_token_id == 1 and loaded.pad_token_id == 0
    ids = encode_prompt(loaded, Prompt(id="p", question="2+3?", answer="5"))
    # <|user|> 2 + 3 ? <|end|> <|assistant|>
    assert loaded.decode(ids) == "<|user|>2+3?<|end|><|assistant|>"
    assert len(ids) == 7
    assert stop_token_ids(loaded) == (1, loaded.convert_tokens_to_ids("<|end|>"))
