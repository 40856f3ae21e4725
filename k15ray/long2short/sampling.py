"""n responses per prompt through the Ray rollout actors, scored by the verifier (paper 2.4).

The adapter between ``k15ray.rollout.actor.RolloutPool`` (the actors of RL rollouts: the same
backend, prompt encoding and stop tokens) and the pure choices of ``k15ray.long2short.selection``.
Responses keep their special tokens (``<think>``...``</think>``) so that an SFT or DPO example built
from them reads like the model's own output; stop and padding tokens are dropped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from k15ray.long2short.selection import Sample
from k15ray.types import Prompt


@contextlib.contextmanager
def ray_started(num_cpus: int) -> Iterator[None]:
    """Ray for the duration of the block (left running if it was already started)."""
    import ray

    from k15ray.noise import ray_runtime_env

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 runtime_env=ray_runtime_env())
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def sample_responses(
    model_dir: str | Path,
    prompts: Sequence[Prompt],
    n: int,
    *,
    temperature: float = 1.0,
    max_new_tokens: int = 384,
    num_workers: int = 2,
    max_batch_size: int = 64,
    seed: int = 0,
) -> list[list[Sample]]:
    """``n`` samples of each prompt from the model in ``model_dir``, through ``num_workers`` rollout
    actors; ``out[i][j]`` is sample j of prompt i with its length and the verifier's verdict."""
    from transformers import AutoTokenizer

    from k15ray.config.rollout import RolloutConfig
    from k15ray.models import check_model_dir
    from k15ray.prompting import encode_prompt, stop_token_ids
    from k15ray.rewards import verify_math
    from k15ray.rollout.actor import RolloutPool
    from k15ray.types import GenerationRequest, SamplingParams

    if n < 1 or temperature <= 0 or max_new_tokens < 1 or num_workers < 1:
        raise ValueError(
            f"need n >= 1, temperature > 0, max_new_tokens >= 1, num_workers >= 1; got {n}, "
            f"{temperature}, {max_new_tokens}, {num_workers}"
        )
    check_model_dir(model_dir, "MODEL")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    stops = stop_token_ids(tokenizer)
    dropped = set(stops) | ({tokenizer.pad_token_id} if tokenizer.pad_token_id is not None else set())
    requests = [
        GenerationRequest(f"{i}/{j}", tuple(encode_prompt(tokenizer, p)), max_new_tokens)
        for i, p in enumerate(prompts)
        for j in range(n)
    ]
    params = SamplingParams(temperature=temperature, stop_token_ids=stops, seed=seed)
    config = RolloutConfig(num_workers=num_workers, num_cpus_per_worker=1, max_batch_size=max_batch_size, seed=seed)
    with ray_started(num_cpus=max(2, num_workers)):
        pool = RolloutPool(config, model_dir=model_dir)
        try:
            results = pool.generate(requests, params)
        finally:
            pool.shutdown()
    out: list[list[Sample]] = [[] for _ in prompts]
    for request, result in zip(requests, results, strict=True):
        i = int(request.request_id.split("/")[0])
        text = _decode(tokenizer, result.token_ids, dropped)
        out[i].append(Sample(text, len(result.token_ids), verify_math(text, prompts[i].answer)))
    return out


def _decode(tokenizer: Any, token_ids: Sequence[int], dropped: set[int]) -> str:
    return str(tokenizer.decode([t for t in token_ids if t not in dropped], skip_special_tokens=False))
