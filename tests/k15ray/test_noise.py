"""``k15ray.noise``: the known-harmless messages go, everything else passes, in this process, in
Ray workers, and as emitted by the real libraries."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from k15ray.noise import KNOWN_LOG_MESSAGES, DropKnownMessages, quiet_known_noise

SAMPLES = {
    "ray._private.authentication.authentication_token_setup": "Token authentication is enabled "
    "for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out. For more information, see "
    "https://docs.ray.io/en/latest/ray-security/token-auth.html",
    "ray.rllib.algorithms.algorithm_config": "You are running K15 on the new API stack! This is "
    "the new default behavior for this algorithm.",
    "ray._common.deprecation": "DeprecationWarning: `RLModule(config=[RLModuleConfig object])` has "
    "been deprecated. Use `RLModule(observation_space=.., action_space=.., inference_only=.., "
    "model_config=.., catalog_class=..)` instead. This will raise an error in the future!",
    "ray.tune.utils.util": "Install gputil for GPU system monitoring.",
}
"""Each known message as a ``k15ray train`` run printed it (Ray 2.60), by emitting logger."""

NEIGHBOURS = {
    "ray._private.authentication.authentication_token_setup": "Token authentication is disabled "
    "for this Ray cluster. Anyone with network access to the cluster can run arbitrary code.",
    "ray.rllib.algorithms.algorithm_config": "You have setup a RLModuleSpec (via calling "
    "`config.rl_module(...)`), but have not enabled the new API stack.",
    "ray._common.deprecation": "DeprecationWarning: `AlgorithmConfig.rollouts` has been deprecated.",
    "ray.tune.utils.util": "Install psutil to monitor system performance.",
}
"""A real warning of each of the same loggers, which must still pass."""


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``quiet_known_noise()`` for one test; the loggers' filters, the environment and
    transformers' progress bars are as before afterwards."""
    import transformers.utils.logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    quiet_known_noise()
    yield
    for known in KNOWN_LOG_MESSAGES:
        logger = logging.getLogger(known.logger)
        for f in [f for f in logger.filters if isinstance(f, DropKnownMessages)]:
            logger.removeFilter(f)
    if bars:
        hf_logging.enable_progress_bar()


def _emit(logger_name: str, message: str) -> list[str]:
    """What a handler on ``logger_name`` receives when it warns ``message``."""
    logger = logging.getLogger(logger_name)
    handler = _Collect()
    logger.addHandler(handler)
    try:
        logger.warning(message)
    finally:
        logger.removeHandler(handler)
    return handler.messages


def test_every_known_message_has_a_sample() -> None:
    assert {k.logger for k in KNOWN_LOG_MESSAGES} == set(SAMPLES) == set(NEIGHBOURS)
    assert all(k.why for k in KNOWN_LOG_MESSAGES)


def test_known_messages_pass_without_the_filters() -> None:
    """The check below is not vacuous: unfiltered, each sample reaches a handler."""
    for name, message in SAMPLES.items():
        assert _emit(name, message) == [message], name


@pytest.mark.usefixtures("quiet")
def test_known_messages_are_dropped_and_the_rest_passes() -> None:
    import transformers.utils.logging as hf_logging

    for name, message in SAMPLES.items():
        assert _emit(name, message) == [], f"{name} let through {message!r}"
    for name, message in NEIGHBOURS.items():
        assert _emit(name, message) == [message], f"{name} dropped {message!r}"
    assert _emit("k15ray.rollout", SAMPLES["ray.tune.utils.util"]) != []  # only its own logger
    with pytest.warns(FutureWarning, match="a real deprecation"):
        warnings.warn("a real deprecation", FutureWarning, stacklevel=1)  # Python warnings pass
    assert not hf_logging.is_progress_bar_enabled()


@pytest.mark.usefixtures("quiet")
def test_setup_is_idempotent() -> None:
    quiet_known_noise()
    for known in KNOWN_LOG_MESSAGES:
        filters = logging.getLogger(known.logger).filters
        assert sum(isinstance(f, DropKnownMessages) for f in filters) == 1


EMIT = """
import logging, sys
quiet, out_dir = sys.argv[1] == "quiet", sys.argv[2]
runtime_env = None
if quiet:
    from k15ray.noise import quiet_known_noise, ray_runtime_env
    quiet_known_noise()
    runtime_env = ray_runtime_env()
import gymnasium as gym
import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.tune.utils.util import UtilMonitor
from transformers import LlamaConfig, LlamaForCausalLM

ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
PPOConfig().environment("CartPole-v1").validate()
class Module(TorchRLModule):
    def setup(self): pass
Module(observation_space=gym.spaces.Box(-1, 1, (2,)), action_space=gym.spaces.Discrete(2))
UtilMonitor(start=True).stop()
config = LlamaConfig(vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                     num_attention_heads=2, num_key_value_heads=2)
LlamaForCausalLM(config).save_pretrained(out_dir)
LlamaForCausalLM.from_pretrained(out_dir)
logging.getLogger("ray.rllib.algorithms.algorithm_config").warning("an unrelated RLlib warning")

@ray.remote
def in_worker():
    import logging, os
    filters = logging.getLogger("ray._common.deprecation").filters
    return os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"), [type(f).__name__ for f in filters]

print("worker:", ray.get(in_worker.remote()))
ray.shutdown()
"""
"""Makes Ray, RLlib, Tune and transformers print each known message their own way (a new local
Ray cluster, an RLlib config and RLModule, Tune's system monitor, a model saved and loaded);
``quiet`` first runs ``quiet_known_noise`` and starts Ray with ``ray_runtime_env()``."""

MARKERS = (
    "Token authentication is enabled",
    "on the new API stack",
    "RLModuleConfig",
    "gputil",
    "Writing model shards",
    "Loading weights",
)


@pytest.mark.slow
def test_real_libraries_are_quiet_in_the_driver_and_workers(tmp_path: Path) -> None:
    """Loud, each marker shows (so a reworded library message fails here, not silently); quiet,
    none does, the unrelated warning still does, and a Ray worker ran the setup hook."""
    script = tmp_path / "emit.py"
    script.write_text(EMIT)
    outputs = {}
    for mode in ("loud", "quiet"):
        home = tmp_path / f"home_{mode}"  # Ray writes its token under ~/.ray
        home.mkdir()
        env = {**os.environ, "HOME": str(home)}
        env.pop("RAY_AUTH_MODE", None)  # unset: Ray's default, which prints the notice
        env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
        cmd = [sys.executable, str(script), mode, str(tmp_path / f"model_{mode}")]
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[mode] = result.stdout + result.stderr
    loud, quiet = outputs["loud"], outputs["quiet"]
    assert [m for m in MARKERS if m not in loud] == [], loud
    assert [m for m in MARKERS if m in quiet] == [], quiet
    assert "an unrelated RLlib warning" in loud and "an unrelated RLlib warning" in quiet
    assert "worker: (None, [])" in loud
    assert "worker: ('1', ['DropKnownMessages'])" in quiet
