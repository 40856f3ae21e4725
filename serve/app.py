"""Build the k15ray Serve applications from a ``ServeConfig`` and run them.

Three applications share one HTTP proxy, told apart by route prefix (Serve routes by the longest
matching prefix):

=========  ===============  =====================================================================
name       route prefix     routes
=========  ===============  =====================================================================
policy     ``/``            ``/v1/models``, ``/v1/completions``, ``/v1/chat/completions``
rewards    ``/v1/rewards``  ``/v1/rewards/math``, ``/v1/rewards/code``, ``/value_rm``, ``/cot_rm``
sandbox    ``/v1/sandbox``  ``/v1/sandbox/run``
=========  ===============  =====================================================================

``run_local(config)`` starts them on this machine (what ``k15ray serve`` does). For ``serve run`` /
``serve deploy`` on a cluster, ``configs/serve.yaml`` names the builders below
(``k15ray.serve.app:policy_builder`` ...), each taking a ``ServeConfig`` mapping as ``args``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from k15ray.config import from_mapping, load_yaml, to_mapping
from k15ray.config.serve import REWARD_MODELS, ServeConfig

APP_ROUTES: dict[str, str] = {"policy": "/", "rewards": "/v1/rewards", "sandbox": "/v1/sandbox"}
"""Route prefix of each application."""


def policy_app(config: ServeConfig) -> Any:
    """The policy application (``Application``), from ``config.policy``."""
    from k15ray.serve.policy import PolicyDeployment

    p = config.policy
    if not p.model_dir:
        raise ValueError("policy.model_dir is empty; pass the checkpoint directory (--policy DIR)")
    return cast(Any, PolicyDeployment).options(
        num_replicas=p.num_replicas,
        ray_actor_options={"num_cpus": p.num_cpus, "num_gpus": p.num_gpus},
        max_ongoing_requests=max(64, 4 * p.max_batch_size),
    ).bind(p, config.max_body_bytes)


def rewards_app(config: ServeConfig) -> Any:
    """The rewards application: one deployment scoring every kind in ``config.rewards.kinds``,
    and one batched child deployment per model reward model in ``config.rewards.models``."""
    from k15ray.serve.reward_models import build_reward_model_app, reward_model_options
    from k15ray.serve.rewards import RewardsDeployment

    r = config.rewards
    served_models = r.models.served()
    if not r.kinds and not served_models:
        raise ValueError(
            "rewards.kinds is empty and no reward model is given; name at least one of math, code, "
            "or a reward model directory (--reward-model value_rm=DIR)"
        )
    models = {
        name: build_reward_model_app(name, reward_model_options(name, r.models)) for name in served_models
    }
    return cast(Any, RewardsDeployment).options(
        num_replicas=r.num_replicas,
        ray_actor_options={"num_cpus": r.num_cpus},
        max_ongoing_requests=r.max_ongoing_requests,
    ).bind(r, config.max_body_bytes, models)


def sandbox_app(config: ServeConfig) -> Any:
    """The sandbox application, from ``config.sandbox``."""
    from k15ray.serve.sandbox import SandboxDeployment

    s = config.sandbox
    return cast(Any, SandboxDeployment).options(
        num_replicas=s.num_replicas,
        ray_actor_options={"num_cpus": s.num_cpus},
        max_ongoing_requests=s.max_ongoing_requests,
    ).bind(s, config.max_body_bytes)


def build_apps(config: ServeConfig) -> dict[str, tuple[Any, str]]:
    """``name -> (Application, route prefix)`` of every application the config enables."""
    apps: dict[str, tuple[Any, str]] = {}
    if config.policy.model_dir:
        apps["policy"] = (policy_app(config), APP_ROUTES["policy"])
    if config.rewards.kinds or config.rewards.models.served():
        apps["rewards"] = (rewards_app(config), APP_ROUTES["rewards"])
    if config.sandbox.enabled:
        apps["sandbox"] = (sandbox_app(config), APP_ROUTES["sandbox"])
    if not apps:
        raise ValueError(
            "nothing to serve: give a policy directory, reward kinds, or enable the sandbox"
        )
    return apps


# ----------------------------------------------------------- builders for `serve run` / deploy


def _config(args: Mapping[str, Any] | None) -> ServeConfig:
    return from_mapping(ServeConfig, dict(args or {}))


def policy_builder(args: dict[str, Any]) -> Any:
    """``import_path`` target: ``args`` is a ``ServeConfig`` mapping (``policy``, ``max_body_bytes``)."""
    return policy_app(_config(args))


def rewards_builder(args: dict[str, Any]) -> Any:
    """``import_path`` target: ``args`` is a ``ServeConfig`` mapping (``rewards``, ...)."""
    return rewards_app(_config(args))


def sandbox_builder(args: dict[str, Any]) -> Any:
    """``import_path`` target: ``args`` is a ``ServeConfig`` mapping (``sandbox``, ...)."""
    return sandbox_app(_config(args))


# -------------------------------------------------------------------------------- run locally


def run_local(config: ServeConfig, *, ray_init_kwargs: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Start Serve on ``config.host:config.port`` with every enabled application; returns
    ``name -> base URL`` (under direct ingress, ``direct_ingress()``, each application's replica
    port). Starts Ray first unless it is running, keeping the caller's SIGINT and SIGTERM handlers
    (``ray.init`` would replace them). Stop with ``shutdown()``."""
    import ray
    from ray import serve

    apps = build_apps(config)  # validate before starting anything
    if not ray.is_initialized():
        with _signal_handlers_kept_through_ray_init():
            ray.init(**dict(ray_init_kwargs or {}))
    from ray.serve.api import RunTarget

    serve.start(http_options={"host": config.host, "port": config.port})
    # deploy every application at once: their replicas start in parallel
    serve.run_many([RunTarget(app, name=name, route_prefix=prefix) for name, (app, prefix) in apps.items()])
    ports = direct_ingress_ports(list(apps)) if direct_ingress() else {}
    return {
        name: f"http://{config.host}:{ports.get(name, config.port)}{prefix.rstrip('/')}"
        for name, (_, prefix) in apps.items()
    }


