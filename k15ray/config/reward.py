"""Configuration of the training reward r(x, y, y*): the verifier or a model reward model (2.3.5)."""

from __future__ import annotations

from dataclasses import dataclass

from k15ray.config import doc, section

REWARD_KINDS: tuple[str, ...] = ("verifier", "value_rm", "cot_rm")
REWARD_BACKENDS: tuple[str, ...] = ("local", "serve")


@section("reward")
@dataclass(frozen=True)
class RewardConfig:
    """Which reward scores the finished trajectories, and where it runs.

    * ``kind: verifier`` (default): the env's rule-based reward (``verify_math``, the code sandbox);
      with ``backend: serve`` the same rewards through the running Serve rewards application.
    * ``kind: value_rm`` / ``cot_rm``: a model reward model (``k15ray train-rm`` makes both) scores
      the prompts of ``domains``; other prompts keep the env's reward. ``backend: local`` loads
      ``model_dir`` in the training driver; ``backend: serve`` calls the deployment of the running
      rewards application (``k15ray serve --reward-model cot_rm=DIR``), batched.

    With a model reward the verifier still runs beside it, for the metrics only:
    ``reward/verifier_accuracy`` and ``reward/fooling_rate`` (the RM says correct, the verifier wrong).
    """

    kind: str = doc("verifier, value_rm (value-head RM) or cot_rm (chain-of-thought judge)", "verifier")
    backend: str = doc("local (in the driver) or serve (the running Ray Serve rewards application)", "local")
    model_dir: str = doc("the RM's directory (kind value_rm or cot_rm with backend local)", "")
    app: str = doc("name of the Serve rewards application (backend serve)", "rewards")
    domains: tuple[str, ...] = doc("prompt domains a model RM scores; the env's reward scores the rest", ("math",))
    device: str = doc("torch device of a local RM: cpu or cuda", "cpu")
    max_new_tokens: int = doc("the judge's token budget per verdict (cot_rm, backend local)", 128)
    timeout_s: float = doc("longest wait for one served call, seconds (backend serve)", 300.0)

    def __post_init__(self) -> None:
        if self.kind not in REWARD_KINDS:
            raise ValueError(f"kind: {self.kind!r} is not one of {list(REWARD_KINDS)}")
        if self.backend not in REWARD_BACKENDS:
            raise ValueError(f"backend: {self.backend!r} is not one of {list(REWARD_BACKENDS)}")
        if self.kind != "verifier" and self.backend == "local" and not self.model_dir:
            raise ValueError(
                f"model_dir: empty; kind {self.kind} with backend local loads the RM from a directory "
                "(k15ray train-rm writes runs/rm/value_rm and runs/rm/cot_rm/final), or use backend: serve"
            )
        if self.kind == "verifier" and self.model_dir:
            raise ValueError("model_dir: only read for kind value_rm or cot_rm; remove it or set kind")
        if isinstance(self.domains, str) or not self.domains:
            raise ValueError(f"domains: must be a non-empty list such as [math], got {self.domains!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: must be >= 1, got {self.max_new_tokens}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s: must be > 0, got {self.timeout_s}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device: must be cpu or cuda, got {self.device!r}")

    @property
    def uses_model(self) -> bool:
        """A model RM (not the verifier) gives the reward."""
        return self.kind != "verifier"
