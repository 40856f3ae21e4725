"""Environment ids: the built-in ``k15/`` envs, users' own envs, and Ray Tune env names.

``import k15ray.envs`` registers the built-in ids with Gymnasium. A user's reasoning task becomes
trainable by id in one call::

    import k15ray.envs
    k15ray.envs.register("myorg/Proofs-v0", "mypkg.envs:ProofEnv", max_turns=2)
    k15ray.envs.make_env("myorg/Proofs-v0")          # what K15 does with config env="myorg/Proofs-v0"

A registration lives in the process that made it. A Ray Tune trial or ``k15ray train`` makes its
env in a process of its own, so it is told what registers the id there (``ensure_registered``):
an entry point (``"module:Class"``, or ``"path/to/file.py:Class"`` for a module that is not
installed) and/or modules (or ``.py`` files) to import, which register their ids on import.
``K15Config.k15_environment(entry_point=..., imports=[...])`` and the YAML ``env:`` section
(``entry_point``, ``imports``) carry them; ``register(..., tune=True)`` gives Tune a creator that
registers the id wherever it runs.

Envs registered with Ray Tune (``ray.tune.registry.register_env(name, creator)``) resolve by
name through ``make_env`` too, so either registry works for training.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import gymnasium as gym

BUILTIN_ENVS: dict[str, str] = {
    "k15/Math-v0": "k15ray.envs.math_env:MathEnv",
    "k15/Code-v0": "k15ray.envs.code_env:CodeEnv",
    "k15/Vision-v0": "k15ray.envs.vision:VisionEnv",
}
"""The paper's three task families (section 2.1) and their entry points (imported lazily)."""

EntryPoint = str | Callable[..., gym.Env[Any, Any]]

_registered: dict[str, EntryPoint] = {}
"""Ids registered through ``register`` -> the entry point as given (a file path made absolute)."""


def register(
    env_id: str,
    entry_point: EntryPoint,
    *,
    force: bool = False,
    tune: bool = False,
    **kwargs: Any,
) -> None:
    """Register ``entry_point`` (``"module:Class"``, ``"path/to/file.py:Class"`` or a callable
    returning a ``gym.Env``) as ``env_id`` with default constructor ``kwargs``, in this process.

    Registering the same id again with the same entry point is a no-op; with another entry point
    it needs ``force=True``. ``tune=True`` also registers the id as a Ray Tune env name whose
    creator registers the id in the process it runs in (a Tune trial is another process).
    """
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env_id={env_id!r}: give a Gymnasium id such as 'myorg/Task-v0'")
    gym.envs.registration.parse_env_id(env_id)  # raises gym.error.Error on a malformed id
    check_entry_point(entry_point)
    given = entry_point
    if isinstance(entry_point, str) and _file_of(entry_point) is not None:
        given = absolute_env_source(entry_point)
        entry_point = _resolve_file_entry_point(given)  # gym.make imports modules by name only
    if env_id in gym.registry:
        existing = gym.registry[env_id]
        if existing.entry_point == entry_point and dict(existing.kwargs) == kwargs:
            _registered[env_id] = given
            if tune:
                register_tune_env(env_id)
            return
        if not force:
            raise ValueError(
                f"{env_id!r} is already registered to {existing.entry_point!r}; "
                "choose another id or pass force=True to replace it"
            )
        del gym.registry[env_id]
    gym.register(id=env_id, entry_point=entry_point, kwargs=dict(kwargs))
    _registered[env_id] = given
    if tune:
        register_tune_env(env_id)


def check_entry_point(entry_point: Any) -> None:
    """``ValueError`` unless ``entry_point`` is ``"module:Class"``, ``"file.py:Class"`` or a callable."""
    if isinstance(entry_point, str):
        module, _, attr = entry_point.rpartition(":")
        if not module or not attr:
            raise ValueError(
                f"entry_point={entry_point!r}: use 'package.module:ClassName' (or "
                "'path/to/file.py:ClassName') or pass the class itself"
            )
    elif not callable(entry_point):
        raise ValueError(f"entry_point={entry_point!r}: must be 'module:Class' or a callable")


def absolute_env_source(source: str) -> str:
    """``source`` (a module name, a ``.py`` file, or an entry point naming either) with a relative
    file path made absolute, so that a Tune trial (whose working directory is its trial dir) finds it."""
    module, sep, attr = source.rpartition(":") if ":" in source else (source, "", "")
    if module.endswith(".py"):
        module = os.path.abspath(os.path.expanduser(module))
    return f"{module}{sep}{attr}"


def import_env_modules(imports: Iterable[str]) -> list[ModuleType]:
    """Import each module name (``"mypkg.envs"``) or ``.py`` file of ``imports`` in this process,
    once; importing it registers the env ids it defines."""
    modules = []
    for source in imports:
        if not isinstance(source, str) or not source:
            raise ValueError(f"env import {source!r}: give a module name ('mypkg.envs') or a .py file path")
        if source.endswith(".py"):
            modules.append(_import_file(source))
            continue
        try:
            modules.append(importlib.import_module(source))
        except ModuleNotFoundError as err:
            if not err.name or not (source == err.name or source.startswith(f"{err.name}.")):
                raise  # the module exists; something it imports is missing
            raise ValueError(
                f"env import {source!r}: {err}. Install its package (pip install -e .), add its folder "
                "to PYTHONPATH, or give the path of its .py file instead"
            ) from None
    return modules


