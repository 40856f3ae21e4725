"""The transformers rollout backend: batched sampling with per-token log-probs (paper 2.6.2).

``HFBackend`` implements ``k15ray.types.RolloutBackend`` on top of any ``AutoModelForCausalLM``:
the CPU default of k15ray and the fallback on GPU. One call to ``generate`` takes token-id requests
(prompt + earlier segments, for partial rollouts) and returns, for each, the new tokens, their
rollout log-probs, a finish reason and the policy version that produced them.

Decoding is our own loop over the model's forward with a KV ``Cache`` of growing layers, passed as
``cache=`` (``past_key_values=`` on transformers releases before that rename, ``cache_kwarg``):

* requests are sorted by length and cut into micro-batches of at most ``max_batch_size``;
* each micro-batch is LEFT-padded; position ids count only real tokens (``cumsum(mask) - 1``), so a
  padded row computes exactly what it would alone, and a continuation from prompt + earlier tokens
  is the same computation as an uninterrupted generation (up to float rounding);
* every request has its own budget ``max_new_tokens``; a row that finishes (stop token, budget,
  repeat) is dropped from the batch and from the KV cache, so short requests do not pay for long ones;
* next token y_t ~ softmax(logits / temperature) restricted to the top-p nucleus; temperature 0 is
  greedy (argmax);
* the log-prob reported for y_t (when ``SamplingParams.logprobs``; otherwise none is computed and
  results carry ``()``) is ``log softmax(logits / T)[y_t]`` with T the sampling temperature
  (``k15ray.logprobs.policy_temperature``: T = 1 for greedy decoding, temperature 0): the policy
  the rollout samples from, before the top-p cut. It is log pi_theta_i(y_t | x, y_<t), the quantity
  the learner recomputes at the same T as the reference log-prob of mirror descent (paper 2.3.2,
  the pi_ref = pi_theta_i of eq. 2), so the two are directly comparable (vLLM's
  ``processed_logprobs`` too, when top_p = 1);
* the stop token that ends a sample is part of its tokens (with its log-prob), so the learner trains
  the policy to emit it;
* repeat detection (paper 2.6.2): a streaming ``RepeatDetector`` per request sees each new token and
  stops a looping sample early with finish reason ``repeat``. It watches the new tokens of this call
  only (a looping continuation is caught again within ``min_tokens`` tokens).

Images (a vision-language policy such as ``tiny-vl``): a request's ``images`` are turned into pixel
values by the model's image processor and given to the prefill forward of its micro-batch (rows
with images in batch order, their placeholders already expanded in ``token_ids``); the decode steps
read them from the KV cache. Text-only and image requests mix in one batch. The image placeholder
token is never sampled (its logit is masked for sampling; the reported log-probs stay the model's
own, the ones the learner recomputes): a response holds no image slot. Images sent to a
text-only policy, or images that do not match the placeholders, are a ``UserError`` before any
decoding.

Finish reasons: ``stop`` (a stop token was sampled), ``repeat`` (caught looping), ``length`` (exactly
``max_new_tokens`` tokens were produced).
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

from k15ray.config.repeat import RepeatConfig
from k15ray.logprobs import policy_temperature
from k15ray.models.vision_language import check_request_images
from k15ray.rollout.repeat import RepeatDetector
from k15ray.rollout.sampling import request_seed, sample_tokens, sampled_logprobs
from k15ray.rollout.weight_sync import check_new_version
from k15ray.types import BackendFinish, GenerationRequest, GenerationResult, SamplingParams

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cache_kwarg(model: Any) -> str:
    """The name under which ``model.forward`` takes a KV ``Cache``: ``cache`` in the transformers
    releases that renamed it, ``past_key_values`` before (the old name warns, then goes in 5.40)."""
    forward = getattr(model, "forward", None)
    try:
        params = inspect.signature(forward).parameters if forward is not None else {}
    except (TypeError, ValueError):  # a forward inspect cannot read: the long-standing name
        params = {}
    return "cache" if "cache" in params else "past_key_values"


class _GrowingLayer(DynamicLayer):
    """A KV-cache layer whose buffers grow by doubling, so appending a token costs O(1) amortised
    instead of ``DynamicLayer``'s ``torch.cat`` copy of the whole cache (O(T) per token, which
    dominated decoding time on the tiny model). ``keys``/``values`` are views of the used prefix."""

    _used = 0

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self._k_buf = self._grow(None, key_states, max(2 * key_states.shape[-2], 64))
            self._v_buf = self._grow(None, value_states, self._k_buf.shape[-2])
        new = key_states.shape[-2]
        if self._used + new > self._k_buf.shape[-2]:
            capacity = 2 * (self._used + new)
            self._k_buf = self._grow(self._k_buf, key_states, capacity)
            self._v_buf = self._grow(self._v_buf, value_states, capacity)
        self._k_buf[:, :, self._used : self._used + new] = key_states  # (B, H, T, D)
        self._v_buf[:, :, self._used : self._used + new] = value_states
        self._used += new
        self.keys = self._k_buf[:, :, : self._used]
        self.values = self._v_buf[:, :, : self._used]
        return self.keys, self.values

    def _grow(self, buf: torch.Tensor | None, like: torch.Tensor, capacity: int) -> torch.Tensor:
        batch, heads, _, dim = like.shape
        bigger = like.new_empty((batch, heads, capacity, dim))
        if buf is not None and self._used:
            bigger[:, :, : self._used] = buf[:, :, : self._used]
        return bigger

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized and self._used:
            self._k_buf, self._v_buf = self._k_buf[indices], self._v_buf[indices]
            self.keys = self._k_buf[:, :, : self._used]
            self.values = self._v_buf[:, :, : self._used]


@dataclass
class _Row:
    """Decoding state of one request of a micro-batch."""

    index: int  # position of the request in the caller's list
    budget: int  # max_new_tokens
    detector: RepeatDetector | None  # None: repeat detection off
    stream: random.Random | None  # this request's random stream (None: torch's global RNG)
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish: BackendFinish | None = None

    def push(self, token: int, logprob: float | None, stop_ids: frozenset[int]) -> bool:
        """Record one sampled token (and its log-prob, unless None); True when this row is finished."""
        self.token_ids.append(token)
        if logprob is not None:
            self.logprobs.append(logprob)
        if token in stop_ids:
            self.finish = "stop"
        elif self.detector is not None and self.detector.update(token):
            self.finish = "repeat"
        elif len(self.token_ids) >= self.budget:
            self.finish = "length"
        return self.finish is not None


class HFBackend:
    """A ``RolloutBackend`` over a transformers causal LM (see the module docstring).

    Args:
        model: an ``AutoModelForCausalLM`` (put in eval mode here; generation runs without grad).
        tokenizer: its tokenizer; only ``eos_token_id`` (default stop token) and ``pad_token_id``
            (filler for left padding, never attended) are read.
        max_batch_size: most requests decoded together in one micro-batch.
        repeat_config: a ``k15ray.config.repeat.RepeatConfig`` (None: its defaults); used when
            ``SamplingParams.detect_repeats`` is set.
        policy_version: version of the weights the model holds now.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_batch_size: int = 64,
        repeat_config: RepeatConfig | None = None,
        policy_version: int = 0,
        image_processor: Any = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.model = model  # put in eval mode during generate only, then restored
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.repeat_config = repeat_config or RepeatConfig()
        self._version = policy_version
        eos = getattr(tokenizer, "eos_token_id", None)
        pad = getattr(tokenizer, "pad_token_id", None)
        self.default_stop_ids: tuple[int, ...] = () if eos is None else (int(eos),)
        self.pad_id = int(pad if pad is not None else (eos if eos is not None else 0))
        self._cache_kwarg = cache_kwarg(model)
        self.image_processor = image_processor  # None: a text-only policy
        self.image_token_id: int | None = getattr(model.config, "image_token_id", None)

    @classmethod
    def from_pretrained(
        cls, model_dir: str | Path, dtype: str = "float32", device: str = "cpu", **kwargs: Any
    ) -> HFBackend:
        """Load model and tokenizer from a Hugging Face directory through ``Auto*`` classes
        (``k15ray.models.load_policy``; a vision-language directory through ``load_vision_policy``,
        with its image processor); ``kwargs`` go to the constructor (``max_batch_size``,
        ``repeat_config``, ``policy_version``)."""
        from k15ray.models import check_model_dir, load_policy
        from k15ray.models.vision_language import is_vision_model_dir, load_vision_policy

        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if is_vision_model_dir(check_model_dir(model_dir)):
            model, processor = load_vision_policy(model_dir, dtype=_DTYPES[dtype], device=device)
            return cls(model, processor.tokenizer, image_processor=processor.image_processor, **kwargs)
        model, tokenizer = load_policy(model_dir, dtype=_DTYPES[dtype], device=device)
        return cls(model, tokenizer, **kwargs)

    @property
    def policy_version(self) -> int:
        """Version of the weights that produce the next results."""
        return self._version

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def update_weights(self, state_dict: Mapping[str, Any], version: int) -> None:
        """Load ``state_dict`` into the model in place and become ``version`` (must increase).

        Keys must be the model's own ``state_dict`` keys; a key of a tied weight (e.g.
        ``lm_head.weight`` tied to the embeddings) may be absent when its twin is present."""
        check_new_version(self._version, version, "the rollout backend")
        own = self.model.state_dict()  # tied weights appear under each of their names
        unexpected = sorted(set(state_dict) - set(own))
        if unexpected:
            raise ValueError(f"state_dict has keys the model lacks: {unexpected[:5]}; wrong model?")
        given_ptrs = {own[k].data_ptr() for k in state_dict}
        missing = sorted(
            k for k in set(own) - set(state_dict) if own[k].data_ptr() not in given_ptrs
        )
        if missing:
            raise ValueError(
                f"state_dict lacks model weights {missing[:5]}; send the full state_dict"
            )
        tensors = {k: torch.as_tensor(v) for k, v in state_dict.items()}
        self.model.load_state_dict(tensors, strict=False)  # copies in place, casting the dtype
        self._version = version

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[GenerationResult]:
        """Continue every request by at most its ``max_new_tokens``; results in request order."""
        for r in requests:
            if not r.token_ids:
                raise ValueError(f"request {r.request_id!r} has no token ids; give it the prompt")
            if r.max_new_tokens < 0:
                raise ValueError(f"request {r.request_id!r}: max_new_tokens must be >= 0")
            check_request_images(self.model.config, r)
        # ignore_eos: exactly max_new_tokens per request (SamplingParams), as vLLM does
        stop_ids = frozenset() if params.ignore_eos else frozenset(params.stop_token_ids or self.default_stop_ids)
        rows: list[_Row | None] = [None] * len(requests)
        todo = sorted(
            (i for i, r in enumerate(requests) if r.max_new_tokens > 0),
            key=lambda i: (-len(requests[i].token_ids), i),
        )
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(todo), self.max_batch_size):
                    batch = todo[start : start + self.max_batch_size]
                    for decoded in self._decode(requests, batch, params, stop_ids):
                        rows[decoded.index] = decoded
        finally:
            self.model.train(was_training)
        results = []
        for i, r in enumerate(requests):
            row = rows[i]
            tokens, logps = (row.token_ids, row.logprobs) if row else ([], [])
            finish: BackendFinish = row.finish if row and row.finish else "length"
            results.append(
                GenerationResult(r.request_id, tuple(tokens), tuple(logps), finish, self._version)
            )
        return results

    def _without_image_token(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` (B, V) to sample from: the image placeholder's set to -inf (a response never
        holds one); the same tensor for a text-only policy."""
        if self.image_token_id is None:
            return logits
        allowed = logits.clone()
        allowed[:, self.image_token_id] = float("-inf")
        return allowed

    def pixel_values(self, images: Sequence[Any]) -> torch.Tensor:
        """``(N, 3, S, S)`` pixel values of ``images`` by the model's image processor, in the
        model's dtype and device (what the vision tower reads)."""
        pixels = self.image_processor(images=list(images), return_tensors="pt")["pixel_values"]
        return pixels.to(device=self.device, dtype=self.model.dtype)

    def _new_row(self, request: GenerationRequest, index: int, params: SamplingParams) -> _Row:
        detector = None
        if params.detect_repeats and self.repeat_config.enabled:
            detector = RepeatDetector(self.repeat_config)
        stream = None
        if params.seed is not None:
            stream = random.Random(request_seed(params.seed, request.request_id))
        return _Row(index, request.max_new_tokens, detector, stream)

    def _left_pad(self, sequences: Sequence[tuple[int, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, T) left-padded with ``pad_id``, and the attention mask (B, T)."""
        width = max(len(seq) for seq in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)  # (B, T)
        attention = torch.zeros((len(sequences), width), dtype=torch.long)  # (B, T), 1 = token
        for b, seq in enumerate(sequences):
            input_ids[b, width - len(seq) :] = torch.tensor(seq)
            attention[b, width - len(seq) :] = 1
        return input_ids.to(self.device), attention.to(self.device)

    def _prefill(
        self, requests: Sequence[GenerationRequest], batch: list[int]
    ) -> tuple[Any, Cache, torch.Tensor, torch.Tensor]:
        """The first forward of a micro-batch (indices into ``requests``), its images included:
        (output, KV cache, attention mask (B, T), next position ids (B, 1))."""
        input_ids, attention = self._left_pad([requests[i].token_ids for i in batch])
        positions = (attention.cumsum(-1) - 1).clamp(min=0)  # (B, T): pads do not count
        cache = Cache(layer_class_to_replicate=_GrowingLayer)
        images = [image for i in batch for image in requests[i].images]  # in row order, as the tokens
        vision = {"pixel_values": self.pixel_values(images)} if images else {}
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **vision,
            **{self._cache_kwarg: cache},
        )
        return out, cache, attention, positions[:, -1:] + 1

    def _sample_step(
        self, logits: torch.Tensor, active: list[_Row], params: SamplingParams, stop_ids: frozenset[int],
        done: list[_Row],
    ) -> tuple[torch.Tensor, list[int]]:
        """Sample each active row's next token from ``logits`` (B, V) and push it (with its log-prob
        when asked); rows that finish go to ``done``. Returns (tokens (B,), rows still running)."""
        allowed = self._without_image_token(logits)
        streams = [r.stream for r in active if r.stream is not None] if params.seed is not None else None
        tokens = sample_tokens(allowed, params.temperature, params.top_p, streams)  # (B,)
        host_logps: list[float] | list[None]
        if params.logprobs:
            temperature = policy_temperature(params.temperature)
            logps = sampled_logprobs(logits, tokens, temperature)  # (B,)
            # one device-to-host copy per step: token ids are exact in float64
            host_tokens, host_logps = torch.stack([tokens.double(), logps.double()]).tolist()
        else:  # no log-softmax over the vocabulary: the learner recomputes log-probs itself
            host_tokens, host_logps = tokens.tolist(), [None] * len(active)
        keep = []
        for b, (tok, lp) in enumerate(zip(host_tokens, host_logps, strict=True)):
            if active[b].push(int(tok), lp, stop_ids):
                done.append(active[b])
            else:
                keep.append(b)
        return tokens, keep

    def _decode(
        self,
        requests: Sequence[GenerationRequest],
        batch: list[int],
        params: SamplingParams,
        stop_ids: frozenset[int],
    ) -> list[_Row]:
        """Decode one micro-batch (indices into ``requests``) to completion with a KV cache."""
        out, cache, attention, next_pos = self._prefill(requests, batch)
        active = [self._new_row(requests[i], i, params) for i in batch]
        done: list[_Row] = []
        while True:
            tokens, keep = self._sample_step(out.logits[:, -1, :], active, params, stop_ids, done)
            if not keep:
                return done
            if len(keep) < len(active):  # drop finished rows from the batch and the KV cache
                idx = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(idx)
                active = [active[b] for b in keep]
                tokens, attention, next_pos = tokens[idx], attention[idx], next_pos[idx]
            attention = torch.cat([attention, attention.new_ones((len(keep), 1))], dim=-1)
            out = self.model(
                input_ids=tokens.unsqueeze(-1),  # (B, 1)
                attention_mask=attention,
                position_ids=next_pos,
                use_cache=True,
                **{self._cache_kwarg: cache},
            )
            next_pos = next_pos + 1
