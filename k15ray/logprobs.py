"""Per-token log-probabilities without a full-vocabulary log-softmax.

Every loss of the paper (section 2.3.2) needs log pi(y_t | x, y_<t) only for the sampled token:

    log pi(y_t) = logits[t, y_t] - logsumexp_v logits[t, v]          (gather minus logsumexp)

``torch.log_softmax(logits).gather(...)`` materialises a (B, T, V) log-softmax in the forward pass
and keeps it for backward, and its backward adds a dense (B, T, V) gradient of that output before
the gradient of the logits: about 3x the logits' memory on top of the logits. Here:

* ``token_logprobs(logits, token_ids)``: a custom autograd Function, chunked over rows, that keeps
  only the logits it was given and a (B, T) logsumexp; backward writes
  ``grad * (onehot(y) - softmax(logits))`` chunk by chunk into the logits' gradient.
* ``hidden_token_logprobs(hidden, weight, token_ids)``: from the last hidden states and the
  lm_head weight, a custom autograd Function chunked over positions that recomputes each chunk's
  logits in backward, so the full (B, T, V) logits never exist at all; the learner's path.
* ``naive_token_logprobs``: the log_softmax path, for tests and the ``loss_memory`` benchmark.
* ``sequence_logprobs``: log pi(y | x) = sum_t mask_t * log pi(y_t), the SEQUENCE log-prob of eq. (3).
* ``policy_token_logprobs(model, input_ids, attention_mask, temperature=T)``: runs a Hugging Face
  causal LM and returns, at position t, log p(input_ids[t] | input_ids[:t]) (position 0 holds 0).

Temperature: the rollout samples y_t ~ softmax(z_t / T), so that is the policy whose log-probs the
losses need; ``token_logprobs``, ``hidden_token_logprobs`` and ``policy_token_logprobs`` take
``temperature`` (T > 0, default 1) and return
``log softmax(z / T)[y] = z_y / T - logsumexp_v(z_v / T)``, with the gradient scaled by 1/T.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

DEFAULT_CHUNK_ROWS = 1024
"""Rows (positions) of the (rows, V) logits processed at once: bounds the temporary memory."""


class _GatherLogSoftmax(torch.autograd.Function):
    """log softmax(logits / T)[token] for each row of a (N, V) logits matrix, chunked over rows."""

    @staticmethod
    def forward(ctx: Any, logits: Tensor, token_ids: Tensor, chunk_rows: int, temperature: float) -> Tensor:
        # logits (N, V), token_ids (N,)
        inv_t = 1.0 / temperature
        n = logits.shape[0]
        low_precision = logits.dtype in (torch.float16, torch.bfloat16)
        acc = torch.float32 if low_precision else logits.dtype  # accumulate in >= fp32
        out = torch.empty(n, dtype=acc, device=logits.device)  # (N,)
        lse = torch.empty(n, dtype=acc, device=logits.device)  # (N,)
        for s in range(0, n, chunk_rows):
            chunk = logits[s : s + chunk_rows].to(lse.dtype)  # (c, V)
            if inv_t != 1.0:
                chunk = chunk * inv_t  # z / T
            chunk_lse = torch.logsumexp(chunk, dim=-1)  # (c,)
            picked = chunk.gather(-1, token_ids[s : s + chunk_rows, None]).squeeze(-1)  # (c,)
            out[s : s + chunk_rows] = picked - chunk_lse
            lse[s : s + chunk_rows] = chunk_lse
        ctx.save_for_backward(logits, token_ids, lse)
        ctx.chunk_rows = chunk_rows
        ctx.inv_t = inv_t
        return out

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor | None, None, None, None]:
        (grad_out,) = grads  # (N,)
        logits, token_ids, lse = ctx.saved_tensors
        inv_t = ctx.inv_t
        grad_logits = torch.empty_like(logits)  # (N, V): unavoidable, it is the result
        rows = ctx.chunk_rows
        for s in range(0, logits.shape[0], rows):
            # chain rule through z / T: the incoming grad times 1/T
            g = grad_out[s : s + rows].to(lse.dtype) * inv_t  # (c,)
            # d/d(z/T) [z_y/T - lse] = onehot(y) - softmax(z/T), times the incoming grad
            chunk, lse_c = logits[s : s + rows], lse[s : s + rows, None]
            if logits.dtype != lse.dtype:
                grad = chunk.to(lse.dtype).mul_(inv_t).sub_(lse_c)  # (c, V)
            elif inv_t == 1.0:  # write straight into the result, no temporary
                grad = torch.sub(chunk, lse_c, out=grad_logits[s : s + rows])
            else:
                grad = torch.mul(chunk, inv_t, out=grad_logits[s : s + rows]).sub_(lse_c)
            grad.exp_().mul_(-g[:, None])
            grad.scatter_add_(-1, token_ids[s : s + rows, None], g[:, None])
            if grad.data_ptr() != grad_logits[s : s + rows].data_ptr():
                grad_logits[s : s + rows] = grad
        return grad_logits, None, None, None


def policy_temperature(sampling_temperature: float) -> float:
    """The T of the policy softmax(z / T) that a rollout at ``sampling_temperature`` samples from:
    the sampling temperature itself, or 1 for greedy decoding (T = 0, no distribution to match).
    Rollout backends report, and the learner recomputes, log-probs at this temperature."""
    if sampling_temperature < 0:
        raise ValueError(f"sampling temperature must be >= 0 (0 = greedy), got {sampling_temperature}")
    return sampling_temperature if sampling_temperature > 0 else 1.0


def _check_temperature(temperature: float) -> None:
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(
            f"temperature must be a finite number > 0, got {temperature}; the sampled policy is "
            "softmax(logits / T), and greedy decoding (T = 0) should pass temperature=1.0"
        )


def token_logprobs(
    logits: Tensor, token_ids: Tensor, chunk_rows: int = DEFAULT_CHUNK_ROWS, temperature: float = 1.0
) -> Tensor:
    """log softmax(logits / T)[..., token_ids] without a (B, T, V) log-softmax.

    (B, T, V), (B, T) -> (B, T); ``temperature`` T > 0 (1 = the raw logits)."""
    _check_temperature(temperature)
    if logits.shape[:-1] != token_ids.shape:
        raise ValueError(
            f"token_ids shape {tuple(token_ids.shape)} must equal logits shape without V, "
            f"{tuple(logits.shape[:-1])}"
        )
    flat = logits.reshape(-1, logits.shape[-1])  # (B*T, V)
    out = _GatherLogSoftmax.apply(flat, token_ids.reshape(-1).long(), chunk_rows, float(temperature))
    return out.reshape(token_ids.shape)  # (B, T)


def naive_token_logprobs(logits: Tensor, token_ids: Tensor) -> Tensor:
    """The reference path: full log_softmax, then gather. (B, T, V), (B, T) -> (B, T)."""
    logp = torch.log_softmax(logits.float() if logits.dtype != torch.float64 else logits, dim=-1)
    return logp.gather(-1, token_ids.long().unsqueeze(-1)).squeeze(-1)


class _HiddenGatherLogSoftmax(torch.autograd.Function):
    """log softmax((hidden @ weight.T + bias) / T)[token] for (N, H) rows, chunked over rows.

    Forward keeps only the inputs and a (N,) logsumexp; backward recomputes each chunk's logits
    (one (c, V) buffer, reused in place for the softmax and the logits' gradient) and accumulates
    the gradients of hidden, weight and bias chunk by chunk.
    """

    @staticmethod
    def forward(
        ctx: Any,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        token_ids: Tensor,
        chunk_rows: int,
        temperature: float,
    ) -> Tensor:
        # hidden (N, H), weight (V, H), bias (V,) or None, token_ids (N,)
        inv_t = 1.0 / temperature
        n = hidden.shape[0]
        acc = torch.float32 if hidden.dtype in (torch.float16, torch.bfloat16) else hidden.dtype
        out = torch.empty(n, dtype=acc, device=hidden.device)  # (N,)
        lse = torch.empty(n, dtype=acc, device=hidden.device)  # (N,)
        for s in range(0, n, chunk_rows):
            logits = torch.nn.functional.linear(hidden[s : s + chunk_rows], weight, bias).to(acc)  # (c, V)
            if inv_t != 1.0:
                logits.mul_(inv_t)  # z / T
            torch.logsumexp(logits, dim=-1, out=lse[s : s + chunk_rows])
            picked = logits.gather(-1, token_ids[s : s + chunk_rows, None]).squeeze(-1)  # (c,)
            out[s : s + chunk_rows] = picked - lse[s : s + chunk_rows]
        ctx.save_for_backward(hidden, weight, bias, token_ids, lse)
        ctx.chunk_rows = chunk_rows
        ctx.inv_t = inv_t
        return out

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor | None, ...]:
        (grad_out,) = grads  # (N,)
        hidden, weight, bias, token_ids, lse = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros_like(weight) if need_w else None
        grad_b = torch.zeros_like(bias) if need_b and bias is not None else None
        rows, inv_t = ctx.chunk_rows, ctx.inv_t
        for s in range(0, hidden.shape[0], rows):
            h = hidden[s : s + rows]  # (c, H)
            # chain rule through z / T: the incoming grad times 1/T
            g = grad_out[s : s + rows].to(lse.dtype) * inv_t  # (c,)
            logits = torch.nn.functional.linear(h, weight, bias).to(lse.dtype)  # (c, V), recomputed
            if inv_t != 1.0:
                logits.mul_(inv_t)  # z / T
            # d/d(z/T) [z_y/T - lse] = onehot(y) - softmax(z/T), times the incoming grad
            grad_logits = logits.sub_(lse[s : s + rows, None]).exp_().mul_(-g[:, None])
            grad_logits.scatter_add_(-1, token_ids[s : s + rows, None], g[:, None])
            grad_logits = grad_logits.to(hidden.dtype)
            if grad_h is not None:
                grad_h[s : s + rows] = grad_logits @ weight  # (c, H)
            if grad_w is not None:
                grad_w.addmm_(grad_logits.T, h)  # (V, H)
            if grad_b is not None:
                grad_b += grad_logits.sum(0)
        return grad_h, grad_w, grad_b, None, None, None


def hidden_token_logprobs(
    hidden: Tensor,
    weight: Tensor,
    token_ids: Tensor,
    bias: Tensor | None = None,
    chunk_tokens: int = 256,
    temperature: float = 1.0,
) -> Tensor:
    """log softmax((hidden @ weight.T + bias) / T)[token_ids]: (B, T, H), (V, H), (B, T) -> (B, T).

    Chunked over rows (``chunk_tokens`` positions of the flattened batch at a time) with the
    logits recomputed in backward, so peak memory holds one (chunk, V) block of logits, never the
    whole (B, T, V). ``temperature`` T > 0 (1 = the raw logits).
    """
    _check_temperature(temperature)
    if hidden.shape[:-1] != token_ids.shape:
        raise ValueError(
            f"token_ids shape {tuple(token_ids.shape)} must equal hidden shape without H, "
            f"{tuple(hidden.shape[:-1])}"
        )
    flat = hidden.reshape(-1, hidden.shape[-1])  # (B*T, H)
    out = _HiddenGatherLogSoftmax.apply(
        flat, weight, bias, token_ids.reshape(-1).long(), chunk_tokens, float(temperature)
    )
    return out.reshape(token_ids.shape)  # (B, T)


def sequence_logprobs(token_logp: Tensor, loss_mask: Tensor) -> Tensor:
    """log pi(y | x) = sum_t mask_t * log pi(y_t | x, y_<t): (B, T), (B, T) -> (B,)."""
    if token_logp.shape != loss_mask.shape:
        raise ValueError(
            f"loss_mask shape {tuple(loss_mask.shape)} must equal token_logp shape {tuple(token_logp.shape)}"
        )
    return (token_logp * loss_mask.to(token_logp.dtype)).sum(dim=-1)


LOGIT_TRANSFORM_ATTRS = (
    "final_logit_softcapping",  # Gemma 2/3/4, NanoChat: cap * tanh(logits / cap)
    "logits_soft_cap",  # RecurrentGemma: the same soft cap
    "logit_scale",  # Cohere, Cohere2, Aya Vision: logits * logit_scale
    "logits_scaling",  # Granite: logits / logits_scaling (HyperCLOVA X: logits * logits_scaling)
    "lm_head_multiplier",  # Falcon-H1: logits * lm_head_multiplier
    "output_multiplier",  # Muse: logits * output_multiplier
    "unpadded_vocab_size",  # Inkling: the padded vocabulary rows are cut from the logits
    "dim_model_base",  # MiniCPM (remote code): hidden / (hidden_size / dim_model_base) before lm_head
)
"""Config attributes of models whose causal-LM forward changes the logits after (or the hidden
states before) the output layer: ``lm_head(base_model(...))`` is not their policy, so these models
take the full-logits path, whose ``model(...).logits`` includes the change."""


def _logits_transformed_after_head(model: torch.nn.Module) -> bool:
    """True when the model's (or its text model's) config sets one of ``LOGIT_TRANSFORM_ATTRS``."""
    config = getattr(model, "config", None)
    if config is None:
        return False
    configs = [config]
    get_text_config = getattr(config, "get_text_config", None)
    if callable(get_text_config):
        configs.append(get_text_config())
    return any(getattr(c, attr, None) is not None for c in configs for attr in LOGIT_TRANSFORM_ATTRS)


def policy_token_logprobs(
    model: torch.nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    chunk_tokens: int = 256,
    temperature: float = 1.0,
    pixel_values: Tensor | None = None,
) -> Tensor:
    """Next-token log-probs of a Hugging Face causal LM aligned with ``input_ids``: (B, T) -> (B, T).

    A vision-language model (LLaVA-style) also takes ``pixel_values``: the images of the rows, in
    row order, one per image placeholder run (``k15ray.batch.row_pixel_values``).

    ``out[:, t] = log softmax(z_t / T)[input_ids[:, t]]`` for t >= 1, where z_t are the model's
    logits after ``input_ids[:, :t]`` and T = ``temperature`` > 0: the log-probs of the policy the
    rollout samples from (greedy rollouts, T = 0, pass 1.0). ``out[:, 0] = 0``; multiply by a
    response mask (``sequence_logprobs``) to get log pi(y | x). Left or right padding both work as
    long as ``attention_mask`` marks the real tokens (positions are derived from it).

    When the model's output layer is a plain ``nn.Linear`` (Llama, Qwen2, ...), the hidden states go
    through ``hidden_token_logprobs`` so the (B, T, V) logits never exist; otherwise, and for
    models that change the logits after that layer (``LOGIT_TRANSFORM_ATTRS``: Gemma's soft cap,
    Cohere's and Granite's scales, ...), the model's own logits go through ``token_logprobs``.
    Dropout is the caller's business: call it on a model in ``eval()`` mode, or with dropout off.
    """
    _check_temperature(temperature)
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, T)
    targets = input_ids[:, 1:]  # (B, T-1): token t+1 is predicted at position t
    head: Any = getattr(model, "get_output_embeddings", lambda: None)()
    base: Any = getattr(model, "base_model", None)
    fast = isinstance(head, torch.nn.Linear) and base is not None and base is not model
    if fast and not _logits_transformed_after_head(model):
        vision = {} if pixel_values is None else {"pixel_values": pixel_values}
        hidden = base(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **vision
        ).last_hidden_state  # (B, T, H)
        logp = hidden_token_logprobs(
            hidden[:, :-1], head.weight, targets, head.bias, chunk_tokens, temperature
        )
    else:
        vision = {} if pixel_values is None else {"pixel_values": pixel_values}
        logits = model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **vision
        ).logits  # (B, T, V)
        logp = token_logprobs(logits[:, :-1], targets, temperature=temperature)
    return torch.nn.functional.pad(logp, (1, 0), value=0.0)  # (B, T), position 0 = 0
