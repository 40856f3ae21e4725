"""Warm-up and evaluation of a vision-language policy on ``k15/Vision-v0`` prompts (issue 17).

``train_vision_sft`` is supervised fine-tuning of a LLaVA-style directory (``tiny-vl`` or any
``AutoModelForImageTextToText`` checkpoint with its processor) on prompts with their images and a
short chain-of-thought answer (``vision_solution``): each step draws a seeded batch, encodes every
prompt with its images (``k15ray.prompting.encode_vision_prompt``: the image placeholders expanded
to the vision tower's tokens), appends the answer and the end-of-turn token, and minimises the
mean cross-entropy of the answer tokens only:

    L(theta) = - (1 / |answer tokens|) * sum_i sum_t log pi_theta(y_i,t | image_i, x_i, y_i,<t)

With ``check`` (a ``(model, processor) -> accuracy`` function, e.g. ``vision_accuracy_fn`` on
training prompts), ``check_every`` and ``stop_at_accuracy``, the warm-up stops once the checked
accuracy reaches that value, as the text warm-up does (``k15ray.sft``): RL then starts from a policy
that reads the image sometimes, with room to learn.

``evaluate_vision`` decodes greedily (or, with ``samples`` = k, takes k seeded samples a prompt:
pass@1) with the transformers rollout backend (the images go with every request) and reports
accuracy by ``verify_math`` per kind and per difficulty level; with
``blank=True`` every image is replaced by a blank one of the same size (the control showing that
the policy reads the image).
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from k15ray.types import Prompt

ImagesOf = Callable[[Prompt], tuple[Any, ...]]
"""A prompt -> its images (``(H, W, 3)`` uint8 arrays), e.g. ``VisionEnv.prompt_images``."""


def prompt_kind(prompt: Prompt) -> str:
    """The generator kind of a ``k15/Vision-v0`` prompt (its first tag), else its domain."""
    return prompt.tags[0] if prompt.tags else prompt.domain


def vision_solution(prompt: Prompt) -> str:
    """The warm-up's answer for ``prompt``: a counting question counts up to the answer, one
    number at a time, then boxes it; any other kind boxes the answer.

    >>> vision_solution(Prompt("a", "How many shapes are in the image?", "3", tags=("counting",)))
    'Count: 1 2 3. \\\\boxed{3}'
    """
    if prompt_kind(prompt) == "counting" and prompt.answer.isdigit() and 0 < int(prompt.answer) <= 20:
        steps = " ".join(str(i) for i in range(1, int(prompt.answer) + 1))
        return f"Count: {steps}. \\boxed{{{prompt.answer}}}"
    return f"\\boxed{{{prompt.answer}}}"


@dataclass
class VisionSFTResult:
    """What ``train_vision_sft`` did: the saved directory, steps taken, seconds, last mean loss and
    the ``(step, accuracy)`` of each check."""

    model_dir: Path
    steps: int
    seconds: float
    final_loss: float
    checks: list[tuple[int, float]] = field(default_factory=list)


def train_vision_sft(
    model_dir: str | Path,
    out_dir: str | Path,
    prompts: Sequence[Prompt],
    images_of: ImagesOf,
    *,
    steps: int = 300,
    batch_size: int = 16,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = False,
    check: Callable[[Any, Any], float] | None = None,
    check_every: int = 0,
    stop_at_accuracy: float = 0.0,
) -> VisionSFTResult:
    """SFT of the vision-language policy in ``model_dir`` on ``prompts`` (module docstring);
    AdamW with linear warm-up over the first 10% of ``steps`` and cosine decay to 10% of ``lr``;
    stopped early once ``check(model, processor) >= stop_at_accuracy`` (checked every
    ``check_every`` steps). Saves model and processor to ``out_dir`` (``save_pretrained``)."""
    from k15ray.models.vision_language import load_vision_policy
    from k15ray.prompting import encode_vision_prompt, stop_token_ids
    from k15ray.sft import warmup_cosine

    if not prompts:
        raise ValueError("train_vision_sft needs prompts; generate them with k15/Vision-v0 (VisionEnv)")
    if steps < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"steps and batch_size must be >= 1 and lr > 0; got {steps}, {batch_size}, {lr}")
    if stop_at_accuracy and (check is None or check_every < 1):
        raise ValueError("stop_at_accuracy needs a check function and check_every >= 1 (how often to check)")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model, processor = load_vision_policy(model_dir)
    tokenizer = processor.tokenizer
    end = list(stop_token_ids(tokenizer))[:1]  # the answer ends with the first stop token
    encoded: dict[str, tuple[list[int], list[int]]] = {}

    def example(p: Prompt) -> tuple[list[int], list[int]]:
        if p.id not in encoded:
            prompt_ids = encode_vision_prompt(processor, p, images_of(p))
            answer_ids = list(tokenizer.encode(vision_solution(p), add_special_tokens=False)) + end
            encoded[p.id] = (prompt_ids, answer_ids)
        return encoded[p.id]

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 10)
    model.train()
    t0, loss_value, checks = time.perf_counter(), float("nan"), []
    done = steps
    for step in tqdm(range(steps), desc="vision sft", unit="step", disable=not progress):
        batch = [prompts[rng.randrange(len(prompts))] for _ in range(batch_size)]
        input_ids, attention, labels = answer_batch([example(p) for p in batch], int(tokenizer.pad_token_id or 0))
        images = [image for p in batch for image in images_of(p)]
        pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
        for group in optimizer.param_groups:  # cosine from lr to lr / 10 after the warm-up
            group["lr"] = warmup_cosine(lr, step, warmup, (step - warmup) / max(1, steps - warmup), 0.1)
        out = model(input_ids=input_ids, attention_mask=attention, pixel_values=pixels, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = float(out.loss.detach())
        if check is not None and check_every and (step + 1) % check_every == 0:
            checks.append((step + 1, check(model, processor)))
            model.train()
            if stop_at_accuracy and checks[-1][1] >= stop_at_accuracy:
                done = step + 1
                break
    out_path = Path(out_dir)
    out_path.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(str(out_path))
    processor.save_pretrained(str(out_path))
    processor.image_processor.save_pretrained(str(out_path))
    return VisionSFTResult(out_path, done, time.perf_counter() - t0, loss_value, checks)


def record_images(prompt: Prompt) -> tuple[np.ndarray, ...]:
    """The images of a prompt read from a file (its ``images`` paths, side by side as one image,
    ``k15ray.vision.records.load_image``); ``()`` for a text-only prompt."""
    from k15ray.vision.records import load_image

    return (np.asarray(load_image(prompt.images, prompt.id)),) if prompt.images else ()


def answer_batch(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, ...]:
    """``(input_ids, attention_mask, labels)``, each (B, T), of (prompt ids, answer ids) rows, right
    padded: the labels hold the answer tokens only (-100 elsewhere)."""
    width = max(len(a) + len(b) for a, b in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (prompt_ids, answer_ids) in enumerate(rows):
        ids = prompt_ids + answer_ids
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, len(prompt_ids) : len(ids)] = torch.tensor(answer_ids)
        attention[i, : len(ids)] = 1
    return input_ids, attention, labels


def blank_like(image: Any) -> np.ndarray:
    """A white image of ``image``'s size: the control input."""
    return np.full_like(np.asarray(image), 255)


