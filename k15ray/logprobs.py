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
* ``policy_token_logprobs(model, input_ids, attention_mask)``: runs a Hugging Face causal LM and
  returns, at position t, log p(input_ids[t] | input_ids[:t]) (position 0 holds 0).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

DEFAULT_CHUNK_ROWS = 1024
"""Rows (positions) of the (rows, V) logits processed at once: bounds the temporary memory."""


class _GatherLogSoftmax(torch.autograd.Function):
    """log softmax(logits)[token] for each row of a (N, V) logits matrix, chunked over rows."""

    @staticmethod
    def forward(ctx: Any, logits: Tensor, token_ids: Tensor, chunk_rows: int) -> Tensor:
        # logits (N, V), token_ids (N,)
        n = logits.shape[0]
        low_precision = logits.dtype in (torch.float16, torch.bfloat16)
        acc = torch.float32 if low_precision else logits.dtype  # accumulate in >= fp32
        out = torch.empty(n, dtype=acc, device=logits.device)  # (N,)
        lse = torch.empty(n, dtype=acc, device=logits.device)  # (N,)
        for s in range(0, n, chunk_rows):
            chunk = logits[s : s + chunk_rows]  # (c, V)
            chunk_lse = torch.logsumexp(chunk.to(lse.dtype), dim=-1)  # (c,)
            picked = chunk.gather(-1, token_ids[s : s + chunk_rows, None]).squeeze(-1)  # (c,)
            out[s : s + chunk_rows] = picked.to(lse.dtype) - chunk_lse
            lse[s : s + chunk_rows] = chunk_lse
        ctx.save_for_backward(logits, token_ids, lse)
        ctx.chunk_rows = chunk_rows
        return out

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor | None, None, None]:
        (grad_out,) = grads  # (N,)
        logits, token_ids, lse = ctx.saved_tensors
        grad_logits = torch.empty_like(logits)  # (N, V): unavoidable, it is the result
        rows = ctx.chunk_rows
        for s in range(0, logits.shape[0], rows):
            g = grad_out[s : s + rows].to(lse.dtype)  # (c,)
            # d/dlogits [logits[y] - lse] = onehot(y) - softmax(logits), times the incoming grad
            if logits.dtype == lse.dtype:  # write straight into the result, no temporary
                grad = torch.sub(logits[s : s + rows], lse[s : s + rows, None], out=grad_logits[s : s + rows])
            else:
                grad = logits[s : s + rows].to(lse.dtype) - lse[s : s + rows, None]  # (c, V)
            grad.exp_().mul_(-g[:, None])
            grad.scatter_add_(-1, token_ids[s : s + rows, None], g[:, None])
            if grad.data_ptr() != grad_logits[s : s + rows].data_ptr():
                grad_logits[s : s + rows] = grad
        return grad_logits, None, None


def token_logprobs(logits: Tensor, token_ids: Tensor, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Tensor:
    """log softmax(logits)[..., token_ids] without a (B, T, V) log-softmax: (B, T, V), (B, T) -> (B, T)."""
    if logits.shape[:-1] != token_ids.shape:
        raise ValueError(
            f"token_ids shape {tuple(token_ids.shape)} must equal logits shape without V, "
            f"{tuple(logits.shape[:-1])}"
        )
    flat = logits.reshape(-1, logits.shape[-1])  # (B*T, V)
    out = _GatherLogSoftmax.apply(flat, token_ids.reshape(-1).long(), chunk_rows)
    return out.reshape(token_ids.shape)  # (B, T)


def naive_token_logprobs(logits: Tensor, token_ids: Tensor) -> Tensor:
    """The reference path: full log_softmax, then gather. (B, T, V), (B, T) -> (B, T)."""
    logp = torch.log_softmax(logits.float() if logits.dtype != torch.float64 else logits, dim=-1)
    return logp.gather(-1, token_ids.long().unsqueeze(-1)).squeeze(-1)


class _HiddenGatherLogSoftmax(torch.autograd.Function):
    """log softmax(hidden @ weight.T + bias)[token] for (N, H) rows, chunked over rows.

    Forward keeps only the inputs and a (N,) logsumexp; backward recomputes each chunk's logits
    (one (c, V) buffer, reused in place for the softmax and the logits' gradient) and accumulates
    the gradients of hidden, weight and bias chunk by chunk.
    """

    @staticmethod
    def forward(
        ctx: Any, hidden: Tensor, weight: Tensor, bias: Tensor | None, token_ids: Tensor, chunk_rows: int
    ) -> Tensor:
        # hidden (N, H), weight (V, H), bias (V,) or None, token_ids (N,)
        n = hidden.shape[0]
        acc = torch.float32 if hidden.dtype in (torch.float16, torch.bfloat16) else hidden.dtype
        out = torch.empty(n, dtype=acc, device=hidden.device)  # (N,)
        lse = torch.empty(n, dtype=acc, device=hidden.device)  # (N,)
        for s in range(0, n, chunk_rows):
            logits = torch.nn.functional.linear(hidden[s : s + chunk_rows], weight, bias).to(acc)  # (c, V)
            torch.logsumexp(logits, dim=-1, out=lse[s : s + chunk_rows])
            picked = logits.gather(-1, token_ids[s : s + chunk_rows, None]).squeeze(-1)  # (c,)
            out[s : s + chunk_rows] = picked - lse[s : s + chunk_rows]
        ctx.save_for_backward(hidden, weight, bias, token_ids, lse)
        ctx.chunk_rows = chunk_rows
        return out

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor | None, ...]:
        (grad_out,) = grads  # (N,)
        hidden, weight, bias, token_ids, lse = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros_like(weight) if need_w else None
        grad_b = torch.zeros_like(bias) if need_b and bias is not None else None
        rows = ctx.chunk_rows
        for s in range(0, hidden.shape[0], rows):
            h = hidden[s : s + rows]  # (c, H)
            g = grad_out[s : s + rows].to(lse.dtype)  # (c,)
            logits = torch.nn.functional.linear(h, weight, bias).to(lse.dtype)  # (c, V), recomputed
            # d/dlogits [logits[y] - lse] = onehot(y) - softmax(logits), times the incoming grad
            grad_logits = logits.sub_(lse[s : s + rows, None]).exp_().mul_(-g[:, None])
            grad_logits.scatter_add_(-1, token_ids[s : s + rows, None], g[:, None])
            grad_logits = grad_logits.to(hidden.dtype)
            if grad_h is not None:
                grad_h[s : s + rows] = grad_logits @ weight  # (c, H)
            if grad_w is not None:
                grad_w.addmm_(grad_logits.T, h)  # (V, H)
            if grad_b is not None:
                grad_b += grad_logits.sum(0)
        return grad_h, grad_w, grad_b, None, None


