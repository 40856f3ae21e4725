"""Images in chat requests, over real HTTP through Ray Serve: a vision-language policy (``tiny-vl``,
random weights, built here) at ``/vl`` and a text-only one (``tiny``) at ``/text``, in one Serve
instance shared by this module; ``serve.shutdown()`` at the end.

The official ``openai`` client sends OpenAI content parts (``image_url`` with a base64 data URL);
httpx sends the bad ones, each answered 400 before anything is generated.
"""

from __future__ import annotations

import base64
import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from k15ray.config.serve import (
    PolicyServeConfig,
    RewardServeConfig,
    SandboxServeConfig,
    ServeConfig,
)

VL, TEXT = "tiny-vl", "tiny"
PROMPT = "How many circles?"

WHITE = np.full((48, 48, 3), 255, dtype=np.uint8)
NOISE = np.random.default_rng(3).integers(0, 256, size=(48, 48, 3), dtype=np.uint8)  # a seed whose order matters to tiny-vl


def data_url(pixels: np.ndarray, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def ask(*images: np.ndarray) -> list[dict[str, Any]]:
    """One user message: the images, then ``PROMPT``."""
    return [{"role": "user", "content": [*(image_part(data_url(i)) for i in images),
                                         {"type": "text", "text": PROMPT}]}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from k15ray.models import create_model

    root = Path(tmp_path_factory.mktemp("served_vision"))
    return {preset: create_model(preset, root / preset, seed=0) for preset in (VL, TEXT)}


@pytest.fixture(scope="module")
def base_url(ray_session: None, model_dirs: dict[str, Path]) -> Iterator[str]:
    from ray import serve
    from ray.serve.api import RunTarget

    from k15ray.serve.app import policy_app

    port = _free_port()
    apps = []
    for name, preset in (("vl", VL), ("text", TEXT)):
        config = ServeConfig(
            host="127.0.0.1", port=port,
            policy=PolicyServeConfig(
                model_dir=str(model_dirs[preset]), model_name=preset,
                num_cpus=0.5, max_tokens_limit=32, max_n=2, stream_chunk_tokens=4, batch_chunk_tokens=4,
            ),
            rewards=RewardServeConfig(kinds=()), sandbox=SandboxServeConfig(enabled=False),
        )
        apps.append(RunTarget(policy_app(config), name=name, route_prefix=f"/{name}"))
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run_many(apps)
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


@pytest.fixture(scope="module")
def vl(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/vl/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def text(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/text/v1", api_key="unused", max_retries=0, timeout=120)


def greedy(client: openai.OpenAI, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model=VL, messages=messages, max_tokens=8, temperature=0, **kwargs  # type: ignore[arg-type]
    )


# ----------------------------------------------------------------------------- images reach it


def test_chat_with_an_image(vl: openai.OpenAI) -> None:
    out = greedy(vl, ask(WHITE))
    assert out.choices[0].message.role == "assistant" and out.choices[0].message.content
    assert out.usage is not None
    # <|user|> + 36 image tokens + "How many circles?" (17) + <|end|> + <|assistant|> = 1+36+17+1+1
    assert out.usage.prompt_tokens == 56
    assert out.usage.completion_tokens == 8 or out.choices[0].finish_reason == "stop"


def test_the_image_reaches_the_model(vl: openai.OpenAI) -> None:
    white = greedy(vl, ask(WHITE)).choices[0].message.content
    noise = greedy(vl, ask(NOISE)).choices[0].message.content
    assert greedy(vl, ask(WHITE)).choices[0].message.content == white  # greedy repeats exactly
    assert white != noise, (white, noise)  # same text, other pixels: other greedy answer
    # a JPEG data URL decodes to (about) the same white image
    jpeg = [{"role": "user", "content": [image_part(data_url(WHITE, "JPEG")), {"type": "text", "text": PROMPT}]}]
    assert greedy(vl, jpeg).choices[0].message.content == white


def test_the_served_answer_is_the_rollout_backends(vl: openai.OpenAI, model_dirs: dict[str, Path]) -> None:
    """Two images: the server's greedy answer is what ``HFBackend`` gives in-process for the prompt
    the rollouts encode (``encode_vision_prompt``: images first, then the question) with the
    images in the same order; the swapped order answers otherwise (so the order is checked)."""
    from transformers import AutoProcessor

    from k15ray.prompting import encode_vision_prompt, stop_token_ids
    from k15ray.rollout.hf import HFBackend
    from k15ray.types import GenerationRequest, SamplingParams

    backend = HFBackend.from_pretrained(model_dirs[VL])
    processor = AutoProcessor.from_pretrained(str(model_dirs[VL]))
    stops = stop_token_ids(processor.tokenizer)
    ids = encode_vision_prompt(processor, PROMPT, [WHITE, NOISE])
    [result] = backend.generate(
        [GenerationRequest("ref", tuple(ids), 8, images=(WHITE, NOISE))],
        SamplingParams(temperature=0, stop_token_ids=stops),
    )
    tokens = list(result.token_ids)
    tokens = tokens[:-1] if tokens and tokens[-1] in stops else tokens  # the stop token is not text
    expected = processor.tokenizer.decode(tokens, skip_special_tokens=False)
    served = greedy(vl, ask(WHITE, NOISE))
    assert served.usage is not None and served.usage.prompt_tokens == len(ids)
    assert served.choices[0].message.content == expected
    assert greedy(vl, ask(NOISE, WHITE)).choices[0].message.content != expected


def test_images_in_several_messages(vl: openai.OpenAI) -> None:
    def conversation(first: np.ndarray, second: np.ndarray) -> list[dict[str, Any]]:
        return [
            {"role": "user", "content": [image_part(data_url(first)), {"type": "text", "text": "and"}]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "then"}, image_part(data_url(second))]},
        ]

    forward = greedy(vl, conversation(WHITE, NOISE))
    backward = greedy(vl, conversation(NOISE, WHITE))
    assert forward.usage is not None and forward.usage.prompt_tokens > 2 * 36  # both images expanded
    assert forward.choices[0].message.content != backward.choices[0].message.content


def test_n_choices_and_a_stream_carry_the_image(vl: openai.OpenAI) -> None:
    whole = greedy(vl, ask(NOISE)).choices[0].message.content
    both = greedy(vl, ask(NOISE), n=2)
    assert [c.message.content for c in both.choices] == [whole, whole]
    texts = {0: "", 1: ""}
    for chunk in greedy(vl, ask(NOISE), n=2, stream=True):
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == {0: whole, 1: whole}  # chunks of 4 tokens, each sent with the image again


def test_plain_text_chat_still_works_on_both(vl: openai.OpenAI, text: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "2+2?"}]
    for client, model in ((vl, VL), (text, TEXT)):
        out = client.chat.completions.create(model=model, messages=messages, max_tokens=4,  # type: ignore[arg-type]
                                             temperature=0)
        assert out.usage is not None and out.usage.prompt_tokens == 7  # <|user|> 2 + 2 ? <|end|> <|assistant|>
    # text parts alone are the same conversation as the string
    parts = [{"role": "user", "content": [{"type": "text", "text": "2+"}, {"type": "text", "text": "2?"}]}]
    as_parts = text.chat.completions.create(model=TEXT, messages=parts, max_tokens=4, temperature=0)  # type: ignore[arg-type]
    as_string = text.chat.completions.create(model=TEXT, messages=messages, max_tokens=4, temperature=0)  # type: ignore[arg-type]
    assert as_parts.choices[0].message.content == as_string.choices[0].message.content


# ----------------------------------------------------------------------------------- bad input


def _bad(part: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": PROMPT}, part]}]


BAD_REQUESTS = [
    ("vl", VL, _bad(image_part("https://example.com/cat.png")), ["fetches nothing", "data:image/png;base64"]),
    ("vl", VL, _bad(image_part("data:image/png;base64,not*base64!")), ["not valid base64"]),
    ("vl", VL, _bad(image_part("data:image/png;base64," + base64.b64encode(b"plain text").decode())),
     ["not an image", "PNG or JPEG"]),
    ("vl", VL, _bad({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}),
     ["messages[0].content[1]", "'input_audio'", "'text' and 'image_url'"]),
    ("text", TEXT, ask(WHITE), ["messages[0].content[0]", repr(TEXT), "text-only", "vision-language policy"]),
]


@pytest.mark.parametrize(("app", "model", "messages", "words"), BAD_REQUESTS,
                         ids=["http-url", "bad-base64", "not-an-image", "unknown-part", "text-only-policy"])
def test_bad_image_input_is_a_400_before_generation(
    base_url: str, app: str, model: str, messages: list[dict[str, Any]], words: list[str]
) -> None:
    from ray import serve

    policy = serve.get_deployment_handle("Policy", app)
    before = policy.batch_stats.remote().result()
    body = {"model": model, "messages": messages, "max_tokens": 4}
    r = httpx.post(f"{base_url}/{app}/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "messages" and error["type"] == "invalid_request_error"
    for word in words:
        assert word in error["message"], (word, error["message"])
    assert error["message"].count("\n") <= 1
    assert policy.batch_stats.remote().result() == before  # refused before any backend call


def test_the_openai_client_raises_for_an_image_to_a_text_policy(text: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="text-only"):
        text.chat.completions.create(model=TEXT, messages=ask(WHITE), max_tokens=4)  # type: ignore[arg-type]
    # and it keeps serving
    out = text.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "1+1?"}], max_tokens=2)
    assert out.choices[0].finish_reason in ("stop", "length")


def test_decoded_pixels_are_rgb_uint8_and_huge_canvases_are_refused() -> None:
    from k15ray.serve.content_parts import MAX_IMAGE_PIXELS, decode_data_url

    buffer = io.BytesIO()
    Image.new("LA", (30, 20), (128, 255)).save(buffer, format="PNG")  # grey + alpha, 30 wide
    url = f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"
    pixels = decode_data_url(url, "here")
    assert pixels.shape == (20, 30, 3) and pixels.dtype == np.uint8 and int(pixels[0, 0, 0]) == 128
    side = int(MAX_IMAGE_PIXELS**0.5) + 1
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG")  # a few kB of PNG, 16.8 M pixels
    with pytest.raises(ValueError, match="downscale"):
        decode_data_url(f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}", "here")
