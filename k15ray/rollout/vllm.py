"""vLLM rollout backend (GPU; optional extra ``k15ray[vllm]``, vLLM 0.26 to 0.33).

Implements the same ``RolloutBackend`` Protocol as ``k15ray.rollout.hf.HFBackend``: token ids in
(``TokensPrompt``: prompt + earlier segments for partial rollouts, paper 2.6.2), token ids, the
log-probs of the sampled tokens (only when ``SamplingParams.logprobs``: asking vLLM 0.26 for them
costs about a third of its throughput, docs/gpu.md) and finish reasons out.

* Log-probs are vLLM's ``processed_logprobs`` (engine argument ``logprobs_mode``): the log-softmax
  of the logits after temperature, log softmax(z / T)[y] (greedy requests: no temperature, T = 1),
  the same quantity the HF backend reports and the learner recomputes at the same T
  (``k15ray.logprobs.policy_temperature``) as the reference log-probs of theta_i. vLLM takes them
  after top-k/top-p as well, renormalised over the nucleus, so with top_p < 1 they sit above the
  learner's by log(1 / nucleus mass) (the ``loss/rollout_logp_gap_*`` metrics show it); with
  top_p = 1 the two agree. This mode keeps vLLM off FlashInfer's sampler (which cannot return
  processed log-probs); the bundled vLLM has no FlashInfer anyway.
* Repeat detection: generation runs in chunks of ``repeat_check_tokens``; after each chunk the new
  tokens go through ``first_loop_end``, the batch form of the HF backend's streaming
  ``RepeatDetector``, so a looping sample ends with exactly the tokens the HF backend would keep and
  wastes at most one chunk. (vLLM's own ``RepetitionDetectionParams`` runs a Python check per token
  per request inside the scheduler, which costs more than a decode step at batch 256.)
* Colocated training and inference (paper 2.6.3): the engine runs in the learner's process
  (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), ``sleep()`` frees its GPU memory while the learner trains
  (level 2 discards weights and KV cache, since fresh weights are loaded anyway) and
  ``update_weights`` loads the learner's tensors in place with the model's ``load_weights``: GPU to
  GPU, no round trip through disk or host memory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from k15ray.config.repeat import RepeatConfig
from k15ray.models.llava_names import check_llava_names, llava_weights, tower_type
from k15ray.rollout.image_probe import check_images_reach_model
from k15ray.rollout.nccl_sync import NCCL_EXTENSION
from k15ray.rollout.repeat import first_loop_ends
from k15ray.rollout.sampling import request_seed
from k15ray.rollout.vllm_prompts import EnginePrompts, processor_cache_kwargs
from k15ray.rollout.weight_sync import check_new_version
from k15ray.types import BackendFinish, GenerationRequest, GenerationResult, SamplingParams

_FINISH: dict[str, BackendFinish] = {"stop": "stop", "length": "length", "repetition": "repeat"}


def _sampled_logprobs(logprobs: Any, token_ids: Sequence[int]) -> list[float]:
    """The sampled tokens' log-probs from vLLM's ``FlatLogprobs`` (or its list-of-dicts form)."""
    flat = getattr(logprobs, "logprobs", None)
    if flat is not None and len(flat) == len(token_ids):  # logprobs=0: one entry per position
        return [float(x) for x in flat]
    return [float(step[t].logprob) for step, t in zip(logprobs or [], token_ids, strict=True)]


class VLLMBackend:
    """A vLLM ``LLM`` engine behind the rollout Protocol.

    Arguments:
        model_dir: a Hugging Face model directory (the built-in tiny model or a real checkpoint).
        gpu_memory_utilization: fraction of the GPU the engine may take (leave room for the learner
            when colocated).
        sleep_level: 1 keeps a CPU copy of the weights while asleep, 2 discards them (colocated
            training reloads the weights after every update anyway).
        repeat_config: ``k15ray.config.repeat.RepeatConfig`` (None: its defaults), mapped onto vLLM's
            repetition detection (period <= max_period repeated >= min_repeats times) and used when
            ``SamplingParams.detect_repeats`` is set.
        repeat_check_tokens: tokens generated between two repeat checks (the most a looping sample
            can waste).
        engine_kwargs: passed through to ``vllm.LLM`` (``logprobs_mode`` defaults to
            ``processed_logprobs``, see the module docstring).
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
        repeat_config: RepeatConfig | None = None,
        repeat_check_tokens: int = 256,
        in_process: bool = True,
        **engine_kwargs: Any,
    ) -> None:
        if not Path(model_dir).is_dir():
            raise ValueError(f"{model_dir}: not a directory; pass a Hugging Face model directory")
        if sleep_level not in (1, 2):
            raise ValueError(
                f"sleep_level={sleep_level}: use 1 (keep weights on CPU) or 2 (discard)"
            )
        if in_process:
            # The engine core runs in this process, so update_weights can hand it GPU tensors.
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        # vLLM loads this plugin itself once k15ray is installed; calling it here also covers a
        # source checkout on the path that is not installed (an alias of a renamed transformers class)
        from k15ray.rollout.vllm_plugin import register as register_vllm_plugin

        register_vllm_plugin()
        check_llava_names(model_dir)  # before an engine starts: names vLLM's Llava loader cannot read
        try:
            from vllm import LLM
        except ImportError as err:  # pragma: no cover - depends on the machine
            raise ImportError(
                "the vLLM backend needs vLLM on a GPU machine: pip install 'k15ray[vllm]', "
                "or use rollout backend 'hf'"
            ) from err
        # The NCCL weight-sync methods (k15ray.rollout.nccl_sync) join the engine's workers.
        engine_kwargs.setdefault("worker_extension_cls", NCCL_EXTENSION)
        # log-probs at the sampling temperature, as the learner recomputes them (module docstring)
        engine_kwargs.setdefault("logprobs_mode", "processed_logprobs")
        engine_kwargs = {**processor_cache_kwargs(model_dir), **engine_kwargs}
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
        self.repeat_config = repeat_config or RepeatConfig()
        if repeat_check_tokens < 1:
            raise ValueError(f"repeat_check_tokens must be >= 1, got {repeat_check_tokens}")
        self.repeat_check_tokens = repeat_check_tokens
        hf_config = self._llm.llm_engine.model_config.hf_config
        self._prompts = prompts = EnginePrompts.of(hf_config)  # images: one <image> each (vllm_prompts)
        self._tower = tower_type(hf_config)  # the learner's weight names are renamed for it on sync
        eos = getattr(hf_config, "eos_token_id", None)
        self._eos: tuple[int, ...] = (
            tuple(eos) if isinstance(eos, list) else (() if eos is None else (int(eos),))
        )
        if prompts.sees_images:  # an engine that drops images fails here
            if not hasattr(self._llm.llm_engine, "reset_encoder_cache"):
                raise RuntimeError(
                    "this vLLM cannot reset its encoder cache, so images would keep features of old "
                    "weights after a sync; use vLLM 0.26 to 0.33, or rollout backend 'hf'"
                )
            self._check_engine_prompt()
            assert prompts.image_token is not None
            check_images_reach_model(self, prompts.image_token, prompts.tokens_per_image, "the vLLM engine")

    def _check_engine_prompt(self) -> None:
        """A ``RuntimeError`` unless the engine's prompt for a request with an image is the
        request's own token ids (what the learner scores): vLLM re-expands ``<image>``s itself."""
        image, per_image = self._prompts.image_token, self._prompts.tokens_per_image
        assert image is not None
        request = GenerationRequest("image-prompt-check", (1, *[image] * per_image, 1), 1,
                                    images=(np.zeros((32, 32, 3), np.uint8),))
        params = self.sampling_params(request, SamplingParams(temperature=0.0, ignore_eos=True), 1)
        prompt = self._prompts.prompt(self._prompts.head(request), request)
        (out,) = self._llm.generate([prompt], params, use_tqdm=False)
        self._prompts.check_engine_ids(request, out.prompt_token_ids, "use rollout backend 'hf'")

    @property
    def policy_version(self) -> int:
        return self._version

    @property
    def llm(self) -> Any:
        """The underlying ``vllm.LLM`` (for benchmarks against the raw engine)."""
        return self._llm

    def sampling_params(
        self, request: GenerationRequest, params: SamplingParams, max_tokens: int, chunk: int = 0
    ) -> Any:
        """vLLM ``SamplingParams`` for one request: ``max_tokens`` new tokens, and the sampled
        token's log-prob each when ``params.logprobs`` (otherwise none: vLLM's faster path)."""
        from vllm import SamplingParams as VLLMSamplingParams

        seed = None
        if params.seed is not None:
            seed = request_seed(params.seed, f"{request.request_id}/{chunk}")
        return VLLMSamplingParams(
            temperature=params.temperature,
            top_p=params.top_p if params.temperature > 0 else 1.0,
            max_tokens=max_tokens,
            stop_token_ids=[] if params.ignore_eos else list(params.stop_token_ids or self._eos),
            ignore_eos=params.ignore_eos,
            seed=seed,
            # the sampled token's own log-prob only, or no log-prob work at all
            logprobs=0 if params.logprobs else None,
            flat_logprobs=True,  # a few flat lists instead of one dict + object per token
            detokenize=False,
            logit_bias=self._prompts.logit_bias,
        )

    def _ready_to_generate(self) -> None:
        """Wake a sleeping engine; refuse when it slept at level 2 and holds no weights."""
        if self._asleep:
            self.wake()
        if not self._weights_valid:
            raise RuntimeError(
                "the engine slept at level 2 and holds no weights: call update_weights(...) before "
                "generate, or use sleep_level=1"
            )

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[GenerationResult]:
        """Continue every request's token ids; one result per request, in order.

        Generation runs in chunks of ``repeat_check_tokens``; between chunks each sample's new
        tokens are checked with ``first_loop_end`` (the batch form of ``RepeatDetector``), and a
        looping sample is cut exactly where the streaming detector would have stopped it and is
        not continued. vLLM's prefix cache makes continuing a chunk cheap.
        """
        self._ready_to_generate()
        # checked before any decoding, as the HF backend checks them; collapsed once per call
        heads = [self._prompts.head(r) for r in requests]
        check = params.detect_repeats and self.repeat_config.enabled
        chunk = (
            self.repeat_check_tokens
            if check
            else max((r.max_new_tokens for r in requests), default=0)
        )
        tokens: list[list[int]] = [[] for _ in requests]
        logps: list[list[float]] = [[] for _ in requests]
        finish: list[BackendFinish | None] = [
            None if r.max_new_tokens > 0 else "length" for r in requests
        ]
        round_ = 0
        while active := [i for i, f in enumerate(finish) if f is None]:
            prompts = [self._prompts.prompt(heads[i], requests[i], tokens[i]) for i in active]
            sampling = [
                self.sampling_params(
                    requests[i],
                    params,
                    min(chunk, requests[i].max_new_tokens - len(tokens[i])),
                    round_,
                )
                for i in active
            ]
            outputs = self._llm.generate(prompts, sampling, use_tqdm=False)
            for i, output in zip(active, outputs, strict=True):
                completion = output.outputs[0]
                new = list(completion.token_ids)
                tokens[i] += new
                if params.logprobs:
                    logps[i] += _sampled_logprobs(completion.logprobs, new)
            ends = (  # every active sample in one vectorised pass
                first_loop_ends([tokens[i] for i in active], self.repeat_config)
                if check
                else [None] * len(active)
            )
            for i, output, end in zip(active, outputs, ends, strict=True):
                completion = output.outputs[0]
                if end is not None:
                    del tokens[i][end:], logps[i][end:]  # logps: [] when not asked for
                    finish[i] = "repeat"
                elif str(completion.finish_reason) == "stop":
                    finish[i] = "stop"
                elif len(tokens[i]) >= requests[i].max_new_tokens:
                    finish[i] = "length"
            round_ += 1
        return [
            GenerationResult(r.request_id, tuple(t), tuple(lp), f or "length", self._version)
            for r, t, lp, f in zip(requests, tokens, logps, finish, strict=True)
        ]

    def update_weights(self, state_dict: Mapping[str, Any], version: int) -> None:
        """Load new weights in place (GPU tensors stay on the GPU) and set the policy version."""
        check_new_version(self._version, version, "the vLLM engine")
        if self._asleep:
            self.wake()
        items = list(llava_weights(state_dict.items(), self._tower))

        def load(model: Any) -> int:
            model.load_weights(weights=iter(items))
            return len(items)

        self._llm.apply_model(load)
        self._forget_old_weights()
        self._weights_valid = True
        self._version = version

    def _forget_old_weights(self) -> None:
        """Drop what the engine computed with the old weights: cached prefixes' KV and, for a
        vision-language policy, the encoder cache. vLLM keeps each image's features by the image's
        hash across requests, and loading weights through ``apply_model`` does not clear them (its
        own ``reload_weights`` does), so an image seen before would keep its old features."""
        self._llm.reset_prefix_cache()
        if self._prompts.sees_images:
            self._llm.llm_engine.reset_encoder_cache()

    def init_nccl(self, host: str, port: int, rank_offset: int, world_size: int) -> list[int]:
        """Join the learner's NCCL weight-sync group (``k15ray.rollout.nccl_sync``); each engine
        worker takes rank ``rank_offset + its rank``. Returns those ranks. Blocks until the whole
        group has joined."""
        ranks = self._llm.collective_rpc(
            "k15_init_nccl", args=(host, port, rank_offset, world_size)
        )
        return [int(r) for r in ranks]

    def receive_weights(self, layout_wire: Mapping[str, Any], version: int) -> None:
        """Receive the learner's next NCCL broadcast (``PackedLayout.to_wire()`` form) into the
        engine in place and set the policy version; blocks until the broadcast completes."""
        check_new_version(self._version, version, "the vLLM engine")
        if self._asleep:
            self.wake()
        self._llm.collective_rpc("k15_receive_weights", args=(dict(layout_wire),))
        self._forget_old_weights()
        self._weights_valid = True
        self._version = version

    def param_checksum(self) -> tuple[float, float, int]:
        """(sum, sum of squares, count) of the engine's parameters (first worker), in float64."""
        total, squares, count = self._llm.collective_rpc("k15_checksum")[0]
        return float(total), float(squares), int(count)

    def sleep(self) -> None:
        """Free the engine's GPU memory for the training phase (paper 2.6.3)."""
        if not self._asleep:
            self._llm.sleep(level=self._sleep_level)
            self._asleep = True
            self._weights_valid = self._sleep_level == 1

    def wake(self) -> None:
        if self._asleep:
            import torch

            # colocated: the learner's freed blocks stay reserved by torch's caching allocator, and the
            # engine maps its memory outside it (cumem); a real vocabulary's logits (49k x tokens)
            # leave gigabytes there, enough to make wake_up run out of memory
            torch.cuda.empty_cache()
            self._llm.wake_up()
            self._asleep = False
