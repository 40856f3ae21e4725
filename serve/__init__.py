"""Ray Serve applications (policy, rewards, sandbox), imported as ``k15ray.serve``."""
