"""Tune registration: importing ``k15ray.algorithms`` makes ``"K15"`` a trainable name.

After it, ``tune.run("K15", config=...)`` and ``tune.Tuner("K15", param_space=...)`` work, and
RLlib's ``get_trainable_cls("K15")`` returns ``K15``. Registration is idempotent.
"""

from __future__ import annotations

from ray.tune.registry import register_trainable

from k15ray.algorithms.k15 import K15

TRAINABLE_NAME = "K15"


def register() -> None:
    """Register ``K15`` under ``"K15"`` with Ray Tune (safe to call more than once)."""
    register_trainable(TRAINABLE_NAME, K15)


register()