DIRECT_INGRESS_ENV = "RAY_SERVE_ENABLE_DIRECT_INGRESS"
"""Set to ``1`` before Ray starts (opt-in): each application's ingress replica answers HTTP itself, on
a port of its own from 30000 up, at the same paths, skipping Serve's proxy (which Ray 2.60 still
starts, on ``port``). docs/serve.md, "Benchmark serve_load", has the figures."""


def direct_ingress() -> bool:
    """Whether Serve's replicas answer HTTP themselves (``RAY_SERVE_ENABLE_DIRECT_INGRESS=1``)."""
    return os.environ.get(DIRECT_INGRESS_ENV) == "1"


def direct_ingress_ports(names: list[str], timeout_s: float = 60.0) -> dict[str, int]:
    """``name -> port`` on which each application's (first) ingress replica answers HTTP, under
    direct ingress; read from the Serve controller's target groups, as an external load balancer
    would. Until a replica has its port, the controller lists the HTTP proxy (still started) in its
    place: wait for the replica's."""
    import ray
    from ray.serve._private.common import REPLICA_ID_FULL_ID_STR_PREFIX, RequestProtocol
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    assert client is not None, "call after serve.start()"
    controller = client._controller
    deadline = time.monotonic() + timeout_s
    while True:
        groups = ray.get(controller.get_target_groups.remote())
        ports = {
            g.app_name: g.targets[0].port
            for g in groups
            if g.protocol == RequestProtocol.HTTP and g.app_name in names and g.targets
            and g.targets[0].name.startswith(REPLICA_ID_FULL_ID_STR_PREFIX)
        }
        if len(ports) == len(names):
            return ports
        if time.monotonic() > deadline:
            raise RuntimeError(f"direct ingress: no HTTP port for {sorted(set(names) - set(ports))} "
                               f"after {timeout_s} s; the controller lists {groups}")
        time.sleep(0.1)


def shutdown() -> None:
    """Stop every application and the HTTP proxy (``serve.shutdown()``)."""
    from ray import serve

    serve.shutdown()


def config_from_serve_yaml(path: str | Path) -> ServeConfig:
    """Read a Serve config file like ``configs/serve.yaml`` into one ``ServeConfig``: the
    ``http_options`` address, and each application's ``args`` (an application left out of the
    file is not served)."""
    data = load_yaml(path)
    apps = data.get("applications")
    if not isinstance(apps, list) or not apps:
        raise ValueError(f"{path}: `applications` must be a non-empty list of Serve applications")
    merged: dict[str, Any] = {}
    http = data.get("http_options") or {}
    for key in ("host", "port"):
        if key in http:
            merged[key] = http[key]
    builders = {f"k15ray.serve.app:{name}_builder": name for name in APP_ROUTES}
    served = set()
    for entry in apps:
        name = builders.get(str(entry.get("import_path", "")))
        if name is None:
            raise ValueError(
                f"{path}: import_path {entry.get('import_path')!r} is not a k15ray builder; "
                f"use one of {sorted(builders)}"
            )
        served.add(name)
        merged.update(entry.get("args") or {})
    merged.setdefault("policy", {})
    merged.setdefault("rewards", {})
    merged.setdefault("sandbox", {})
    if "policy" not in served:
        merged["policy"] = {**merged["policy"], "model_dir": ""}
    if "rewards" not in served:
        merged["rewards"] = {**merged["rewards"], "kinds": [], "models": {}}
    if "sandbox" not in served:
        merged["sandbox"] = {**merged["sandbox"], "enabled": False}
    return from_mapping(ServeConfig, merged, str(path))


