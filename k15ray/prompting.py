"""From a prompt to the token ids a policy continues, the same way for every model.

``encode_prompt`` applies the tokenizer's own chat template with the generation prompt, so the
built-in tiny model and a real chat checkpoint see their own format; a tokenizer without a chat
template gets the question text as is. ``stop_token_ids`` lists the tokens that end a response.
Rollouts, evaluation, SFT and serving all go through these two functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from k15ray.types import Prompt

END_OF_TURN_TOKENS: tuple[str, ...] = ("<|end|>", "<|im_end|>", "<|eot_id|>", "<|endoftext|>")
"""End-of-turn tokens of common chat formats: each one the tokenizer knows is a stop token."""

Question = str | Sequence[Mapping[str, str]]


def chat_messages(question: Question) -> list[dict[str, str]]:
    """``question`` as chat messages: a text becomes one user message."""
    if isinstance(question, str):
        return [{"role": "user", "content": question}]
    messages = [dict(m) for m in question]
    for i, m in enumerate(messages):
        if "role" not in m or "content" not in m:
            raise ValueError(
                f"chat message {i} is missing 'role' or 'content' (has {sorted(m)}); "
                "write each message as {'role': 'user', 'content': '...'}"
            )
    return messages


def encode_prompt(tokenizer: Any, prompt: Prompt | Question) -> list[int]:
    """Token ids of ``prompt`` (a ``Prompt``, a question text or chat messages), ready to continue.

    With a chat template: ``apply_chat_template(messages, add_generation_prompt=True)``.
    Without one: the question text (chat messages joined by newlines), no special tokens.
    """
    question = prompt.question if isinstance(prompt, Prompt) else prompt
    messages = chat_messages(question)
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, Mapping):  # transformers 5 returns a BatchEncoding
            ids = ids["input_ids"]
        return [int(t) for t in ids]
    text = "\n".join(m["content"] for m in messages)
    return [int(t) for t in tokenizer.encode(text, add_special_tokens=False)]


def stop_token_ids(tokenizer: Any) -> tuple[int, ...]:
    """EOS plus every known end-of-turn token the tokenizer has, without duplicates, EOS first."""
    ids: list[int] = []
    eos = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos, int):
        ids.append(eos)
    elif isinstance(eos, (list, tuple)):
        ids.extend(int(e) for e in eos)
    vocab = tokenizer.get_vocab()
    for token in END_OF_TURN_TOKENS:
        if token in vocab:
            ids.append(int(vocab[token]))
    return tuple(dict.fromkeys(ids))