def hidden_token_logprobs(
    hidden: Tensor,
    weight: Tensor,
    token_ids: Tensor,
    bias: Tensor | None = None,
    chunk_tokens: int = 256,
) -> Tensor:
    """log softmax(hidden @ weight.T + bias)[token_ids]: (B, T, H), (V, H), (B, T) -> (B, T).

    Chunked over rows (``chunk_tokens`` positions of the flattened batch at a time) with the
    logits recomputed in backward, so peak memory holds one (chunk, V) block of logits, never the
    whole (B, T, V).
    """
    if hidden.shape[:-1] != token_ids.shape:
        raise ValueError(
            f"token_ids shape {tuple(token_ids.shape)} must equal hidden shape without H, "
            f"{tuple(hidden.shape[:-1])}"
        )
    flat = hidden.reshape(-1, hidden.shape[-1])  # (B*T, H)
    out = _HiddenGatherLogSoftmax.apply(flat, weight, bias, token_ids.reshape(-1).long(), chunk_tokens)
    return out.reshape(token_ids.shape)  # (B, T)


def sequence_logprobs(token_logp: Tensor, loss_mask: Tensor) -> Tensor:
    """log pi(y | x) = sum_t mask_t * log pi(y_t | x, y_<t): (B, T), (B, T) -> (B,)."""
    if token_logp.shape != loss_mask.shape:
        raise ValueError(
            f"loss_mask shape {tuple(loss_mask.shape)} must equal token_logp shape {tuple(token_logp.shape)}"
        )
    return (token_logp * loss_mask.to(token_logp.dtype)).sum(dim=-1)


def policy_token_logprobs(
    model: torch.nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    chunk_tokens: int = 256,
) -> Tensor:
    """Next-token log-probs of a Hugging Face causal LM aligned with ``input_ids``: (B, T) -> (B, T).

    ``out[:, t] = log p(input_ids[:, t] | input_ids[:, :t])`` for t >= 1 and ``out[:, 0] = 0``;
    multiply by a response mask (``sequence_logprobs``) to get log pi(y | x). Left or right padding
    both work as long as ``attention_mask`` marks the real tokens (positions are derived from it).
    When the model's output layer is a plain ``nn.Linear`` (Llama, Qwen2, ...), the hidden states go
    through ``hidden_token_logprobs`` so the (B, T, V) logits never exist; otherwise the model's
    logits go through ``token_logprobs``.
    """
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, T)
    targets = input_ids[:, 1:]  # (B, T-1): token t+1 is predicted at position t
    head: Any = getattr(model, "get_output_embeddings", lambda: None)()
    softcap = getattr(getattr(model, "config", None), "final_logit_softcapping", None)
    base: Any = getattr(model, "base_model", None)
    if isinstance(head, torch.nn.Linear) and softcap is None and base is not None and base is not model:
        hidden = base(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
        ).last_hidden_state  # (B, T, H)
        logp = hidden_token_logprobs(hidden[:, :-1], head.weight, targets, head.bias, chunk_tokens)
    else:
        logits = model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
        ).logits  # (B, T, V)
        logp = token_logprobs(logits[:, :-1], targets)
    return torch.nn.functional.pad(logp, (1, 0), value=0.0)  # (B, T), position 0 = 0
