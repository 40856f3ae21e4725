"""k15/Vision-v0: Gymnasium's checker, seeded determinism, the three sources, verify_math."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from PIL import Image

import k15ray.envs  # noqa: F401  (registers k15/Vision-v0)
from k15ray.envs.vision import VisionEnv
from k15ray.types import Prompt


def make(tmp_path: Path, **kwargs: Any) -> VisionEnv:
    kwargs.setdefault("num_prompts", 12)
    kwargs.setdefault("cache_dir", str(tmp_path / "cache"))
    env = gym.make("k15/Vision-v0", **kwargs).unwrapped
    assert isinstance(env, VisionEnv)
    return env


def test_check_env_passes_without_warnings(tmp_path: Path) -> None:
    env = gym.make("k15/Vision-v0", num_prompts=6, cache_dir=str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)  # also re-makes the env for each render mode (ansi, rgb_array)
    assert [str(w.message) for w in caught] == []


def test_observation_space_is_text_and_fixed_size_image(tmp_path: Path) -> None:
    env = make(tmp_path, image_size=(96, 128))
    space = env.observation_space
    assert isinstance(space, spaces.Dict) and set(space.spaces) == {"text", "image"}
    assert isinstance(space["text"], spaces.Text) and "?" in space["text"].character_set
    assert space["image"] == spaces.Box(0, 255, (96, 128, 3), np.uint8)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (96, 128, 3) and obs["image"].dtype == np.uint8
    assert space.contains(obs)


def test_seeded_resets_are_deterministic_across_envs(tmp_path: Path) -> None:
    a, b = make(tmp_path), make(tmp_path)
    for seed in (0, 1, 7):
        (obs_a, info_a), (obs_b, info_b) = a.reset(seed=seed), b.reset(seed=seed)
        assert obs_a["text"] == obs_b["text"] and info_a["prompt_id"] == info_b["prompt_id"]
        assert obs_a["image"].tobytes() == obs_b["image"].tobytes()
    ids = {a.reset(seed=s)[1]["prompt_id"] for s in range(20)}
    assert len(ids) >= 5  # 20 seeds over 12 prompts: not stuck on one


def test_correct_answer_scores_one_and_ends_the_episode(tmp_path: Path) -> None:
    env = make(tmp_path)
    _, info = env.reset(seed=3)
    answer = info["prompt"].answer
    _, reward, terminated, truncated, info = env.step(
        f"Counting carefully, the answer is \\boxed{{{answer}}}."
    )
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["reward_result"].correct and info["source"] in ("synthetic", "rendered")
    env.reset(seed=3)
    _, reward, terminated, _, info = env.step(f"\\boxed{{{int(answer) + 1}}}")
    assert (reward, terminated, info["reward_result"].correct) == (0.0, True, False)


def test_sources_and_weights_shape_the_prompt_set_and_episodes(tmp_path: Path) -> None:
    env = make(tmp_path, source={"synthetic": 3, "rendered": 1}, num_prompts=8)
    tags = [p.tags for p in env.prompts]
    assert (
        sum("synthetic" in t for t in tags) == 6 and sum("rendered" in t for t in tags) == 2
    )  # 8 * 3/4
    drawn = [env.reset(seed=s)[1]["source"] for s in range(200)]
    # P(synthetic) = 3/4: 150 expected of 200, sd = sqrt(200 * 3/4 * 1/4) = 6.1; allow ~4.9 sd
    assert 120 <= drawn.count("synthetic") <= 180
    only = make(tmp_path, source="rendered", kinds=["code"], difficulty=2, num_prompts=4)
    assert all(
        "code" in p.tags and p.difficulty == 2 and p.domain == "vision" for p in only.prompts
    )


def test_records_mix_with_generated_problems(tmp_path: Path) -> None:
    Image.new("RGB", (40, 40), (255, 0, 0)).save(tmp_path / "red.png")
    data = tmp_path / "records.jsonl"
    data.write_text(
        json.dumps(
            {
                "id": "chart-1",
                "question": "What is 6 times 7?",
                "answer": "42",
                "images": ["red.png"],
                "difficulty": 4,
                "tags": ["chart"],
            }
        )
        + "\n"
    )
    env = make(tmp_path, source=["synthetic", "records"], data_path=str(data), num_prompts=4)
    assert len(env.prompts) == 5
    obs, info = env.reset(seed=0, options={"prompt_id": "chart-1"})
    assert info["source"] == "records" and info["difficulty"] == 4
    assert obs["text"] == "What is 6 times 7?"
    assert (obs["image"] == np.array([255, 0, 0], np.uint8)).all()  # 40 x 40 scaled to 256 x 256
    assert env.step("6 * 7 = 42, so the answer is \\boxed{42}")[1] == 1.0


def test_record_with_missing_image_names_file_line_and_field(tmp_path: Path) -> None:
    data = tmp_path / "records.jsonl"
    data.write_text(
        json.dumps({"id": "x", "question": "q", "answer": "1", "images": ["nope.png"]}) + "\n"
    )
    with pytest.raises(
        ValueError,
        match=r"records.jsonl:1: field 'images'\[0\]: image file .*nope.png does not exist",
    ):
        VisionEnv(data_path=data)


def test_user_prompts_are_checked_like_records(tmp_path: Path) -> None:
    bad = Prompt(
        id="p", question="q", answer="1", domain="vision", images=(str(tmp_path / "x.png"),)
    )
    with pytest.raises(ValueError, match=r"prompts\[0\] \(id 'p'\): field 'images'\[0\]"):
        VisionEnv(prompts=[bad])
    env = VisionEnv(prompts=[Prompt(id="t", question="What is 2+2?", answer="4", domain="vision")])
    obs, _ = env.reset(seed=0)
    assert obs["text"] == "What is 2+2?" and (obs["image"] == 255).all()  # no image: white


def test_memory_store_writes_no_files(tmp_path: Path) -> None:
    env = make(tmp_path, image_store="memory", num_prompts=6)
    assert not (tmp_path / "cache").exists()
    assert all(p.images == () for p in env.prompts)
    obs, info = env.reset(seed=1)
    disk = make(tmp_path, num_prompts=6)
    assert [p.id for p in disk.prompts] == [p.id for p in env.prompts]
    assert (
        disk.reset(seed=1)[0]["image"].tobytes() == obs["image"].tobytes()
    )  # same pixels either way


def test_rendered_as_text_gives_the_same_question_in_text(tmp_path: Path) -> None:
    as_image = make(tmp_path, source="rendered", kinds=["code"], num_prompts=3)
    as_text = make(tmp_path, source="rendered", kinds=["code"], num_prompts=3, rendered_as="text")
    for pi, pt in zip(as_image.prompts, as_text.prompts, strict=True):
        assert (pi.id, pi.answer) == (pt.id, pt.answer)
        assert "print(" in str(pt.question) and "print(" not in str(pi.question)
        assert pt.images == () and len(pi.images) == 1
    obs, _ = as_text.reset(seed=0)
    assert (obs["image"] == 255).all()


def test_rgb_array_render_is_the_observation_image(tmp_path: Path) -> None:
    env = make(tmp_path, render_mode="rgb_array")
    obs, _ = env.reset(seed=2)
    assert np.array_equal(env.render(), obs["image"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "photos"}, "use one or more of"),
        ({"source": "records"}, "needs data_path"),
        ({"kinds": ["clocks"]}, "valid kinds are"),
        ({"image_size": (64,)}, r"give \(height, width\)"),
        ({"image_store": "cloud"}, "use 'disk' or 'memory'"),
    ],
)
def test_bad_arguments_say_what_to_fix(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VisionEnv(cache_dir=tmp_path, **kwargs)