def config_from_cli(
    *,
    policy: str | None = None,
    rewards: str | None = None,
    sandbox: bool | None = None,
    host: str | None = None,
    port: int | None = None,
    backend: str | None = None,
    config_path: str | None = None,
    reward_models: Mapping[str, str] | None = None,
) -> ServeConfig:
    """The ``ServeConfig`` of ``k15ray serve``: ``config_path`` (a Serve config file) or the
    defaults, overridden by every flag that was given (None = not given). ``rewards`` is a
    comma-separated list such as ``math,code`` (empty = no rewards application); ``reward_models``
    maps a model reward model's name (``value_rm``, ``cot_rm``) to its directory."""
    base = config_from_serve_yaml(config_path) if config_path else ServeConfig()
    data = to_mapping(base)
    if policy is not None:
        data["policy"]["model_dir"] = policy
    if backend is not None:
        data["policy"]["backend"] = backend
    if rewards is not None:
        data["rewards"]["kinds"] = [k.strip() for k in rewards.split(",") if k.strip()]
    for name, model_dir in (reward_models or {}).items():
        if name not in REWARD_MODELS:
            raise ValueError(f"reward model {name!r} is unknown; use one of {list(REWARD_MODELS)} (NAME=DIR)")
        data["rewards"]["models"][name] = model_dir
    if sandbox is not None:
        data["sandbox"]["enabled"] = sandbox
    if host is not None:
        data["host"] = host
    if port is not None:
        data["port"] = port
    return from_mapping(ServeConfig, data)


def serve_until_interrupted(config: ServeConfig, echo: Callable[[str], Any] = print) -> None:
    """``run_local(config)``, then wait until SIGINT (Ctrl-C) or SIGTERM (how systemd, Docker and
    Kubernetes stop a service), during start-up or once ready: one line, ``serve.shutdown()``, and
    ``ray.shutdown()`` when this call started Ray; returns normally (exit status 0).

    SIGINT is handled even when it came in ignored: a non-interactive shell starts ``k15ray serve &``
    with SIGINT ignored, and ``kill -INT`` must still stop it. A second signal while stopping is
    ignored (a service manager's SIGKILL after its grace period still ends the process).
    """
    import ray

    owns_ray = not ray.is_initialized()
    with _stop_on_signals():
        try:
            urls = run_local(config, ray_init_kwargs={"include_dashboard": False})
            for name, url in urls.items():
                echo(f"{name}: {url}")
            echo("serving; press Ctrl-C to stop")
            while True:
                time.sleep(1.0)
        except StopServing as stop:
            echo(f"{stop.signal_name} received; stopping")
        finally:
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
            if ray.is_initialized():
                shutdown()
            if owns_ray:
                ray.shutdown()


# ------------------------------------------------------------------------ stopping on signals

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
"""Signals that stop ``serve_until_interrupted`` cleanly."""


class StopServing(KeyboardInterrupt):
    """Raised in the main thread by a signal of ``STOP_SIGNALS``. A ``KeyboardInterrupt``, so that
    Ray treats it as Ctrl-C and ``except Exception`` blocks inside Ray and Serve let it through."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def _raise_stop(signum: int, frame: Any) -> None:
    raise StopServing(signal.Signals(signum).name)


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Every signal of ``STOP_SIGNALS`` raises ``StopServing`` (ignored or not before); the previous
    handlers come back on exit."""
    previous = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _signal_handlers_kept_through_ray_init() -> Iterator[None]:
    """Run ``ray.init`` inside this block: it keeps this process's SIGINT / SIGTERM handlers, and
    holds back those signals until ``ray.init`` is done, then gives them to these handlers.

    Left alone, ``ray.init`` (ray 2.60, pinned) replaces the handlers three times: Python SIGTERM
    handlers through ``ray._private.utils.set_sigterm_handler``, first ``sys.exit(15)`` and then the
    head node's "kill the Ray processes and ``sys.exit(1)``"; and the C++ core worker's
    failure-signal handler, which prints a stack dump on SIGTERM and leaves the interpreter to abort
    (status -6) after a clean shutdown. Here that installer does nothing and the core worker of this
    process installs no failure-signal handler (``RAY_DISABLE_FAILURE_SIGNAL_HANDLER``, for this
    process only: Ray's other processes keep theirs). Signals are held back because an exception
    raised inside ``ray.init`` can leave a half-built core worker that crashes ``ray.shutdown()``.
    """
    import ray._private.ray_constants as ray_constants
    import ray._private.utils as ray_utils

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; Ray installs none from elsewhere either
        return
    arrived: list[int] = []
    held = {sig: signal.signal(sig, lambda signum, frame: arrived.append(signum)) for sig in STOP_SIGNALS}
    install, disabled = ray_utils.set_sigterm_handler, ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER
    ray_utils.set_sigterm_handler = lambda handler: None
    ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True
    try:
        yield
    finally:
        ray_utils.set_sigterm_handler = install
        ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = disabled
        for sig, handler in held.items():
            # None: a handler set outside Python; the default action is the nearest we can give back
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if arrived:
            signal.raise_signal(arrived[0])  # now handled by the handler held before
