"""The policy application's vLLM backend: vLLM's async engine, batching continuously (GPU).

``AsyncVLLMBackend.agenerate(request, params)`` adds one request to a ``vllm`` ``AsyncLLM`` engine
(v1; ``AsyncLLMEngine`` is its alias) and awaits its final output. Every concurrent choice of every
concurrent HTTP request is its own engine request, so the engine's scheduler batches them step by
step (continuous batching): a request that arrives joins the running batch at the next decode
step, one that finishes leaves it, and nothing waits for a batch window (the deployment's
``@serve.batch`` is not used with this backend).

Token ids in, token ids out: the engine asks for no log-probs (the OpenAI API answers
``logprobs: null``) and detokenizes nothing; the deployment tokenizes and decodes. A text-only
policy's engine starts without its tokenizer; a vision-language policy's needs it, since vLLM's
multi-modal processor reads it to expand each ``<image>``, and its requests' images go along as
``multi_modal_data`` with one ``<image>`` per image (``k15ray.rollout.vllm_prompts``, as in the
rollout engine). The engine core runs in its own process (vLLM's default), so the replica's
event loop, which parses requests and streams answers, never waits on a GPU step.

Sampling matches ``k15ray.rollout.vllm.VLLMBackend``: a seeded request gets its own stream from
``request_seed(seed, request_id)``; stop tokens end a choice; with ``detect_repeats`` the tokens
after the first loop (``first_loop_end``) are cut.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

from k15ray.config.repeat import RepeatConfig
from k15ray.rollout.repeat import first_loop_end
from k15ray.rollout.sampling import request_seed
from k15ray.rollout.vllm_prompts import EnginePrompts, processor_cache_kwargs
from k15ray.types import BackendFinish, GenerationRequest, GenerationResult, SamplingParams


def _async_llm_class() -> Any:
    try:
        from vllm.v1.engine.async_llm import AsyncLLM
    except ImportError:  # pragma: no cover - older layouts export only the alias
        from vllm import AsyncLLMEngine as AsyncLLM
    return AsyncLLM


class AsyncVLLMBackend:
    """vLLM's async engine behind ``AsyncBackend`` (``k15ray.serve.policy_model``).

    Arguments:
        model_dir: a Hugging Face model directory.
        gpu_memory_utilization: fraction of the GPU's memory the engine may take.
        dtype, seed, max_model_len: passed to the engine.
        repeat_config: loop detection used when ``SamplingParams.detect_repeats`` is set.
        engine_kwargs: more ``AsyncEngineArgs`` fields.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        gpu_memory_utilization: float = 0.85,
        dtype: str = "auto",
        seed: int = 0,
        max_model_len: int | None = None,
        repeat_config: RepeatConfig | None = None,
        **engine_kwargs: Any,
    ) -> None:
        if not Path(model_dir).is_dir():
            raise ValueError(f"{model_dir}: not a directory; pass a Hugging Face model directory")
        from k15ray.models.llava_names import check_llava_names
        from k15ray.models.vision_language import is_vision_model_dir
        from k15ray.rollout.vllm_plugin import register as register_vllm_plugin

        register_vllm_plugin()  # as the rollout engine: also for a source checkout not installed
        check_llava_names(model_dir)
        vision = is_vision_model_dir(model_dir)
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
        except ImportError as err:  # pragma: no cover - depends on the machine
            raise ImportError(
                "policy.backend 'vllm' needs vLLM on a GPU machine: pip install 'k15ray[vllm]', "
                "or use backend 'hf'"
            ) from err
        args = AsyncEngineArgs(
            model=str(model_dir),
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            seed=seed,
            max_model_len=max_model_len,
            skip_tokenizer_init=not vision,  # vLLM expands <image> with the tokenizer
            disable_log_stats=True,
            **{**processor_cache_kwargs(model_dir), **engine_kwargs},
        )
        # the engine core is a process of its own: forked, it would inherit a CUDA context that
        # the caller may already hold (vLLM then fails in the child), so it is spawned
        os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        self.engine = _async_llm_class().from_engine_args(args)
        hf_config = self.engine.model_config.hf_config
        self._prompts = EnginePrompts.of(hf_config)
        eos = getattr(hf_config, "eos_token_id", None)
        self._eos: tuple[int, ...] = (
            tuple(eos) if isinstance(eos, list) else (() if eos is None else (int(eos),))
        )
        self.repeat_config = repeat_config or RepeatConfig()
        self._ids = itertools.count()  # engine request ids must be unique; client ids may repeat

    @property
    def policy_version(self) -> int:
        return 0

    def sampling_params(self, request: GenerationRequest, params: SamplingParams) -> Any:
        """vLLM ``SamplingParams`` for one request: token ids only, final output only."""
        from vllm import SamplingParams as VLLMSamplingParams
        from vllm.sampling_params import RequestOutputKind

        seed = None if params.seed is None else request_seed(params.seed, f"{request.request_id}/0")
        return VLLMSamplingParams(
            temperature=params.temperature,
            top_p=params.top_p if params.temperature > 0 else 1.0,
            max_tokens=request.max_new_tokens,
            stop_token_ids=[] if params.ignore_eos else list(params.stop_token_ids or self._eos),
            ignore_eos=params.ignore_eos,
            seed=seed,
            detokenize=False,
            output_kind=RequestOutputKind.FINAL_ONLY,
            logit_bias=self._prompts.logit_bias,
        )

    async def agenerate(
        self, request: GenerationRequest, params: SamplingParams
    ) -> GenerationResult:
        """Continue ``request.token_ids`` (with ``request.images``) by at most
        ``request.max_new_tokens`` tokens."""
        head = self._prompts.head(request)  # a UserError for images the policy cannot take
        if request.max_new_tokens <= 0:
            return GenerationResult(request.request_id, (), (), "length", 0)
        prompt = self._prompts.prompt(head, request)
        engine_id = f"{request.request_id}#{next(self._ids)}"
        final: Any = None
        async for output in self.engine.generate(
            prompt, self.sampling_params(request, params), engine_id
        ):
            final = output
        if final is None:
            raise RuntimeError(f"vLLM returned no output for request {request.request_id!r}")
        if request.images:  # the rollout engine checks this once at start (docs/vision.md)
            self._prompts.check_engine_ids(request, final.prompt_token_ids, "serve it with policy.backend 'hf'")
        completion = final.outputs[0]
        tokens = [int(t) for t in completion.token_ids]
        finish: BackendFinish = "stop" if str(completion.finish_reason) == "stop" else "length"
        end = first_loop_end(tokens, self.repeat_config) if params.detect_repeats else None
        if end is not None and self.repeat_config.enabled:
            tokens, finish = tokens[:end], "repeat"
        return GenerationResult(request.request_id, tuple(tokens), (), finish, 0)

    def shutdown(self) -> None:
        """Stop the engine core process (the replica's end)."""
        self.engine.shutdown()
