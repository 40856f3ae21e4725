"""Which task environment to train on (paper section 2.1: math, code and vision prompt sets)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k15ray.config import doc


@dataclass(frozen=True)
class EnvConfig:
    """The task environment: an id registered with Gymnasium (``k15ray.envs.register``) or Ray
    Tune (``register_env``), its prompt set and its constructor arguments."""

    env_id: str = doc("Gymnasium id or Ray Tune env name of the task env, e.g. k15/Math-v0", "k15/Math-v0")
    data_path: str | None = doc("JSONL or Parquet prompt set; None = the env's built-in prompts", None)
    env_kwargs: dict[str, Any] = doc(
        "extra constructor arguments, e.g. {max_turns: 2, timeout_s: 5.0}", default_factory=dict
    )

    def __post_init__(self) -> None:
        if not isinstance(self.env_id, str) or not self.env_id.strip():
            raise ValueError("env.env_id: is empty; give an env id such as 'k15/Math-v0'")
        if self.data_path is not None and not Path(self.data_path).is_file():
            raise ValueError(
                f"env.data_path={self.data_path!r}: no such file; give a .jsonl or .parquet prompt "
                "set, or null for the env's built-in prompts"
            )
        if not isinstance(self.env_kwargs, dict):
            raise ValueError(f"env.env_kwargs: expected a mapping, got {type(self.env_kwargs).__name__}")
        if "data_path" in self.env_kwargs:
            raise ValueError("env.env_kwargs.data_path: set env.data_path instead")

    def make_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for ``k15ray.envs.make_env(env_id, ...)``."""
        kwargs = dict(self.env_kwargs)
        if self.data_path is not None:
            kwargs["data_path"] = self.data_path
        return kwargs

    def make(self) -> Any:
        """Create the env (``k15ray.envs.make_env``); ``.unwrapped`` is the ``TextEnv``."""
        from k15ray.envs import make_env

        return make_env(self.env_id, self.make_kwargs())
