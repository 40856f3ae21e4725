"""Stop strings, chunked generation and streams of ``k15ray.serve.generation`` on the real tiny model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from k15ray.serve.generation import ChoiceSpec, CompletionEngine, Delta, emittable_length, find_stop
from k15ray.types import GenerationRequest, GenerationResult, SamplingParams


def test_find_stop_takes_the_earliest_stop_string() -> None:
    # "ab=cd\nef": "=" starts at 2, "\n" at 5, "zz" nowhere -> 2
    assert find_stop("ab=cd\nef", ["\n", "=", "zz"]) == 2
    assert find_stop("abc", ["zz"]) is None
    assert find_stop("abc", []) is None


def test_emittable_length_holds_back_a_possible_stop_prefix() -> None:
    # "x = 1#" ends with "#", a prefix of "##": hold 1 char back -> 6 - 1 = 5
    assert emittable_length("x = 1#", ["##"]) == 5
    # "abc" vs stop "bcd": suffix "bc" is a prefix of "bcd" -> 3 - 2 = 1
    assert emittable_length("abc", ["bcd"]) == 1
    # no stop string can start at the end -> everything
    assert emittable_length("abc", ["xy"]) == 3
    # a trailing U+FFFD (half a multi-byte character) waits: 3 chars - 1 = 2
    assert emittable_length("ab\ufffd", []) == 2


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> CompletionEngine:
    from k15ray.models import create_model
    from k15ray.rollout.hf import HFBackend

    model_dir = create_model("tiny", Path(tmp_path_factory.mktemp("tiny")) / "m", seed=0)
    backend = HFBackend.from_pretrained(model_dir)
    calls: list[int] = []

    async def generate_one(request: GenerationRequest, params: SamplingParams) -> GenerationResult:
        calls.append(request.max_new_tokens)
        return backend.generate([request], params)[0]

    tok = backend.tokenizer
    eng = CompletionEngine(generate_one, lambda ids: tok.decode(ids), [tok.eos_token_id], chunk_tokens=3)
    eng.calls = calls  # type: ignore[attr-defined]
    eng.prompt = tuple(tok.encode("12+34="))  # type: ignore[attr-defined]
    return eng


def _spec(
    engine: CompletionEngine, stop: tuple[str, ...] = (), max_tokens: int = 20, temperature: float = 0.0
) -> ChoiceSpec:
    # no token id stops a choice (10**9 is outside the vocabulary): every choice runs to
    # max_tokens unless a stop STRING ends it, whatever the random weights
    params = SamplingParams(
        temperature=temperature, seed=7, stop_token_ids=(10**9,), detect_repeats=False
    )
    return ChoiceSpec("c0", engine.prompt, max_tokens, params, stop)  # type: ignore[attr-defined]


async def _collect(engine: CompletionEngine, spec: ChoiceSpec) -> list[Delta]:
    return [d async for d in engine.deltas(spec, stream=True)]


def test_stream_in_chunks_equals_one_call(engine: CompletionEngine) -> None:
    engine.calls.clear()  # type: ignore[attr-defined]
    whole = asyncio.run(engine.complete(_spec(engine)))
    assert engine.calls == [20]  # type: ignore[attr-defined]  # no stop strings: one backend call
    engine.calls.clear()  # type: ignore[attr-defined]
    deltas = asyncio.run(_collect(engine, _spec(engine)))
    streamed = "".join(d.text for d in deltas)
    assert streamed == whole.text  # greedy continuation reproduces the uninterrupted generation
    assert deltas[-1].finish_reason == whole.finish_reason
    assert all(d.finish_reason is None for d in deltas[:-1])
    assert (whole.finish_reason, whole.completion_tokens) == ("length", 20)
    # 20 tokens in chunks of at most 3: 3*6 + 2 -> 7 backend calls
    assert engine.calls == [3, 3, 3, 3, 3, 3, 2]  # type: ignore[attr-defined]


def test_stop_string_cuts_the_text(engine: CompletionEngine) -> None:
    # Seeded sampling: the same chunks (same request ids) draw the same tokens, so the text with
    # a stop string is the text without it, cut before the stop string's first occurrence.
    never = "\x00never"
    full = asyncio.run(engine.complete(_spec(engine, stop=(never,), temperature=1.0))).text
    assert len(full) >= 8, f"20 tokens decode to at least 8 characters, got {full!r}"
    stop = full[5:7]
    expected = full[: full.find(stop)]
    assert len(expected) <= 5
    cut = asyncio.run(engine.complete(_spec(engine, stop=(stop,), temperature=1.0)))
    assert (cut.text, cut.finish_reason) == (expected, "stop")
    deltas = asyncio.run(_collect(engine, _spec(engine, stop=(stop,), temperature=1.0)))
    assert "".join(d.text for d in deltas) == expected
    assert deltas[-1].finish_reason == "stop"


def test_stream_all_interleaves_every_choice(engine: CompletionEngine) -> None:
    specs = [_spec(engine, max_tokens=5), _spec(engine, max_tokens=7)]

    async def run() -> dict[int, str]:
        texts: dict[int, str] = {0: "", 1: ""}
        async for index, delta in engine.stream_all(specs):
            texts[index] += delta.text
        return texts

    texts = asyncio.run(run())
    whole = asyncio.run(engine.complete_all(specs))
    assert [texts[0], texts[1]] == [whole[0].text, whole[1].text]
    assert whole[0].completion_tokens <= 5 and whole[1].completion_tokens <= 7


def test_batch_chunks_reproduce_the_whole_choice(engine: CompletionEngine) -> None:
    # batch_chunk_tokens (the policy's step batching): a whole non-streamed choice in chunks of 6,
    # each a continuation; greedy, so the text equals the one-call text
    chunked = CompletionEngine(
        engine.generate_one, engine.decode, list(engine.stop_token_ids), chunk_tokens=3,
        batch_chunk_tokens=6,
    )
    spec = _spec(engine)
    whole = asyncio.run(engine.complete(spec))
    engine.calls.clear()  # type: ignore[attr-defined]
    parts = asyncio.run(chunked.complete(spec))
    assert engine.calls == [6, 6, 6, 2]  # type: ignore[attr-defined]  # 20 = 6*3 + 2
    assert (parts.text, parts.finish_reason, parts.completion_tokens) == (
        whole.text, whole.finish_reason, whole.completion_tokens
    )
    engine.calls.clear()  # type: ignore[attr-defined]
    asyncio.run(_collect(chunked, spec))  # a stream keeps its own, finer chunks
    assert engine.calls == [3, 3, 3, 3, 3, 3, 2]  # type: ignore[attr-defined]
