"""Drawing tokens and scoring them: the sampling rule both rollout backends and the Serve policy
share (``k15ray.rollout.hf``, ``k15ray.rollout.vllm``, ``serve/vllm_async.py``).

* ``request_seed``: each request's own random stream, so a rerun repeats whatever batch or worker
  it lands in;
* ``sample_tokens``: greedy at temperature 0, else softmax(logits / T) within the top-p nucleus;
* ``sampled_logprobs``: log pi(token | context) at the sampling temperature (paper 2.3.2).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence

import torch


def request_seed(seed: int, request_id: str) -> int:
    """The seed of one request's own random stream: the k samples of a prompt (distinct ids) differ,
    yet a rerun of the same request repeats, whatever batch or worker it lands in."""
    return (seed * 1_000_003 + zlib.crc32(request_id.encode())) % (2**31 - 1)


def sample_tokens(
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    streams: Sequence[random.Random] | None = None,
) -> torch.Tensor:
    """Sample one token per row from ``logits`` (B, V): greedy when ``temperature == 0``, else from
    softmax(logits / temperature) restricted to the smallest set of tokens whose probability mass
    reaches ``top_p`` (nucleus sampling). ``streams`` (one ``random.Random`` per row) make each
    row's draw depend on its own stream only; None draws from torch's global RNG. Returns token ids (B,)."""
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # (B, V)
    if top_p < 1:
        sorted_p, order = probs.sort(dim=-1, descending=True)  # (B, V)
        mass_before = sorted_p.cumsum(dim=-1) - sorted_p  # mass of strictly more likely tokens
        sorted_p = sorted_p.masked_fill(mass_before >= top_p, 0.0)  # the top token always stays
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    if streams is None:
        return torch.multinomial(probs, num_samples=1).squeeze(-1)
    # inverse CDF with one uniform u in (0, 1] per row: the first token whose CDF reaches u * mass
    # a Python RNG per row: no tensor op (GPU kernel launch) per row, one transfer per step
    u = torch.tensor([1.0 - s.random() for s in streams], device=probs.device)  # (B,)
    cdf = probs.cumsum(dim=-1)  # (B, V)
    tokens = (cdf < u.unsqueeze(-1) * cdf[:, -1:]).sum(dim=-1)  # (B,)
    return tokens.clamp(max=probs.shape[-1] - 1)


def sampled_logprobs(
    logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """log pi(token | context) at temperature T > 0: ``log_softmax(logits / T)[token]`` per row, (B,)."""
    if not temperature > 0:
        raise ValueError(
            f"temperature must be > 0, got {temperature}; greedy rollouts (temperature 0) report "
            "log-probs at temperature 1: pass k15ray.logprobs.policy_temperature(temperature)"
        )
    logits = logits.float() / temperature  # (B, V)
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # (B,)
    return picked - logits.logsumexp(dim=-1)
