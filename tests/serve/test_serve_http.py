"""The Serve applications over real HTTP on 127.0.0.1: the official ``openai`` client against the
policy (tiny model built here), httpx against rewards and sandbox, and ``ServedReward`` handles.

One Serve instance (all three applications) is shared by this module; ``serve.shutdown()`` at the end.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from k15ray.config.serve import (
    PolicyServeConfig,
    RewardServeConfig,
    SandboxServeConfig,
    ServeConfig,
)
from k15ray.types import CodeTest, Prompt

MAX_BODY = 20_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from ray import serve

    from k15ray.models import create_model
    from k15ray.serve.app import run_local

    model_dir = create_model("tiny", Path(tmp_path_factory.mktemp("served")) / "tiny", seed=0)
    port = _free_port()
    config = ServeConfig(
        host="127.0.0.1", port=port, max_body_bytes=MAX_BODY,
        policy=PolicyServeConfig(
            model_dir=str(model_dir), model_name="tiny", num_cpus=0.5, max_tokens_limit=64,
            max_n=4, stream_chunk_tokens=4, batch_chunk_tokens=4,
        ),
        rewards=RewardServeConfig(kinds=("math", "code"), num_cpus=0.0, max_batch_items=64),
        sandbox=SandboxServeConfig(num_cpus=0.0, max_timeout_s=10.0),
    )
    urls = run_local(config)
    assert urls["rewards"] == f"http://127.0.0.1:{port}/v1/rewards"
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


@pytest.fixture(scope="module")
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)


# ------------------------------------------------------------------------------------ policy


def test_models_lists_the_served_checkpoint(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == ["tiny"]


def test_completion_usage_counts_tokens(client: openai.OpenAI) -> None:
    out = client.completions.create(model="tiny", prompt="12+34=", max_tokens=5, temperature=0)
    assert len(out.choices) == 1 and out.choices[0].finish_reason in ("stop", "length")
    assert out.usage is not None
    # character tokenizer: "12+34=" is 6 tokens; at most 5 new ones (5 exactly unless EOS came)
    assert out.usage.prompt_tokens == 6
    assert out.usage.total_tokens == 6 + out.usage.completion_tokens
    assert out.usage.completion_tokens <= 5
    assert (out.usage.completion_tokens == 5) or out.choices[0].finish_reason == "stop"


def test_completion_n_choices(client: openai.OpenAI) -> None:
    greedy = client.completions.create(model="tiny", prompt="7*8=", max_tokens=6, temperature=0, n=2)
    assert [c.index for c in greedy.choices] == [0, 1]
    assert greedy.choices[0].text == greedy.choices[1].text  # greedy: n identical choices
    sampled = client.completions.create(
        model="tiny", prompt="7*8=", max_tokens=6, temperature=1.0, n=3, seed=11
    )
    assert sorted(c.index for c in sampled.choices) == [0, 1, 2]
    assert len({c.text for c in sampled.choices}) > 1  # distinct seeded streams per choice
    assert sampled.usage is not None and sampled.usage.prompt_tokens == 4  # "7*8=" once, not n times


def test_chat_completion(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "2+2?"}], max_tokens=6, temperature=0
    )
    assert out.choices[0].message.role == "assistant"
    assert out.usage is not None
    # chat template: <|user|> 2 + 2 ? <|end|> <|assistant|> -> 1 + 4 + 1 + 1 = 7 tokens
    assert out.usage.prompt_tokens == 7
    assert out.usage.completion_tokens == 6 or out.choices[0].finish_reason == "stop"


def _sampled(client: openai.OpenAI, seed: int, stop: list[str], stream: bool = False) -> object:
    return client.completions.create(
        model="tiny", prompt="9-4=", max_tokens=16, temperature=1.0, seed=seed, stop=stop, stream=stream
    )


def test_stop_string_and_streaming_agree(client: openai.OpenAI) -> None:
    # Seeded samples repeat exactly; take the first seed whose sample is long enough (the random
    # model may sample EOS early), then cut it with a stop string taken from its middle.
    for seed in range(20):
        full = _sampled(client, seed, stop=["\x00never"]).choices[0].text  # type: ignore[attr-defined]
        if len(full) >= 8:
            break
    assert len(full) >= 8, f"no seed gave a sample of 8+ characters; last: {full!r}"
    stop = full[5:7]
    expected = full[: full.find(stop)]  # cut before the stop string's first occurrence
    cut = _sampled(client, seed, stop=[stop]).choices[0]  # type: ignore[attr-defined]
    assert (cut.text, cut.finish_reason) == (expected, "stop")
    chunks = list(_sampled(client, seed, stop=[stop], stream=True))  # type: ignore[call-overload]
    assert "".join(c.choices[0].text for c in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


def test_chat_stream_matches_the_whole_answer(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "10+5?"}]
    whole = client.chat.completions.create(model="tiny", messages=messages, max_tokens=9, temperature=0)
    stream = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=9, temperature=0, n=2, stream=True,
        stream_options={"include_usage": True},
    )
    texts = {0: "", 1: ""}
    finishes: dict[int, str | None] = {}
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            finishes[choice.index] = choice.finish_reason or finishes.get(choice.index)
    answer = whole.choices[0].message.content
    assert texts == {0: answer, 1: answer}  # streamed in chunks of 4 = one greedy call
    assert finishes == {0: whole.choices[0].finish_reason, 1: whole.choices[0].finish_reason}
    assert usage is not None and whole.usage is not None
    assert usage.completion_tokens == 2 * whole.usage.completion_tokens


def test_raw_sse_framing(base_url: str) -> None:
    body = {"model": "tiny", "prompt": "1+1=", "max_tokens": 3, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{base_url}/v1/completions", json=body, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: {") for e in events[:-2])


def test_policy_errors_then_keeps_serving(client: openai.OpenAI, base_url: str) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.completions.create(model="gpt-9", prompt="hi", max_tokens=2)
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.completions.create(model="tiny", prompt="hi", max_tokens=65)  # limit 64
    with pytest.raises(openai.BadRequestError, match="n=5"):
        client.completions.create(model="tiny", prompt="hi", max_tokens=2, n=5)  # limit 4
    bad = [
        ({"model": "tiny", "prompt": "hi", "temperature": "hot"}, "temperature"),
        ({"model": "tiny"}, "prompt"),
        ({"model": "tiny", "prompt": ""}, "empty"),
    ]
    for body, word in bad:
        r = httpx.post(f"{base_url}/v1/completions", json=body, timeout=30)
        assert r.status_code == 400 and word in r.json()["error"]["message"], r.text
    r = httpx.post(f"{base_url}/v1/chat/completions", json={"model": "tiny"}, timeout=30)
    assert r.status_code == 400 and "messages" in r.json()["error"]["message"]
    r = httpx.post(f"{base_url}/v1/completions", content=b"{not json", timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400
    huge = {"model": "tiny", "prompt": "1" * (MAX_BODY + 1)}
    r = httpx.post(f"{base_url}/v1/completions", json=huge, timeout=30)
    assert r.status_code == 413 and "error" in r.json()
    assert [m.id for m in client.models.list().data] == ["tiny"]  # still serving


# ----------------------------------------------------------------------------------- rewards


def test_math_reward_single_and_batch(base_url: str) -> None:
    one = httpx.post(f"{base_url}/v1/rewards/math",
                     json={"response": "so \\boxed{4}", "reference": "4"}, timeout=60).json()
    assert (one["score"], one["correct"], one["status"]) == (1.0, True, "ok")
    items = [
        {"response": "Answer: \\frac{1}{2}", "reference": "0.5"},  # equal after math-verify
        {"response": "\\boxed{5}", "reference": "4"},
        {"response": "", "reference": "4"},  # no answer at all
    ]
    out = httpx.post(f"{base_url}/v1/rewards/math", json={"items": items}, timeout=60).json()
    assert [r["score"] for r in out["results"]] == [1.0, 0.0, 0.0]
    assert [r["status"] for r in out["results"]] == ["ok", "ok", "wrong_format"]


def test_math_reward_is_safe_under_concurrency(base_url: str) -> None:
    async def run() -> list[tuple[float, float]]:
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
            async def one(i: int) -> tuple[float, float]:
                given = i if i % 2 == 0 else i + 1  # odd i answer wrongly
                body = {"response": f"\\boxed{{{given}/2}}", "reference": f"{i / 2}"}
                r = await http.post("/v1/rewards/math", json=body)
                return r.json()["score"], float(i % 2 == 0)

            return list(await asyncio.gather(*(one(i) for i in range(32))))

    for got, want in asyncio.run(run()):
        assert got == want


def test_concurrent_reward_requests_share_scoring_passes(base_url: str) -> None:
    from ray import serve

    rewards = serve.get_deployment_handle("Rewards", "rewards")
    before = rewards.batch_stats.remote().result()
    prompt = Prompt(id="p", question="", answer="4")
    calls = [rewards.score.remote("math", [prompt] * 2, [f"\\boxed{{{i}}}", "\\boxed{4}"]) for i in range(24)]
    results = [call.result(timeout_s=120) for call in calls]
    after = rewards.batch_stats.remote().result()
    assert [[r.score for r in pair] for pair in results] == [[float(i == 4), 1.0] for i in range(24)]
    requests = after["requests"] - before["requests"]
    passes = after["batches"] - before["batches"]
    assert (requests, after["items"] - before["items"]) == (24, 48)
    assert passes < requests, (passes, requests)  # @serve.batch merged concurrent calls


def test_code_reward(base_url: str) -> None:
    tests = [{"stdin": "3\n", "expected_stdout": "6\n"}, {"stdin": "5\n", "expected_stdout": "10\n"}]
    good = "```python\nprint(int(input()) * 2)\n```"
    bad = "```python\nprint(int(input()) + 2)\n```"
    out = httpx.post(f"{base_url}/v1/rewards/code", json={"items": [
        {"response": good, "tests": tests}, {"response": bad, "tests": tests},
    ]}, timeout=120).json()
    assert [(r["score"], r["correct"]) for r in out["results"]] == [(1.0, True), (0.0, False)], out


def test_reward_bad_requests(base_url: str) -> None:
    cases = [
        ({"response": "\\boxed{4}"}, "reference"),  # missing field
        ({"response": 4, "reference": "4"}, "response"),  # wrong type
        ({"items": [], }, "items"),  # empty batch
        ({"items": [{"response": "1", "reference": "1"}], "response": "x"}, "either"),
        ({"items": [{"response": "1", "reference": "1"}] * 65}, "limit"),  # max 64 items
    ]
    for body, word in cases:
        r = httpx.post(f"{base_url}/v1/rewards/math", json=body, timeout=30)
        assert r.status_code == 400 and word in r.json()["error"]["message"], (body, r.text)
    r = httpx.post(f"{base_url}/v1/rewards/code", json={"response": "print(1)", "tests": []}, timeout=30)
    assert r.status_code == 400 and "tests" in r.json()["error"]["message"]
    big = {"response": "x" * MAX_BODY, "reference": "1"}
    assert httpx.post(f"{base_url}/v1/rewards/math", json=big, timeout=30).status_code == 413
    listed = httpx.get(f"{base_url}/v1/rewards/", timeout=30).json()
    assert listed == {"rewards": ["code", "math"], "reward_models": []}


def test_concurrent_completions_share_backend_calls(base_url: str) -> None:
    from ray import serve

    policy = serve.get_deployment_handle("Policy", "policy")
    before = policy.batch_stats.remote().result()

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
            bodies = [
                {"model": "tiny", "prompt": f"{i}+1=", "max_tokens": 16, "temperature": 1.0} for i in range(8)
            ]
            return list(await asyncio.gather(*(http.post("/v1/completions", json=b) for b in bodies)))

    assert all(r.status_code == 200 for r in asyncio.run(burst()))
    after = policy.batch_stats.remote().result()
    sequences = after["sequences"] - before["sequences"]
    calls = after["batches"] - before["batches"]
    # 8 requests of up to 16 tokens in chunks of 4 (batch_chunk_tokens): 8 to 32 chunks; without
    # step batching every chunk would be a call of its own
    assert 8 <= sequences <= 32, sequences
    assert calls <= sequences / 2, (calls, sequences)


# ----------------------------------------------------------------------------------- sandbox


def test_sandbox_run(base_url: str) -> None:
    ok = httpx.post(f"{base_url}/v1/sandbox/run", json={
        "code": "import sys\nprint(sum(map(int, sys.stdin.read().split())))", "stdin": "2 3 4",
    }, timeout=120).json()
    assert (ok["status"], ok["stdout"], ok["exit_code"]) == ("ok", "9\n", 0)  # 2 + 3 + 4 = 9
    crash = httpx.post(f"{base_url}/v1/sandbox/run", json={"code": "1/0"}, timeout=120).json()
    assert crash["status"] == "runtime_error" and "ZeroDivisionError" in crash["stderr"]
    for body, word in [({"code": "print(1)", "timeout_s": 11}, "timeout_s"), ({}, "code"),
                       ({"code": "print(1)", "language": "cobol"}, "language")]:
        r = httpx.post(f"{base_url}/v1/sandbox/run", json=body, timeout=30)
        assert r.status_code == 400 and word in r.json()["error"]["message"], r.text


# ------------------------------------------------------------------------- handles (training)


def test_served_reward_through_handles(base_url: str) -> None:
    import ray

    from k15ray.serve.client import ServedReward

    reward = ServedReward("math")
    prompt = Prompt(id="p1", question="2+2?", answer="4")
    assert reward(prompt, "\\boxed{4}").correct
    results = reward.score_batch([prompt, prompt], ["\\boxed{4}", "\\boxed{3}"])
    assert [r.score for r in results] == [1.0, 0.0]

    @ray.remote(num_cpus=0)
    def score_in_a_task(fn: ServedReward, p: Prompt, response: str) -> float:
        return fn(p, response).score

    assert ray.get(score_in_a_task.remote(reward, prompt, "\\boxed{4}")) == 1.0  # picklable
    batch = asyncio.run(reward.ascore_batch([prompt] * 3, ["\\boxed{4}", "Answer: 4", "\\boxed{2+2}"]))
    assert [r.correct for r in batch] == [True, True, True]  # a stated answer; 2+2 = 4
    # a bare number is no stated final answer (docs/envs.md, verify_math): typed, never an exception
    (bare,) = asyncio.run(reward.ascore_batch([prompt], ["4"]))
    assert (bare.correct, bare.status) == (False, "wrong_format")

    code = ServedReward("code")
    code_prompt = Prompt(id="c1", question="", answer="", domain="code",
                         tests=(CodeTest("1\n", "2\n"),))
    assert code(code_prompt, "```python\nprint(int(input()) + 1)\n```").correct

    missing = ServedReward("math", app_name="no-such-app", timeout_s=10)(prompt, "\\boxed{4}")
    assert (missing.score, missing.status) == (0.0, "error")
