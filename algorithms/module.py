"""The policy pi_theta as an RLlib ``TorchRLModule``: a Hugging Face causal LM loaded through ``Auto*``.

RLlib's ``TorchLearner`` optimises an ``RLModule``; this thin wrapper holds the causal LM
(``self.policy``; a vision-language directory loads through ``AutoModelForImageTextToText`` and
reads the batch's ``pixel_values``) and turns a padded batch of prompt + response token ids into per-token
log-probabilities log pi_theta(y_t | x, y_<t) (``k15ray.logprobs.policy_token_logprobs``).
The module never samples: rollouts run in ``k15ray.rollout`` actors, so the inference and
exploration forwards are the same no-grad log-prob computation.

``model_config`` keys: ``model_dir`` (a Hugging Face model directory), ``dtype``
(``float32``/``bfloat16``), ``temperature`` (T of log softmax(z / T): the rollout's sampling
temperature, so that the learner scores exactly the policy that sampled; ``K15Settings.logprob_temperature``).

Dropout is off in every forward, training ones included: the reference log-probs of pi_theta_i and
the loss's log-probs must be the same function of the weights (at the first step of an iteration
their log-ratio is exactly 0).
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.rl_module.torch import TorchRLModule

from k15ray.batch import ATTENTION_MASK, INPUT_IDS, TOKEN_LOGP


class K15PolicyModule(TorchRLModule):
    """pi_theta: a causal LM from ``model_config["model_dir"]`` returning token log-probs."""

    def setup(self) -> None:
        from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

        from k15ray.models.vision_language import is_vision_model_dir

        cfg: dict[str, Any] = dict(self.model_config or {})  # type: ignore[arg-type]
        if not cfg.get("model_dir"):
            raise ValueError(
                "K15PolicyModule needs model_config['model_dir']: call "
                "K15Config().policy(model_dir=...) with a Hugging Face model directory"
            )
        dtype = getattr(torch, cfg.get("dtype", "float32"))
        self.temperature = float(cfg.get("temperature", 1.0))
        # a LLaVA-style directory: the policy sees images
        auto = AutoModelForImageTextToText if is_vision_model_dir(cfg["model_dir"]) else AutoModelForCausalLM
        self.policy = auto.from_pretrained(cfg["model_dir"], dtype=dtype)
        self.policy.config.use_cache = False
        self.policy.eval()  # no dropout (module docstring)

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        with torch.no_grad():
            return self._forward_train(batch)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        from k15ray.batch import row_pixel_values
        from k15ray.logprobs import policy_token_logprobs

        self.policy.eval()  # RLlib puts modules in train mode before an update: dropout stays off
        # (B, T): log softmax(z_t / T)[input_ids[t]]; the learner masks it with LOSS_MASK
        pixels = row_pixel_values(batch)  # None without images
        if pixels is not None:
            pixels = torch.as_tensor(pixels).to(self.policy.dtype)
        token_logp = policy_token_logprobs(
            self.policy, batch[INPUT_IDS], batch[ATTENTION_MASK], temperature=self.temperature, pixel_values=pixels
        )
        return {TOKEN_LOGP: token_logp}
