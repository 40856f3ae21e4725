"""The K15 RLlib algorithm (paper 2.3, 2.6), imported as ``k15ray.algorithms``.

``K15Config`` builds the algorithm from the dataclasses of ``k15ray.config``; ``K15`` is the RLlib
``Algorithm`` whose ``training_step`` is one k1.5 iteration; importing this package registers
``"K15"`` with Ray Tune, so ``tune.run("K15", config=...)`` and ``tune.Tuner("K15", ...)`` work.
"""

from k15ray.algorithms.config import K15Config
from k15ray.algorithms.k15 import K15
from k15ray.algorithms.registration import TRAINABLE_NAME, register

__all__ = ["K15", "K15Config", "TRAINABLE_NAME", "register"]
