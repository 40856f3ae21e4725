"""Chat-template prompting and EOS handling on a tiny chat model (``k15ray.prompting``).

The chat model is a 2-layer Llama with a ChatML template, written as GGUF by the test and imported
with ``k15ray.models.gguf_import`` (nothing downloaded). An env with ``system_prompt`` and
``instruction`` puts them around each question and the model's chat template renders them; the
built-in tiny model's env, without them, keeps its plain format. EOS ids come from the model's own
``generation_config.json``: a rollout (the eval path, ``k15ray.evaluation``) and the served policy stop there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_gguf import write_tiny_gguf
from transformers import AutoTokenizer

from k15ray.envs.math_env import MathEnv
from k15ray.prompting import (
    BOXED_ANSWER,
    encode_prompt,
    run_prompt_format,
    stop_token_ids,
    with_prompt_format,
)
from k15ray.types import Prompt

QUESTION = Prompt(id="p1", question="What is 2 + 3?", answer="5")
SYSTEM = "You are a careful math tutor."


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from k15ray.models.gguf_import import import_gguf

    root = tmp_path_factory.mktemp("chat")
    return import_gguf(write_tiny_gguf(root / "tiny.gguf"), root / "hf").out_dir


def _set_eos(model_dir: Path, eos: int | list[int]) -> None:
    path = model_dir / "generation_config.json"
    config = json.loads(path.read_text())
    config["eos_token_id"] = eos
    path.write_text(json.dumps(config))


def test_env_format_goes_through_the_chat_template(chat_model_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(chat_model_dir))
    env = MathEnv(prompts=[QUESTION], system_prompt=SYSTEM, instruction=BOXED_ANSWER)
    ids = encode_prompt(tok, env.prompts[0])
    assert tok.decode(ids) == (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"
        f"<|im_start|>user\nWhat is 2 + 3?\n\n{BOXED_ANSWER}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # the reward still reads the reference answer; the observation shows the messages
    assert env.score(env.prompts[0], r"so \boxed{5}").correct
    obs, _ = env.reset(options={"prompt_id": "p1"})
    assert BOXED_ANSWER in obs and SYSTEM in obs


def test_tiny_model_keeps_its_plain_format(tmp_path: Path) -> None:
    from k15ray.models import create_model

    tok = AutoTokenizer.from_pretrained(str(create_model("tiny", tmp_path / "tiny")))
    env = MathEnv(prompts=[QUESTION])  # no system_prompt / instruction: the quick-start's env
    assert env.prompts[0].question == "What is 2 + 3?"
    assert tok.decode(encode_prompt(tok, env.prompts[0])) == "<|user|>What is 2 + 3?<|end|><|assistant|>"


def test_with_prompt_format_on_messages_keeps_their_system_message() -> None:
    chat = Prompt(id="c", question=({"role": "system", "content": "S"}, {"role": "user", "content": "Q"}), answer="1")
    formatted = with_prompt_format(chat, "other", "I")
    assert formatted.question == ({"role": "system", "content": "S"}, {"role": "user", "content": "Q\n\nI"})
    assert with_prompt_format(QUESTION) is QUESTION


def test_stop_ids_come_from_the_model_config(chat_model_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(chat_model_dir))
    # EOS <|im_end|> = 2 (tokenizer and generation_config), then the end-of-turn <|endoftext|> = 0
    assert stop_token_ids(tok) == (2, 0)
    _set_eos(chat_model_dir, [2, 77])
    try:
        assert stop_token_ids(AutoTokenizer.from_pretrained(str(chat_model_dir))) == (2, 77, 0)
    finally:
        _set_eos(chat_model_dir, 2)


def test_rollout_stops_at_the_config_eos(chat_model_dir: Path) -> None:
    """Greedy decoding of the random model emits some token t first; once generation_config names
    t as an EOS id, the same rollout ends there with finish reason 'stop' after one token."""
    from k15ray.evaluation import evaluate

    def greedy_sample() -> dict[str, object]:
        report = evaluate(str(chat_model_dir), None, [QUESTION], k=0, max_new_tokens=12, batch_size=1)
        return report.samples[0]

    free = greedy_sample()
    assert free["finish_reason"] == "length" and free["response_tokens"] == 12
    model_tok = AutoTokenizer.from_pretrained(str(chat_model_dir))
    first = encode_prompt(model_tok, QUESTION)  # the same prompt ids as the eval path
    from k15ray.rollout.hf import HFBackend
    from k15ray.types import GenerationRequest, SamplingParams

    backend = HFBackend.from_pretrained(str(chat_model_dir))
    (res,) = backend.generate(
        [GenerationRequest("r", tuple(first), 1)], SamplingParams(temperature=0.0, stop_token_ids=(-1,))
    )
    first_token = res.token_ids[0]
    _set_eos(chat_model_dir, [2, first_token])
    try:
        stopped = greedy_sample()
    finally:
        _set_eos(chat_model_dir, 2)
    assert stopped["finish_reason"] == "stop" and stopped["response_tokens"] == 1


def test_served_policy_uses_the_chat_template_and_config_eos(chat_model_dir: Path) -> None:
    from k15ray.config.serve import PolicyServeConfig
    from k15ray.serve.policy_model import load_served_policy

    _set_eos(chat_model_dir, [2, 99])
    try:
        served = load_served_policy(PolicyServeConfig(model_dir=str(chat_model_dir)))
    finally:
        _set_eos(chat_model_dir, 2)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hi"}]
    assert served.decode(served.encode_chat(messages)) == (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert served.stop_token_ids == (2, 99, 0)


def test_eval_reads_the_runs_prompt_format(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"env": {"config": {"system_prompt": SYSTEM, "instruction": BOXED_ANSWER}}, "eval": {}}))
    assert run_prompt_format(config) == (SYSTEM, BOXED_ANSWER)
    assert run_prompt_format(None) == (None, None)
    config.write_text(json.dumps({"env": {"config": {}}, "eval": {}}))
    assert run_prompt_format(config) == (None, None)
