"""k15ray: the Kimi k1.5 reinforcement-learning recipe on Ray.

The paper's maths lives in pure functions (``mirror_descent``, ``length_penalty``, ``sampling``,
``partial_rollout``); Ray, RLlib, Serve and vLLM adapters call them. See DESIGN.md.
"""

__version__ = "0.1.0"
