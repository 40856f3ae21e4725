"""The HTTP edge (``k15ray.serve.http``) on a small FastAPI app through Starlette's ASGI test client:
OpenAI's error envelope for 400/404/413/500 and the body limit, also for chunked bodies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from k15ray.serve.http import ApiError, install_edge


class Body(BaseModel):
    x: int


def _app() -> FastAPI:
    app = install_edge(FastAPI())
    app.state.max_body_bytes = 100

    @app.post("/echo")
    async def echo(body: Body) -> dict[str, int]:
        if body.x < 0:
            raise ApiError(404, f"no item {body.x}", param="x", code="not_here")
        if body.x == 13:
            raise RuntimeError("unlucky")
        return {"x": body.x}

    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(_app(), raise_server_exceptions=False)


def test_good_request_passes_through(client: TestClient) -> None:
    assert client.post("/echo", json={"x": 3}).json() == {"x": 3}


def test_validation_error_is_400_naming_the_field(client: TestClient) -> None:
    r = client.post("/echo", json={"x": "three"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["param"], error["type"]) == ("x", "invalid_request_error")
    assert error["message"].startswith("x: ")


def test_api_error_and_unknown_route_use_the_envelope(client: TestClient) -> None:
    r = client.post("/echo", json={"x": -1})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_here")
    r = client.get("/nowhere")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")


def test_unexpected_exception_is_500_server_error(client: TestClient) -> None:
    r = client.post("/echo", json={"x": 13})
    assert r.status_code == 500
    assert r.json()["error"] == {
        "message": "RuntimeError: unlucky", "type": "server_error", "param": None, "code": None,
    }
    assert client.post("/echo", json={"x": 1}).status_code == 200  # still serving


def test_body_limit_declared_and_chunked(client: TestClient) -> None:
    big = b'{"x": 1, "pad": "' + b"a" * 100 + b'"}'  # 117 bytes > 100
    r = client.post("/echo", content=big, headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no content-length: the middleware must count
        yield big[:60]
        yield big[60:]

    r = client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    small = b'{"x": 5}'
    r = client.post("/echo", content=iter([small[:3], small[3:]]),
                    headers={"content-type": "application/json"})
    assert r.json() == {"x": 5}  # a chunked body under the limit is replayed intact
