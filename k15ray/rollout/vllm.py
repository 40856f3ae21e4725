"""vLLM rollout backend (GPU; optional extra ``k15ray[vllm]``, vLLM 0.26 to 0.33).

Implements the same ``RolloutBackend`` Protocol as ``k15ray.rollout.hf.HFBackend``: token ids in
(``TokensPrompt``: prompt + earlier segments for partial rollouts, paper 2.6.2), token ids, the
log-probs of the sampled tokens and finish reasons out.

* Log-probs are vLLM's ``raw_logprobs`` (log-softmax of the unprocessed logits), the same quantity the
  HF backend reports and the learner recomputes as the reference log-probs of theta_i.
* Repeat detection uses vLLM's own ``RepetitionDetectionParams`` (an n-gram period check in the
  scheduler), so a looping sample stops inside the engine, as early as the HF backend's detector.
* Colocated training and inference (paper 2.6.3): the engine runs in the learner's process
  (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), ``sleep()`` frees its GPU memory while the learner trains
  (level 2 discards weights and KV cache, since fresh weights are loaded anyway) and
  ``update_weights`` loads the learner's tensors in place with the model's ``load_weights``: GPU to
  GPU, no round trip through disk or host memory.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from k15ray.types import BackendFinish, GenerationRequest, GenerationResult, SamplingParams

_FINISH: dict[str, BackendFinish] = {"stop": "stop", "length": "length", "repetition": "repeat"}


def _request_seed(seed: int, request_id: str) -> int:
    """A per-request seed: the k samples of one prompt must differ, yet a rerun must repeat."""
    return (seed * 1_000_003 + zlib.crc32(request_id.encode())) % (2**31 - 1)


class VLLMBackend:
    """A vLLM ``LLM`` engine behind the rollout Protocol.

    Arguments:
        model_dir: a Hugging Face model directory (the built-in tiny model or a real checkpoint).
        gpu_memory_utilization: fraction of the GPU the engine may take (leave room for the learner
            when colocated).
        sleep_level: 1 keeps a CPU copy of the weights while asleep, 2 discards them (colocated
            training reloads the weights after every update anyway).
        repeat_max_period / repeat_min_repeats: vLLM's repetition detection (0 disables it).
        engine_kwargs: passed through to ``vllm.LLM``.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        gpu_memory_utilization: float = 0.5,
        enable_sleep_mode: bool = True,
        sleep_level: int = 2,
        enforce_eager: bool = False,
        dtype: str = "auto",
        seed: int = 0,
        max_model_len: int | None = None,
        repeat_max_period: int = 0,
        repeat_min_repeats: int = 0,
        in_process: bool = True,
        **engine_kwargs: Any,
    ) -> None:
        if not Path(model_dir).is_dir():
            raise ValueError(f"{model_dir}: not a directory; pass a Hugging Face model directory")
        if sleep_level not in (1, 2):
            raise ValueError(f"sleep_level={sleep_level}: use 1 (keep weights on CPU) or 2 (discard)")
        if in_process:
            # The engine core runs in this process, so update_weights can hand it GPU tensors.
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        try:
            from vllm import LLM
        except ImportError as err:  # pragma: no cover - depends on the machine
            raise ImportError(
                "the vLLM backend needs vLLM on a GPU machine: pip install 'k15ray[vllm]', "
                "or use rollout backend 'hf'"
            ) from err
        self._llm = LLM(
            model=str(model_dir),
            gpu_memory_utilization=gpu_memory_utilization,
            enable_sleep_mode=enable_sleep_mode,
            enforce_eager=enforce_eager,
            dtype=dtype,
            seed=seed,
            max_model_len=max_model_len,
            **engine_kwargs,
        )
        self._sleep_level = sleep_level
        self._asleep = False
        self._weights_valid = True  # False after a level-2 sleep until update_weights
        self._version = 0
        self._repeat = (repeat_max_period, repeat_min_repeats)
        eos = getattr(self._llm.llm_engine.model_config.hf_config, "eos_token_id", None)
        self._eos: tuple[int, ...] = tuple(eos) if isinstance(eos, list) else (
            () if eos is None else (int(eos),)
        )

    @property
    def policy_version(self) -> int:
        return self._version

    @property
    def llm(self) -> Any:
        """The underlying ``vllm.LLM`` (for benchmarks against the raw engine)."""
        return self._llm

    def sampling_params(self, request: GenerationRequest, params: SamplingParams) -> Any:
        """vLLM ``SamplingParams`` for one request: its remaining budget, one log-prob per token."""
        from vllm import SamplingParams as VLLMSamplingParams

        extra: dict[str, Any] = {}
        max_period, min_repeats = self._repeat
        if params.detect_repeats and max_period > 0 and min_repeats >= 2:
            from vllm.sampling_params import RepetitionDetectionParams

            extra["repetition_detection"] = RepetitionDetectionParams(
                max_pattern_size=max_period, min_pattern_size=1, min_count=min_repeats
            )
        return VLLMSamplingParams(
            temperature=params.temperature,
            top_p=params.top_p if params.temperature > 0 else 1.0,
            max_tokens=request.max_new_tokens,
            stop_token_ids=list(params.stop_token_ids or self._eos),
            seed=None if params.seed is None else _request_seed(params.seed, request.request_id),
            logprobs=0,  # the sampled token's own log-prob only
            detokenize=False,
            **extra,
        )

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[GenerationResult]:
        """Continue every request's token ids; one result per request, in order."""
        from vllm.inputs import TokensPrompt

        if self._asleep:
            self.wake()
        if not self._weights_valid:
            raise RuntimeError(
                "the engine slept at level 2 and holds no weights: call update_weights(...) before "
                "generate, or use sleep_level=1"
            )
        if not requests:
            return []
        prompts = [TokensPrompt(prompt_token_ids=list(r.token_ids)) for r in requests]
        outputs = self._llm.generate(
            prompts, [self.sampling_params(r, params) for r in requests], use_tqdm=False
        )
        results = []
        for request, output in zip(requests, outputs, strict=True):
            completion = output.outputs[0]
            token_ids = tuple(int(t) for t in completion.token_ids)
            logprobs = tuple(
                float(step[token].logprob)
                for step, token in zip(completion.logprobs or [], token_ids, strict=True)
            )
            results.append(
                GenerationResult(
                    request_id=request.request_id,
                    token_ids=token_ids,
                    logprobs=logprobs,
                    finish_reason=_FINISH.get(str(completion.finish_reason), "length"),
                    policy_version=self._version,
                )
            )
        return results

    def update_weights(self, state_dict: Mapping[str, Any], version: int) -> None:
        """Load new weights in place (GPU tensors stay on the GPU) and set the policy version."""
        if version <= self._version:
            raise ValueError(
                f"weight version {version} is not newer than the loaded version {self._version}; "
                "versions must increase with every update"
            )
        if self._asleep:
            self.wake()
        items = list(state_dict.items())

        def load(model: Any) -> int:
            model.load_weights(weights=iter(items))
            return len(items)

        self._llm.apply_model(load)
        # Cached prefixes were computed with the old weights.
        self._llm.reset_prefix_cache()
        self._weights_valid = True
        self._version = version

    def sleep(self) -> None:
        """Free the engine's GPU memory for the training phase (paper 2.6.3)."""
        if not self._asleep:
            self._llm.sleep(level=self._sleep_level)
            self._asleep = True
            self._weights_valid = self._sleep_level == 1

    def wake(self) -> None:
        if self._asleep:
            self._llm.wake_up()
            self._asleep = False