def ensure_registered(
    env_id: Any, *, entry_point: str | None = None, imports: Iterable[str] = ()
) -> None:
    """Make ``env_id`` resolvable in this process: import ``imports``, then, if the id is still
    unknown here, register it with ``entry_point``. Every process that builds the env calls this
    (the driver, each Tune trial, ``k15ray train``); where the id is known already it changes nothing."""
    import_env_modules(imports)
    if entry_point is None or not isinstance(env_id, str) or is_known(env_id):
        return
    register(env_id, entry_point)


def is_known(env_id: str) -> bool:
    """Whether ``env_id`` is a Gymnasium id or a Ray Tune env name in this process."""
    return env_id in gym.registry or _tune_creator(env_id) is not None


def registered_ids() -> list[str]:
    """The built-in ids and every id registered through ``register``, sorted."""
    return sorted(set(BUILTIN_ENVS) | set(_registered))


def register_builtin_envs() -> None:
    """Register ``k15/Math-v0``, ``k15/Code-v0`` and ``k15/Vision-v0`` (idempotent)."""
    for env_id, entry_point in BUILTIN_ENVS.items():
        register(env_id, entry_point)


@dataclass(frozen=True)
class GymEnvCreator:
    """A Ray Tune env creator for a Gymnasium id that carries the id's registration, so that a
    Tune trial or a Ray worker (another process, another Gymnasium registry) can make the env."""

    env_id: str
    entry_point: EntryPoint
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self, env_config: Mapping[str, Any]) -> gym.Env[Any, Any]:
        if self.env_id not in gym.registry:
            register(self.env_id, self.entry_point, **self.kwargs)
        return gym.make(self.env_id, **dict(env_config))


def register_tune_env(env_id: str, name: str | None = None) -> None:
    """Make Gymnasium id ``env_id`` (registered in this process) available to Ray Tune / RLlib as
    ``name`` (default: the id), in every process of the Ray cluster."""
    from ray.tune.registry import register_env

    if env_id not in gym.registry:
        raise ValueError(f"{env_id!r} is not a Gymnasium id here; register it first with k15ray.envs.register")
    spec = gym.registry[env_id]
    # The entry point as given: a "file.py:Class" string re-imports the file in the trial, where a
    # class loaded from that file could not be unpickled by its module name.
    entry_point = _registered.get(env_id, spec.entry_point)
    assert entry_point is not None, "every id registered through gym.register has an entry point"
    register_env(name or env_id, GymEnvCreator(env_id, entry_point, dict(spec.kwargs)))


def _tune_creator(name: str) -> Callable[[Any], Any] | None:
    try:
        from ray.tune.registry import ENV_CREATOR, _global_registry
    except ImportError:
        return None
    if not _global_registry.contains(ENV_CREATOR, name):
        return None
    creator: Callable[[Any], Any] = _global_registry.get(ENV_CREATOR, name)
    return creator


def make_env(
    env_id: str,
    env_config: Mapping[str, Any] | None = None,
    *,
    entry_point: str | None = None,
    imports: Iterable[str] = (),
) -> gym.Env[Any, Any]:
    """Create the env named ``env_id``: a Gymnasium id (``gym.make(env_id, **env_config)``) or a
    Ray Tune env name (``creator(EnvContext(env_config))``), after ``ensure_registered(env_id,
    entry_point=, imports=)``. Use ``env.unwrapped`` for the ``TextEnv`` (``.prompts``, ``.score``)."""
    ensure_registered(env_id, entry_point=entry_point, imports=imports)
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
    raise ValueError(unknown_env_message(env_id))


def unknown_env_message(env_id: str) -> str:
    """Why ``env_id`` is unknown in this process and the ways to make it known."""
    return (
        f"env id {env_id!r} is not registered in this process (pid {os.getpid()}); registered here: "
        f"{registered_ids()}. "
        "k15ray.envs.register(id, ...) registers an id only in the process that calls it, and a Ray "
        "Tune trial or `k15ray train` makes the env in a process of its own. Name what registers it: "
        "YAML `env: {id: ..., entry_point: 'mypkg.envs:MyEnv'}` or `env: {imports: ['mypkg.envs']}` "
        "(a module or .py file that registers the id on import); in Python "
        "K15Config().k15_environment(entry_point=... or imports=[...]), or "
        "k15ray.envs.register(id, ..., tune=True) before the Tuner starts"
    )


# ---------------------------------------------------------------------- modules given as files
def _file_of(entry_point: str) -> str | None:
    module = entry_point.rpartition(":")[0]
    return module if module.endswith(".py") else None


def _resolve_file_entry_point(entry_point: str) -> Callable[..., gym.Env[Any, Any]]:
    path, _, attr = entry_point.rpartition(":")
    module = _import_file(path)
    try:
        target: Callable[..., gym.Env[Any, Any]] = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"entry_point={entry_point!r}: {path} defines no {attr!r}") from None
    return target


def _import_file(path: str) -> ModuleType:
    """Import ``path`` as the module named after its file (``my_envs.py`` -> ``my_envs``), once."""
    full = os.path.realpath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise ValueError(f"env module file {path!r} does not exist (from {os.getcwd()}); fix the path")
    name = os.path.splitext(os.path.basename(full))[0]
    loaded = sys.modules.get(name)
    if loaded is not None:
        if os.path.realpath(getattr(loaded, "__file__", "") or "") == full:
            return loaded
        raise ValueError(
            f"env module file {path!r}: a module named {name!r} is already imported from "
            f"{getattr(loaded, '__file__', None)}; rename the file"
        )
    spec = importlib.util.spec_from_file_location(name, full)
    assert spec is not None and spec.loader is not None, "a .py file always has a source loader"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # classes defined in it pickle by reference to this name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
