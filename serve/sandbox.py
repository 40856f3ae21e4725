"""The sandbox application: ``POST /v1/sandbox/run`` runs a program (Python, or C++ where a
compiler is installed) on stdin (route prefix ``/v1/sandbox``).

A thin adapter over ``k15ray.sandbox.Sandbox`` (bubblewrap, rlimits, a pre-started worker pool:
the paper's container reuse, section 2.6.4). Limits asked for by a request are capped by the
configuration (``SandboxServeConfig``); a run that fails inside the sandbox comes back as a typed
result (``status`` = ``runtime_error``, ``timeout``, ``memory``, ...), never as an HTTP error.

No ``from __future__ import annotations`` in this module: through ``@serve.ingress`` FastAPI
must see the request models as real types, or it takes them for query parameters.
"""

import asyncio
from typing import Any

from fastapi import FastAPI
from ray import serve

from k15ray.config.serve import SandboxServeConfig
from k15ray.serve.http import ApiError, install_edge
from k15ray.serve.schemas import SandboxRunRequest, SandboxRunResponse

SANDBOX_APP = "sandbox"
"""Default application name of the sandbox application."""

MAX_CODE_CHARS = 100_000
"""Longest program accepted (characters); the body limit applies as well."""

app = install_edge(FastAPI(title="k15ray sandbox"))


def to_response(result: Any) -> SandboxRunResponse:
    """The sandbox's result object on the wire."""
    exit_code = getattr(result, "exit_code", None)
    return SandboxRunResponse(
        status=str(result.status), stdout=str(result.stdout), stderr=str(result.stderr),
        exit_code=None if exit_code is None else int(exit_code), wall_s=float(result.wall_s),
    )


@serve.deployment(name="Sandbox")
@serve.ingress(app)
class SandboxDeployment:
    """Owns one ``Sandbox`` (its worker pool lives as long as the replica)."""

    def __init__(self, config: SandboxServeConfig, max_body_bytes: int) -> None:
        from k15ray.sandbox import Sandbox

        app.state.max_body_bytes = max_body_bytes
        self.config = config
        self.sandbox = Sandbox()

    @app.post("/run")
    async def run(self, body: SandboxRunRequest) -> SandboxRunResponse:
        if body.timeout_s > self.config.max_timeout_s:
            raise ApiError(
                400, f"timeout_s={body.timeout_s} exceeds the limit {self.config.max_timeout_s}",
                param="timeout_s",
            )
        if body.memory_mb > self.config.max_memory_mb:
            raise ApiError(
                400, f"memory_mb={body.memory_mb} exceeds the limit {self.config.max_memory_mb}",
                param="memory_mb",
            )
        if len(body.code) > MAX_CODE_CHARS:
            raise ApiError(400, f"code exceeds {MAX_CODE_CHARS} characters", param="code")
        from k15ray.sandbox import SandboxUnavailableError

        try:
            result = await asyncio.to_thread(
                self.sandbox.run, body.code, body.stdin, body.timeout_s, body.memory_mb, body.language
            )
        except ValueError as err:
            raise ApiError(400, str(err)) from err
        except SandboxUnavailableError as err:
            raise ApiError(503, str(err), type="server_error", code="sandbox_unavailable") from err
        return to_response(result)

    def __del__(self) -> None:  # Serve calls this when the replica stops: end the worker pool
        sandbox = getattr(self, "sandbox", None)
        if sandbox is not None:
            sandbox.close()
