"""The built-in character-level tokenizer (DESIGN.md, "Models").

One token per character, built with the ``tokenizers`` library: a BPE model with an empty merge
list (so every known character is its own token), ``Fuse`` decoding (characters join with no
spaces), and special tokens for padding, end of text, the chat roles and the thinking markers
of a long chain of thought (paper section 2.2). Saved as ``tokenizer.json`` +
``tokenizer_config.json`` with a Jinja ``chat_template``, so ``AutoTokenizer.from_pretrained(dir)``
loads it like any real checkpoint's tokenizer, and so could vLLM.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from tokenizers import Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast

PAD_TOKEN = "<|pad|>"
EOS_TOKEN = "<|endoftext|>"
UNK_TOKEN = "<|unk|>"
SYSTEM_TOKEN = "<|system|>"
USER_TOKEN = "<|user|>"
ASSISTANT_TOKEN = "<|assistant|>"
END_OF_TURN_TOKEN = "<|end|>"
THINK_START = "<think>"
THINK_END = "</think>"

SPECIAL_TOKENS: tuple[str, ...] = (
    PAD_TOKEN,
    EOS_TOKEN,
    UNK_TOKEN,
    SYSTEM_TOKEN,
    USER_TOKEN,
    ASSISTANT_TOKEN,
    END_OF_TURN_TOKEN,
    THINK_START,
    THINK_END,
)
"""Special tokens, ids 0..8 in this order (pad = 0, eos = 1)."""

MATH_SYMBOLS = "×÷−±≈≠≤≥√∑∏∞π·°²³✓✗→"
CHARACTERS: tuple[str, ...] = tuple(
    dict.fromkeys(string.digits + string.ascii_letters + string.punctuation + " \n\t" + MATH_SYMBOLS)
)
"""Ordinary characters, ids after the special tokens. Unknown characters map to ``UNK_TOKEN``."""

# Chat format: <|system|>...<|end|><|user|>...<|end|><|assistant|>...<|end|>. The generation prompt
# is "<|assistant|>"; the model then writes "<think>...</think>answer" and ends with EOS.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}" + SYSTEM_TOKEN + "{{ message['content'] }}" + END_OF_TURN_TOKEN
    + "{% elif message['role'] == 'user' %}" + USER_TOKEN + "{{ message['content'] }}" + END_OF_TURN_TOKEN
    + "{% elif message['role'] == 'assistant' %}" + ASSISTANT_TOKEN + "{{ message['content'] }}"
    + END_OF_TURN_TOKEN + "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT_TOKEN + "{% endif %}"
)


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The character-level tokenizer with chat template; ``len(tok)`` is its vocabulary size."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK_TOKEN))
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in (PAD_TOKEN, EOS_TOKEN, UNK_TOKEN)],
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out_dir: str | Path) -> Path:
    """Save ``tokenizer`` so that both transformers and vLLM load it from ``out_dir``.

    transformers 5 writes the chat template to ``chat_template.jinja``; older readers (and vLLM)
    look in ``tokenizer_config.json``, so the template is written there too, and the class is
    named ``PreTrainedTokenizerFast``, which every transformers version knows.
    """
    out = Path(out_dir)
    tokenizer.save_pretrained(str(out))
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    if tokenizer.chat_template is not None:
        config["chat_template"] = tokenizer.chat_template
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return out
