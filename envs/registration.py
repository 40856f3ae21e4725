"""Environment ids: the built-in ``k15/`` envs, users' own envs, and Ray Tune env names.

``import k15ray.envs`` registers the built-in ids with Gymnasium. A user's reasoning task becomes
trainable by id in one call::

    import k15ray.envs
    k15ray.envs.register("myorg/Proofs-v0", "mypkg.envs:ProofEnv", max_turns=2)
    k15ray.envs.make_env("myorg/Proofs-v0")          # what K15 does with config env="myorg/Proofs-v0"

Envs registered with Ray Tune (``ray.tune.registry.register_env(name, creator)``) resolve by
name through ``make_env`` too, so either registry works for training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym

BUILTIN_ENVS: dict[str, str] = {
    "k15/Math-v0": "k15ray.envs.math_env:MathEnv",
    "k15/Code-v0": "k15ray.envs.code_env:CodeEnv",
    "k15/Vision-v0": "k15ray.envs.vision:VisionEnv",
}
"""The paper's three task families (section 2.1) and their entry points (imported lazily)."""

_registered: dict[str, str | Callable[..., gym.Env[Any, Any]]] = {}


def register(
    env_id: str,
    entry_point: str | Callable[..., gym.Env[Any, Any]],
    *,
    force: bool = False,
    tune: bool = False,
    **kwargs: Any,
) -> None:
    """Register ``entry_point`` (``"module:Class"`` or a callable returning a ``gym.Env``) as
    ``env_id`` with default constructor ``kwargs``.

    Registering the same id again with the same entry point is a no-op; with another entry point
    it needs ``force=True``. ``tune=True`` also registers the id as a Ray Tune env name.
    """
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env_id={env_id!r}: give a Gymnasium id such as 'myorg/Task-v0'")
    gym.envs.registration.parse_env_id(env_id)  # raises gym.error.Error on a malformed id
    if isinstance(entry_point, str):
        if ":" not in entry_point:
            raise ValueError(
                f"entry_point={entry_point!r}: use 'package.module:ClassName' or pass the class itself"
            )
    elif not callable(entry_point):
        raise ValueError(f"entry_point={entry_point!r}: must be 'module:Class' or a callable")
    if env_id in gym.registry:
        existing = gym.registry[env_id]
        if existing.entry_point == entry_point and dict(existing.kwargs) == kwargs:
            _registered[env_id] = entry_point
            return
        if not force:
            raise ValueError(
                f"{env_id!r} is already registered to {existing.entry_point!r}; "
                "choose another id or pass force=True to replace it"
            )
        del gym.registry[env_id]
    gym.register(id=env_id, entry_point=entry_point, kwargs=dict(kwargs))
    _registered[env_id] = entry_point
    if tune:
        register_tune_env(env_id)


def register_builtin_envs() -> None:
    """Register ``k15/Math-v0``, ``k15/Code-v0`` and ``k15/Vision-v0`` (idempotent)."""
    for env_id, entry_point in BUILTIN_ENVS.items():
        register(env_id, entry_point)


def registered_ids() -> list[str]:
    """The built-in ids and every id registered through ``register``, sorted."""
    return sorted(set(BUILTIN_ENVS) | set(_registered))


def register_tune_env(env_id: str, name: str | None = None) -> None:
    """Make Gymnasium id ``env_id`` available to Ray Tune / RLlib as ``name`` (default: the id)."""
    from ray.tune.registry import register_env

    register_env(name or env_id, lambda env_config: gym.make(env_id, **dict(env_config)))


def _tune_creator(name: str) -> Callable[[Any], Any] | None:
    try:
        from ray.tune.registry import ENV_CREATOR, _global_registry
    except ImportError:
        return None
    if not _global_registry.contains(ENV_CREATOR, name):
        return None
    creator: Callable[[Any], Any] = _global_registry.get(ENV_CREATOR, name)
    return creator


def make_env(env_id: str, env_config: Mapping[str, Any] | None = None) -> gym.Env[Any, Any]:
    """Create the env named ``env_id``: a Gymnasium id (``gym.make(env_id, **env_config)``) or a
    Ray Tune env name (``creator(EnvContext(env_config))``). Use ``env.unwrapped`` for the
    ``TextEnv`` (``.prompts``, ``.score``)."""
    config = dict(env_config or {})
    if env_id in gym.registry:
        return gym.make(env_id, **config)
    creator = _tune_creator(env_id)
    if creator is not None:
        from ray.rllib.env.env_context import EnvContext

        env = creator(EnvContext(config, worker_index=0))
        if not isinstance(env, gym.Env):
            raise ValueError(f"the Ray Tune env creator {env_id!r} returned {type(env).__name__}, not a gym.Env")
        return env
    raise ValueError(
        f"unknown env id {env_id!r}; registered: {registered_ids()}. Register yours with "
        "k15ray.envs.register(id, 'module:Class') or ray.tune.registry.register_env(name, creator)"
    )
