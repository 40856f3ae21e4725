"""The chain-of-thought judge (paper section 2.3.5), the reward model k1.5 used in RL.

"Chain-of-Thought RM: ... generates a step-by-step reasoning process before providing a final
correctness judgment in JSON format." The judge is any causal LM: it continues the prompt
``rm_input_text(x, y*, y)`` with a short check (recompute, compare with the reference) and ends
with ``{"correct": true|false}``. The reward is

    r(x, y, y*) = 1 if parse_verdict(judge output) is True, else 0

and a missing or malformed verdict is a typed failure (status ``parse_error``, score 0), never an
exception. The judge is trained by the project's SFT (``k15ray.sft.train_sft``) on traces built
from verifier labels (``judge_trace``): the trace states the response's final answer and the
reference, then the label as the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from k15ray.jsonl import write_jsonl
from k15ray.rewards.models.data import RMExample
from k15ray.rewards.models.template import judge_trace, parse_verdict, question_text, rm_input_text
from k15ray.types import GenerationRequest, Prompt, RewardResult, SamplingParams

JUDGE_DATA_FILE = "judge_sft.jsonl"
"""Name of the SFT data file ``train_cot_judge`` writes inside its ``out_dir``."""


def judge_sft_records(examples: Sequence[RMExample]) -> list[dict[str, str]]:
    """SFT records (``prompt``/``solution``, the format of ``k15ray.sft``) teaching the judge."""
    return [
        {"prompt": rm_input_text(e.question, e.reference, e.response),
         "solution": judge_trace(e.response, e.reference, e.correct)}
        for e in examples
    ]


def train_cot_judge(
    examples: Sequence[RMExample],
    base_model_dir: str | Path,
    out_dir: str | Path,
    *,
    max_steps: int = 200,
    progress: bool = False,
    **sft_options: Any,
) -> Path:
    """SFT ``base_model_dir`` (a directory or a preset name such as ``tiny``) on judge traces of
    ``examples``; writes ``out_dir/judge_sft.jsonl`` and returns the final model ``out_dir/final``.
    ``sft_options`` are further ``SFTConfig`` fields (``lr``, ``batch_size``, ``seq_len``, ...)."""
    from k15ray.config.model import ModelConfig
    from k15ray.config.sft import SFTConfig
    from k15ray.sft import train_sft

    if not examples:
        raise ValueError("train_cot_judge needs labelled examples; make them with make_rm_examples")
    out = Path(out_dir)
    data = out / JUDGE_DATA_FILE
    write_jsonl(data, judge_sft_records(examples))
    options = {"warmup_steps": min(20, max_steps // 10), "save_every_steps": 0, **sft_options}
    config = SFTConfig(data=str(data), out_dir=str(out), model=ModelConfig(path=str(base_model_dir)),
                       max_steps=max_steps, **options)
    return train_sft(config, progress=progress)


class CoTJudge:
    """A ``RewardFn``: ``CoTJudge(model_dir)(prompt, response)`` asks the judge, greedily.

    ``score`` is 1.0 when the verdict is ``{"correct": true}``, else 0.0; ``details`` holds the
    judge's ``output`` (its last ``max_output_chars`` characters). No parseable verdict:
    ``status="parse_error"``, score 0; a failed generation: ``status="error"``, score 0.

    Args:
        model_dir: a causal-LM directory (``train_cot_judge`` writes one).
        device, dtype: where and how the model runs.
        max_new_tokens: the judge's token budget per answer.
        batch_size: most answers decoded together.
    """

    def __init__(self, model_dir: str | Path, device: str = "cpu", dtype: str = "float32",
                 max_new_tokens: int = 128, batch_size: int = 32, max_output_chars: int = 400) -> None:
        from k15ray.rollout.hf import HFBackend

        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.backend = HFBackend.from_pretrained(model_dir, dtype=dtype, device=device, max_batch_size=batch_size)
        self.max_new_tokens = max_new_tokens
        self.max_output_chars = max_output_chars

    def __call__(self, prompt: Prompt, response: str) -> RewardResult:
        return self.score_batch([prompt], [response])[0]

    def outputs(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[str]:
        """The judge's greedy outputs (special tokens dropped), one per pair."""
        from k15ray.prompting import encode_prompt

        tokenizer = self.backend.tokenizer
        requests = [
            GenerationRequest(str(i), tuple(encode_prompt(tokenizer, rm_input_text(question_text(p), p.answer, r))),
                              self.max_new_tokens)
            for i, (p, r) in enumerate(zip(prompts, responses, strict=True))
        ]
        results = self.backend.generate(requests, SamplingParams(temperature=0.0, detect_repeats=False))
        return [tokenizer.decode(list(res.token_ids), skip_special_tokens=True) for res in results]

    def score_batch(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[RewardResult]:
        """One ``RewardResult`` per pair (one batched generation); never raises for a failed one."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses; pair them up")
        if not prompts:
            return []
        try:
            texts = self.outputs(prompts, responses)
        except Exception as err:  # a reward failure is a typed result (STYLE rule 8)
            error = {"error": f"{type(err).__name__}: {err}"[:500]}
            return [RewardResult(0.0, False, "error", error) for _ in prompts]
        return [self.result(text) for text in texts]

    def result(self, output: str) -> RewardResult:
        """The ``RewardResult`` of one judge output (the verdict parsed by ``parse_verdict``)."""
        verdict = parse_verdict(output)
        details: dict[str, Any] = {"output": output[-self.max_output_chars:]}
        if verdict is None:
            details["error"] = 'no final {"correct": true|false} JSON object in the judge output'
            return RewardResult(0.0, False, "parse_error", details)
        return RewardResult(1.0 if verdict else 0.0, verdict, "ok", details)
