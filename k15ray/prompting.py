"""From a prompt to the token ids a policy continues, the same way for every model.

``encode_prompt`` applies the tokenizer's own chat template with the generation prompt, so the
built-in tiny model and a real chat checkpoint see their own format; a tokenizer without a chat
template gets the question text as is. ``stop_token_ids`` lists the tokens that end a response:
the tokenizer's EOS, the EOS ids of the model's own ``generation_config.json`` / ``config.json``,
and the end-of-turn tokens it knows. Rollouts, evaluation, SFT and serving all go through these
two functions.

A chat model trained by someone else needs to be told what is asked of it: ``with_prompt_format``
turns a prompt's question into chat messages with a system prompt and an answer-format
instruction (e.g. ``BOXED_ANSWER``). Every ``k15ray.envs.TextEnv`` takes both as env kwargs
(``system_prompt``, ``instruction``) and applies them to its prompt set, so the rollouts and the
held-out evaluation see the same messages; left unset (the built-in tiny model's configs), the
prompts are the bare questions the tiny model was trained on.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from k15ray.types import Prompt

END_OF_TURN_TOKENS: tuple[str, ...] = ("<|end|>", "<|im_end|>", "<|eot_id|>", "<|endoftext|>")
"""End-of-turn tokens of common chat formats: each one the tokenizer knows is a stop token."""

Question = str | Sequence[Mapping[str, str]]

BOXED_ANSWER = "Solve it step by step, then put the final answer in \\boxed{}."
"""An answer-format instruction for math environments: the verifier reads ``\\boxed{}`` first."""


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


def with_prompt_format(prompt: Prompt, system_prompt: str | None = None, instruction: str | None = None) -> Prompt:
    """``prompt`` with its question as chat messages: ``system_prompt`` first (when given and the
    question has no system message yet), then the question with ``instruction`` appended to its last
    user message after a blank line. Both None: ``prompt`` unchanged.

    >>> with_prompt_format(Prompt(id="a", question="What is 2+3?", answer="5"), "Be brief.", "Box it.").question
    ({'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'What is 2+3?\\n\\nBox it.'})
    """
    if not system_prompt and not instruction:
        return prompt
    messages = chat_messages(prompt.question)
    if instruction:
        last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
        if last_user is None:
            messages.append({"role": "user", "content": instruction})
        else:
            messages[last_user]["content"] = f"{messages[last_user]['content']}\n\n{instruction}"
    if system_prompt and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return dataclasses.replace(prompt, question=tuple(messages))


def run_prompt_format(run_config: str | Path | None) -> tuple[str | None, str | None]:
    """``(system_prompt, instruction)`` of the training env in a ``k15ray train`` run's
    ``config.json`` (``env.config``); ``(None, None)`` without a run config or when unset there."""
    if run_config is None:
        return None, None
    try:
        env_config = json.loads(Path(run_config).read_text()).get("env", {}).get("config", {})
    except (OSError, ValueError, AttributeError):
        return None, None
    return env_config.get("system_prompt"), env_config.get("instruction")


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


def vision_messages(question: Question, num_images: int) -> list[dict[str, Any]]:
    """``question`` as chat messages whose first user message starts with ``num_images`` image
    parts (``{"type": "image"}``), then its text: the OpenAI content-part form that vision chat
    templates (and vLLM) read."""
    messages: list[dict[str, Any]] = chat_messages(question)
    first_user = next((i for i, m in enumerate(messages) if m["role"] == "user"), None)
    if first_user is None:
        messages.append({"role": "user", "content": ""})
        first_user = len(messages) - 1
    text = messages[first_user]["content"]
    parts = list(text) if isinstance(text, list) else [{"type": "text", "text": text}]
    messages[first_user] = {**messages[first_user], "content": [{"type": "image"}] * num_images + parts}
    return messages


def encode_vision_messages(processor: Any, messages: Sequence[Mapping[str, Any]], images: Sequence[Any]) -> list[int]:
    """Token ids of chat ``messages`` holding one image part per image of ``images`` (in order),
    for a vision-language policy: the processor's chat template with the generation prompt, then
    the processor itself, which expands each image placeholder into the image tokens its vision
    tower fills (36 for ``tiny-vl``)."""
    text = processor.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    if not images:
        return [int(t) for t in processor.tokenizer.encode(text, add_special_tokens=False)]
    ids = processor(text=[text], images=list(images), add_special_tokens=False)["input_ids"][0]
    return [int(t) for t in ids]


def encode_vision_prompt(processor: Any, prompt: Prompt | Question, images: Sequence[Any]) -> list[int]:
    """Token ids of ``prompt`` with ``images`` shown before its question (``vision_messages``,
    ``encode_vision_messages``): what the rollout continues and the learner scores, with the
    same ``images``."""
    question = prompt.question if isinstance(prompt, Prompt) else prompt
    return encode_vision_messages(processor, vision_messages(question, len(images)), images)


def model_eos_ids(model_dir: str | Path) -> list[int]:
    """``eos_token_id`` (an id or a list) of ``generation_config.json``, then of ``config.json``, in
    ``model_dir``; [] when neither file names one (or ``model_dir`` is not a folder)."""
    ids: list[int] = []
    for name in ("generation_config.json", "config.json"):
        path = Path(model_dir) / name
        try:
            eos = json.loads(path.read_text()).get("eos_token_id")
        except (OSError, ValueError, AttributeError):
            continue
        ids.extend([eos] if isinstance(eos, int) else [int(e) for e in eos or ()])
    return ids


def stop_token_ids(tokenizer: Any) -> tuple[int, ...]:
    """The tokens that end a response, without duplicates, the tokenizer's EOS first: its EOS, the
    EOS ids of the model's own config (``generation_config.json``, ``config.json``) in the folder
    the tokenizer was loaded from, and every known end-of-turn token the tokenizer has."""
    ids: list[int] = []
    eos = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos, int):
        ids.append(eos)
    elif isinstance(eos, (list, tuple)):
        ids.extend(int(e) for e in eos)
    source = getattr(tokenizer, "name_or_path", "")
    if source and Path(source).is_dir():
        ids.extend(model_eos_ids(source))
    vocab = tokenizer.get_vocab()
    for token in END_OF_TURN_TOKENS:
        if token in vocab:
            ids.append(int(vocab[token]))
    return tuple(dict.fromkeys(ids))