def evaluate_vision(
    model_dir: str | Path | tuple[Any, Any],
    prompts: Sequence[Prompt],
    images_of: ImagesOf,
    *,
    blank: bool = False,
    max_new_tokens: int = 48,
    batch_size: int = 64,
    samples: int = 0,
    temperature: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Greedy accuracy (``verify_math``) of the vision-language policy in ``model_dir`` (or a loaded
    ``(model, processor)``) on ``prompts`` shown with their images (``blank``: white images
    instead); overall, per kind and per difficulty level, with counts. With ``samples`` = k > 0,
    pass@1 instead: the mean accuracy of k seeded samples per prompt at ``temperature``."""
    from k15ray.models.vision_language import load_vision_policy
    from k15ray.prompting import encode_vision_prompt, stop_token_ids
    from k15ray.rewards.math import verify_math
    from k15ray.rollout.hf import HFBackend
    from k15ray.types import GenerationRequest, SamplingParams

    # loaded once: the backend and the prompts share it
    model, processor = model_dir if isinstance(model_dir, tuple) else load_vision_policy(model_dir)
    backend = HFBackend(model, processor.tokenizer, image_processor=processor.image_processor, max_batch_size=batch_size)
    requests, asked = [], []
    for i, p in enumerate(prompts):
        images = tuple(blank_like(im) if blank else im for im in images_of(p))
        token_ids = tuple(encode_vision_prompt(processor, p, images))
        for j in range(max(samples, 1)):
            requests.append(GenerationRequest(f"{i}-{j}", token_ids, max_new_tokens, images=images))
            asked.append(p)
    params = SamplingParams(temperature=temperature if samples else 0.0, seed=seed if samples else None,
                            stop_token_ids=stop_token_ids(backend.tokenizer), detect_repeats=False)
    results = backend.generate(requests, params)
    right: dict[str, list[bool]] = defaultdict(list)
    for p, r in zip(asked, results, strict=True):
        ok = verify_math(backend.tokenizer.decode(list(r.token_ids), skip_special_tokens=True), p.answer)
        for key in ("all", f"kind/{prompt_kind(p)}", f"level/{p.difficulty}"):
            right[key].append(ok)
    return {key: {"accuracy": sum(v) / len(v), "n": len(v)} for key, v in sorted(right.items())}


def vision_accuracy_fn(prompts: Sequence[Prompt], images_of: ImagesOf) -> Callable[[Any, Any], float]:
    """``(model, processor) -> greedy accuracy`` on ``prompts``: ``train_vision_sft``'s check."""

    def accuracy(model: Any, processor: Any) -> float:
        return float(evaluate_vision((model, processor), prompts, images_of)["all"]["accuracy"])

    return accuracy


__all__ = ["blank_like", "evaluate_vision", "vision_accuracy_fn", "record_images", "prompt_kind", "train_vision_sft", "vision_solution"]
