"""Verifier-labelled training data of the model reward models (paper section 2.3.5).

The paper trains both reward models on responses of its own policies, labelled correct or wrong.
``make_rm_examples`` does that at small scale: sample k responses per prompt from a policy at each
temperature (``k15ray.rollout.hf.HFBackend``, in-process), label each with
``k15ray.rewards.verify_math`` against the reference, balance the two classes (drop the surplus of
the larger one, seeded) and write one JSON object per line:

    {"prompt_id", "question", "reference", "response", "correct", "temperature"}
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from k15ray.jsonl import read_jsonl, write_jsonl
from k15ray.rewards.math import verify_math
from k15ray.rewards.models.template import question_text
from k15ray.types import GenerationRequest, Prompt, SamplingParams


@dataclass(frozen=True)
class RMExample:
    """One labelled response: ``correct`` is the verifier's verdict against ``reference``."""

    question: str
    reference: str
    response: str
    correct: bool
    prompt_id: str = ""
    temperature: float = 1.0
    policy: str = ""
    """The policy that wrote ``response`` (its directory), when known."""


def write_rm_examples(path: str | Path, examples: Iterable[RMExample]) -> int:
    """Write ``examples`` as JSONL (atomically); returns how many."""
    return write_jsonl(path, (asdict(e) for e in examples))


def read_rm_examples(path: str | Path) -> list[RMExample]:
    """Read a JSONL of ``RMExample`` records; errors name ``file:line`` and the missing field."""
    examples = []
    for line_no, record in read_jsonl(path):
        missing = [f for f in ("question", "reference", "response", "correct") if f not in record]
        if missing or not isinstance(record.get("correct"), bool):
            raise ValueError(
                f"{path}:{line_no}: needs question, reference, response and a boolean correct "
                f"(missing: {missing or ['correct as true/false']})"
            )
        examples.append(RMExample(
            str(record["question"]), str(record["reference"]), str(record["response"]),
            bool(record["correct"]), str(record.get("prompt_id", "")), float(record.get("temperature", 1.0)),
            str(record.get("policy", "")),
        ))
    return examples


def near_miss(example: RMExample, rng: random.Random) -> RMExample | None:
    """``example`` with one digit of its last ``\\boxed{}`` answer changed (seeded), labelled
    again by the verifier; None when the response has no boxed answer with a digit.

    >>> e = near_miss(RMExample("1+1?", "12", "so \\\\boxed{12}", True), random.Random(0))
    >>> e.response != "so \\\\boxed{12}", e.correct
    (True, False)
    """
    start = example.response.rfind("\\boxed{")
    end = example.response.find("}", start)
    digits = [i for i in range(start + 7, end) if example.response[i].isdigit()] if start >= 0 <= end else []
    if not digits:
        return None
    i = rng.choice(digits)
    new = rng.choice([d for d in "0123456789" if d != example.response[i]])
    response = example.response[:i] + new + example.response[i + 1 :]
    return dataclasses.replace(example, response=response, correct=verify_math(response, example.reference),
                               policy=f"{example.policy} (near miss)")


def add_near_misses(examples: Sequence[RMExample], rate: float, seed: int = 0) -> list[RMExample]:
    """``examples`` plus, for each correct one, ``floor(rate)`` near misses and one more with
    probability ``rate - floor(rate)`` (``near_miss``)."""
    rng = random.Random(seed)
    extra = []
    for e in examples:
        if not e.correct:
            continue
        count = int(rate) + (rng.random() < rate - int(rate))
        extra += [m for m in (near_miss(e, rng) for _ in range(count)) if m is not None]
    return [*examples, *extra]


def balance_classes(examples: Sequence[RMExample], seed: int = 0) -> list[RMExample]:
    """As many correct as wrong examples: a seeded sample of the larger class, order kept."""
    positives = [i for i, e in enumerate(examples) if e.correct]
    negatives = [i for i, e in enumerate(examples) if not e.correct]
    n = min(len(positives), len(negatives))
    rng = random.Random(seed)
    keep = set(rng.sample(positives, n)) | set(rng.sample(negatives, n))
    return [e for i, e in enumerate(examples) if i in keep]


def sample_examples(
    generator: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    k: int,
    params: SamplingParams,
    max_new_tokens: int,
    policy: str = "",
) -> list[RMExample]:
    """``k`` responses per prompt from ``generator`` (a rollout backend or a ``RolloutPool``: its
    ``generate(requests, params)``), decoded and labelled by ``verify_math``, in prompt order."""
    from k15ray.prompting import encode_prompt

    requests = [
        GenerationRequest(f"{i}/{j}", tuple(encode_prompt(tokenizer, p)), max_new_tokens)
        for i, p in enumerate(prompts) for j in range(k)
    ]
    examples = []
    for request, result in zip(requests, generator.generate(requests, params), strict=True):
        prompt = prompts[int(request.request_id.split("/")[0])]
        response = str(tokenizer.decode(list(result.token_ids), skip_special_tokens=True))
        examples.append(RMExample(question_text(prompt), prompt.answer, response,
                                  verify_math(response, prompt.answer), prompt.id, params.temperature, policy))
    return examples


def make_rm_examples(
    policy_dir: str | Path,
    prompts: Sequence[Prompt],
    k: int,
    temperatures: Sequence[float],
    out_path: str | Path,
    *,
    max_new_tokens: int = 256,
    balance: bool = True,
    seed: int = 0,
) -> list[RMExample]:
    """Sample ``k`` responses per prompt at each temperature from the policy in ``policy_dir``,
    label them with ``verify_math``, balance the classes (``balance``) and write ``out_path``.

    Returns the examples written. With ``balance`` and only one class sampled, nothing is
    written and a ``ValueError`` says to sample more.
    """
    from k15ray.rollout.hf import HFBackend

    if k < 1 or not temperatures or any(t < 0 for t in temperatures):
        raise ValueError(f"k must be >= 1 and temperatures non-empty and >= 0; got k={k}, {list(temperatures)}")
    backend = HFBackend.from_pretrained(policy_dir)
    examples: list[RMExample] = []
    for t_index, temperature in enumerate(temperatures):
        params = SamplingParams(temperature=temperature, seed=seed + t_index, detect_repeats=False)
        examples += sample_examples(backend, backend.tokenizer, prompts, k, params, max_new_tokens)
    if balance:
        n_correct = sum(e.correct for e in examples)
        if n_correct in (0, len(examples)):
            raise ValueError(
                f"all {len(examples)} sampled responses are {'correct' if n_correct else 'wrong'}; "
                "raise k, add temperatures or use a policy that solves some (not all) prompts"
            )
        examples = balance_classes(examples, seed)
    write_rm_examples(out_path, examples)
    return examples
