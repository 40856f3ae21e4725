"""Known-harmless messages of Ray, RLlib and transformers, silenced one by one; the rest pass.

``quiet_known_noise()`` runs first in the ``k15ray`` command and, named as Ray's
``worker_process_setup_hook`` (``ray_runtime_env()``), in every Ray worker process (rollout actors,
the Tune trial, learners). It

* drops the log records listed in ``KNOWN_LOG_MESSAGES``: each names the logger that emits it and
  a regular expression of its text, so every other record of the same logger (a real warning)
  still passes;
* turns off transformers' own progress bars ("Loading weights", "Writing model shards"), printed
  for every model load and save: k15ray loads models only from local directories, so no download
  progress is hidden. ``HF_HUB_DISABLE_PROGRESS_BARS=0`` in the environment keeps them.

It changes no behaviour of the libraries: token authentication stays on, RLlib's new API stack
stays on, Tune still monitors CPU and memory. Python ``warnings`` are not touched: each one seen in
a ``k15ray train`` run was fixed at its source (e.g. the KV cache keyword, ``rollout/hf.py``).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

ENV_DEFAULTS: dict[str, str] = {"HF_HUB_DISABLE_PROGRESS_BARS": "1"}
"""Environment variables set (unless already set) for this process and its Ray workers: transformers
reads this one when it is imported and then draws no progress bar."""


@dataclass(frozen=True)
class KnownMessage:
    """One harmless message: where it comes from, how to recognise it, and why it is harmless."""

    logger: str
    """Name of the logger that emits it (the emitting module's ``__name__``)."""
    pattern: str
    """Regular expression matched (``re.match``) against the record's formatted message."""
    why: str
    """Why it can be dropped: what it says and why that needs no action in k15ray."""


KNOWN_LOG_MESSAGES: tuple[KnownMessage, ...] = (
    KnownMessage(
        "ray._private.authentication.authentication_token_setup",
        r"Token authentication is enabled for this Ray cluster\.",
        "Ray turns token authentication on for every new local cluster and says how to opt out; "
        "it stays on (its twin 'Token authentication is disabled' still passes)",
    ),
    KnownMessage(
        "ray.rllib.algorithms.algorithm_config",
        r"You are running \w+ on the new API stack!",
        "K15 is written for RLlib's new API stack (RLModule + Learner); RLlib says so for every "
        "algorithm that runs on it, and no setting acknowledges it",
    ),
    KnownMessage(
        "ray._common.deprecation",
        r"DeprecationWarning: `RLModule\(config=\[RLModuleConfig object\]\)` has been deprecated",
        "RLlib's own RLModule.__init__ builds the deprecated RLModuleConfig for every module; "
        "K15PolicyModule is built from an RLModuleSpec with the new keyword arguments",
    ),
    KnownMessage(
        "ray.tune.utils.util",
        r"Install gputil for GPU system monitoring\.$",
        "Tune's per-iteration system monitor (AlgorithmConfig.log_sys_usage) still reports CPU "
        "and memory through psutil; GPU utilisation is optional there",
    ),
)
"""The log records ``quiet_known_noise`` drops, each seen in a ``k15ray train`` run (Ray 2.60)."""


class DropKnownMessages(logging.Filter):
    """A logger filter that drops records whose message matches one of ``patterns``."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        super().__init__()
        self.patterns = tuple(re.compile(p) for p in patterns)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format is no known message
            return True
        return not any(p.match(message) for p in self.patterns)


def quiet_known_noise() -> None:
    """Silence the known-harmless messages (module docstring); idempotent, imports nothing heavy."""
    for name, value in ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    by_logger: dict[str, tuple[str, ...]] = {}
    for known in KNOWN_LOG_MESSAGES:
        by_logger[known.logger] = (*by_logger.get(known.logger, ()), known.pattern)
    for name, patterns in by_logger.items():
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, DropKnownMessages)]:
            logger.removeFilter(old)
        logger.addFilter(DropKnownMessages(patterns))
    hf_logging = sys.modules.get("transformers.utils.logging")
    bars_off = os.environ["HF_HUB_DISABLE_PROGRESS_BARS"].upper() in {"1", "ON", "YES", "TRUE"}
    if hf_logging is not None and bars_off:
        hf_logging.disable_progress_bar()  # transformers read the variable before it was set


def ray_runtime_env() -> dict[str, Any]:
    """``ray.init(runtime_env=...)`` that applies ``quiet_known_noise`` in every worker process
    (the variables also reach workers of a cluster started elsewhere)."""
    return {
        "env_vars": {name: os.environ.get(name, value) for name, value in ENV_DEFAULTS.items()},
        "worker_process_setup_hook": f"{__name__}.quiet_known_noise",
    }
