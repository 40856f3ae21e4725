"""Gymnasium text environments (math, code, vision), imported as ``k15ray.envs``."""
