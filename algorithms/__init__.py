"""The K15 RLlib algorithm, imported as ``k15ray.algorithms``."""
