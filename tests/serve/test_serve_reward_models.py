"""The model reward models behind real HTTP (``/v1/rewards/value_rm``, ``/v1/rewards/cot_rm``) and
``ServedReward`` handles, with tiny random models: shapes, statuses, errors and dynamic batching.

One Serve instance for this module (the rewards application with both reward models, and a second
rewards application serving none of them); ``serve.shutdown()`` at the end.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from k15ray.config.serve import (
    RewardModelServeConfig,
    RewardServeConfig,
    SandboxServeConfig,
    ServeConfig,
)
from k15ray.types import Prompt

PLAIN_PREFIX = "/plain-rewards"
"""Route of a rewards application that serves math only: no reward model deployment."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(port: int, models: RewardModelServeConfig) -> ServeConfig:
    return ServeConfig(
        host="127.0.0.1", port=port, max_body_bytes=20_000,
        rewards=RewardServeConfig(kinds=("math",), num_cpus=0.0, max_batch_items=8, models=models),
        sandbox=SandboxServeConfig(enabled=False),
    )


@pytest.fixture(scope="module")
def base_url(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from ray import serve

    from k15ray.models import create_model
    from k15ray.rewards.models import RMExample, train_value_rm
    from k15ray.serve.app import rewards_app, run_local

    root = Path(tmp_path_factory.mktemp("served_rm"))
    tiny = create_model("tiny", root / "tiny", seed=0)
    labelled = [RMExample("1+1?", "2", "\\boxed{2}", True), RMExample("1+1?", "2", "\\boxed{3}", False)]
    value_dir = train_value_rm(labelled, tiny, root / "value_rm", steps=1, batch_size=2, max_length=256)
    port = _free_port()
    models = RewardModelServeConfig(
        value_rm=str(value_dir), cot_rm=str(tiny), num_cpus=0.0, max_batch_size=8,
        batch_wait_timeout_s=0.2, max_length=256, judge_max_new_tokens=8,
    )
    urls = run_local(_config(port, models))
    assert urls == {"rewards": f"http://127.0.0.1:{port}/v1/rewards"}
    serve.run(rewards_app(_config(port, RewardModelServeConfig())), name="plain_rewards",
              route_prefix=PLAIN_PREFIX)
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


def _post(url: str, body: Any) -> httpx.Response:
    return httpx.post(url, json=body, timeout=120)


ITEM = {"question": "2+3?", "reference": "5", "response": "2+3=5, so \\boxed{5}"}


def test_listing_names_the_served_reward_models(base_url: str) -> None:
    listed = httpx.get(f"{base_url}/v1/rewards/", timeout=30).json()
    assert listed == {"rewards": ["math"], "reward_models": ["cot_rm", "value_rm"]}
    assert httpx.get(f"{base_url}{PLAIN_PREFIX}/", timeout=30).json()["reward_models"] == []


def test_value_rm_scores_one_item_and_a_batch(base_url: str) -> None:
    one = _post(f"{base_url}/v1/rewards/value_rm", ITEM)
    assert one.status_code == 200, one.text
    out = one.json()
    assert out["status"] == "ok" and 0.0 <= out["score"] <= 1.0
    assert out["correct"] == (out["score"] >= 0.5)
    assert set(out["details"]) == {"logit", "p_correct", "batch_size"}
    batch = _post(f"{base_url}/v1/rewards/value_rm", {"items": [ITEM, {**ITEM, "response": "\\boxed{6}"}]})
    assert batch.status_code == 200 and len(batch.json()["results"]) == 2
    assert batch.json()["results"][0]["score"] == pytest.approx(out["score"], abs=1e-5)  # padding-free


def test_cot_rm_answers_typed_results(base_url: str) -> None:
    response = _post(f"{base_url}/v1/rewards/cot_rm", {"items": [ITEM, ITEM, {**ITEM, "question": ""}]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 3
    for r in results:  # a random judge writes no verdict: a typed failure, never an HTTP error
        assert r["status"] in ("ok", "parse_error") and "output" in r["details"]
        if r["status"] == "parse_error":
            assert (r["score"], r["correct"]) == (0.0, False)


@pytest.mark.parametrize("name", ["value_rm", "cot_rm"])
@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"question": "q", "response": "r"}, "reference"),  # missing field
        ({**ITEM, "extra": 1}, "extra"),  # unknown field
        ({"items": []}, "items"),
        ({"items": [ITEM] * 9}, "items"),  # over max_batch_items = 8
        ({"items": [ITEM], "response": "r"}, None),  # both forms at once
        ({**ITEM, "reference": 5}, "reference"),  # wrong type
    ],
)
def test_bad_requests_get_400(base_url: str, name: str, body: Any, param: str | None) -> None:
    response = _post(f"{base_url}/v1/rewards/{name}", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param:
        assert param in (error["param"] or "") + error["message"]


def test_invalid_json_gets_400_and_the_server_keeps_serving(base_url: str) -> None:
    bad = httpx.post(f"{base_url}/v1/rewards/value_rm", content=b"{not json",
                     headers={"content-type": "application/json"}, timeout=60)
    assert bad.status_code == 400
    assert _post(f"{base_url}/v1/rewards/value_rm", ITEM).status_code == 200


def test_concurrent_requests_share_forward_passes(base_url: str) -> None:
    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            calls = [client.post(f"{base_url}/v1/rewards/value_rm", json={**ITEM, "response": f"\\boxed{{{i}}}"})
                     for i in range(8)]
            return list(await asyncio.gather(*calls))

    responses = asyncio.run(send_all())
    assert all(r.status_code == 200 and r.json()["status"] == "ok" for r in responses)
    # 8 requests within the 0.2 s batch window: @serve.batch put several into one forward pass
    assert max(r.json()["details"]["batch_size"] for r in responses) > 1


def test_served_reward_reaches_reward_models_by_kind(base_url: str) -> None:
    from k15ray.serve.client import ServedReward

    prompts = [Prompt("a", "2+3?", "5"), Prompt("b", "1+1?", "2")]
    value = ServedReward("value_rm").score_batch(prompts, ["\\boxed{5}", "\\boxed{3}"])
    assert [r.status for r in value] == ["ok", "ok"] and all(0 <= r.score <= 1 for r in value)
    judged = ServedReward("cot_rm")(prompts[0], "\\boxed{5}")
    assert judged.status in ("ok", "parse_error")


def test_a_rewards_app_without_the_deployment_says_so(base_url: str) -> None:
    from k15ray.serve.client import ServedReward

    response = _post(f"{base_url}{PLAIN_PREFIX}/value_rm", ITEM)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "reward_not_served"
    assert "--reward-model value_rm=DIR" in response.json()["error"]["message"]
    failed = ServedReward("cot_rm", app_name="plain_rewards")(Prompt("a", "q", "1"), "1")
    assert (failed.status, failed.score) == ("error", 0.0)


# ---------------------------------------------------------------------- configuration (no Ray)


def test_config_from_cli_takes_reward_model_directories(tmp_path: Path) -> None:
    from k15ray.serve.app import build_apps, config_from_cli

    config = config_from_cli(rewards="", sandbox=False, reward_models={"cot_rm": str(tmp_path)})
    assert config.rewards.models.served() == {"cot_rm": str(tmp_path)}
    assert list(build_apps(config)) == ["rewards"]  # a reward model alone makes the application
    with pytest.raises(ValueError, match="unknown; use one of \\['value_rm', 'cot_rm'\\]"):
        config_from_cli(reward_models={"value_head": "x"})
    with pytest.raises(ValueError, match="rewards.models.max_batch_size must be > 0"):
        RewardModelServeConfig(max_batch_size=0)


def test_served_reward_knows_the_reward_model_kinds() -> None:
    from k15ray.serve.client import ServedReward

    assert ServedReward("value_rm").kind == "value_rm"
    with pytest.raises(ValueError, match="cot_rm"):
        ServedReward("judge")


def test_k15_trains_on_the_served_judge(base_url: str, tmp_path: Path) -> None:
    """``reward: {kind: cot_rm, backend: serve}``: the training loop's scores are the served
    judge's (the same as the judge in-process), one batched handle call per iteration."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "algorithms"))
    from k15_testkit import small_config, tiny_model

    from k15ray import metrics as M
    from k15ray.rewards.models import CoTJudge

    tiny = tiny_model(tmp_path / "policy")
    config = (
        small_config(tiny, tmp_path / "logs", env="k15/Math-v0")
        .environment("k15/Math-v0", env_config={"num_prompts": 6})
        .k15_training(reward={"kind": "cot_rm", "backend": "serve"})
    )
    algo = config.build_algo()
    try:
        phase = algo._rollout
        prompt = next(iter(phase.prompts.values()))
        answers = [rf"so \boxed{{{prompt.answer}}}", r"\boxed{-1}"]
        served = phase._score([prompt] * 2, answers)
        assert [r.details.get("batch_size") for r in served] == [2, 2]  # one call, one batch
        local = CoTJudge(tiny, max_new_tokens=8).score_batch([prompt] * 2, answers)  # the judge is `tiny`
        assert [(r.status, r.score, r.details["output"]) for r in served] == [
            (r.status, r.score, r.details["output"]) for r in local
        ]
        result = [algo.train() for _ in range(2)][-1]
        assert M.REWARD_FOOLING_RATE in result and M.REWARD_VERIFIER_ACCURACY in result
    finally:
        algo.stop()
