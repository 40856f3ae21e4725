"""Images through the K15 iteration (issue 17): a tiny-vl policy on ``k15/Vision-v0``.

Real Ray, real rollout actor (the transformers backend), partial rollouts (budget 12 of 24
tokens, so every trajectory is continued once with its image), the learner's reference pass and
loss forward with the same pixel values, weight sync back to the actor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from k15_testkit import small_config

from k15ray.batch import NUM_IMAGES, PIXEL_VALUES, build_batch, minibatches, row_pixel_values
from k15ray.models import create_model
from k15ray.models.llava_names import flat_tower_names
from k15ray.types import Segment, Trajectory

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vl_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(create_model("tiny-vl", tmp_path_factory.mktemp("vl") / "tiny-vl", seed=0))


def test_k15_iterates_on_images(ray_session: None, vl_dir: str, tmp_path: Path) -> None:
    config = small_config(vl_dir, tmp_path / "logs", env="k15/Vision-v0").k15_rollouts(
        rollout={"num_workers": 1, "samples_per_prompt": 4, "max_batch_size": 16, "logprobs_every_iterations": 1}
    ).environment(
        "k15/Vision-v0", env_config={"num_prompts": 6, "source": "synthetic", "difficulty": 1, "seed": 0,
                                     "image_store": "memory"})
    algo = config.build_algo()
    seen: list[Any] = []
    rollout = algo._rollout
    generate = rollout.pool.generate

    def recording(requests: Any, params: Any) -> Any:  # what the actor is asked: tokens + images
        seen.extend(requests)
        return generate(requests, params)

    rollout.pool.generate = recording
    try:
        results = [algo.train() for _ in range(3)]
        exported = algo.export_policy(tmp_path / "exported")
    finally:
        algo.stop()
    image_token = 126  # tiny-vl's <image>
    assert seen and all(len(r.images) == 1 and r.images[0].ndim == 3 for r in seen)
    assert all(r.token_ids.count(image_token) == 36 for r in seen)
    continued = [r for r in seen if not r.request_id.endswith(":0")]  # a second segment: the image again
    assert continued, "partial rollouts should continue some trajectories"
    trained = [r for r in results if r.get("loss/optimizer_steps", 0) > 0]
    assert trained and all(np.isfinite(r["loss/total"]) for r in trained)
    assert results[-1]["rollout/policy_version"] >= 1  # the learner's weights went back to the actor
    # The learner scores each trajectory with its own image: its reference log-probs match what the
    # rollout backend reported while sampling with that image (a learner that dropped or mixed up
    # the images would differ by far more: the vision tokens change every logit).
    gaps = [r["loss/rollout_logp_gap_max"] for r in trained]
    assert all(0 <= g < 1e-3 for g in gaps), gaps
    assert flat_tower_names(exported) == []  # saved with LLaVA's weight names, which vLLM loads


def test_batch_carries_each_rows_images_through_minibatches() -> None:
    dark, light = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 200, np.uint8)

    def traj(pid: str, images: tuple[Any, ...]) -> Trajectory:
        t = Trajectory(pid, 0, (1, 2, 3), images=images)
        t.segments.append(Segment((4, 5), (), 0))
        t.finish_reason = "stop"
        return t

    def pixel_fn(images: Any) -> np.ndarray:  # (n, 3, 2, 2): each image's mean brightness
        return np.stack([np.full((3, 2, 2), float(i.mean())) for i in images])

    groups = [[traj("a", (dark,)), traj("a", (dark,))], [traj("b", ())], [traj("c", (light, dark))]]
    correct = [[True, False], [True], [False]]
    batch = build_batch(groups, correct, "all", 0, pixel_fn=pixel_fn)
    assert batch[PIXEL_VALUES].shape == (4, 2, 3, 2, 2) and batch[NUM_IMAGES].tolist() == [1, 1, 0, 2]
    assert row_pixel_values(batch).shape == (4, 3, 2, 2)  # 1 + 1 + 0 + 2 images, in row order
    assert row_pixel_values(batch, slice(2, 3)) is None  # the text-only row
    expected = {1: [0.0], 2: [200.0, 0.0], 0: []}  # by image count: group a, c, b
    for mb in minibatches(batch, 3, np.random.default_rng(0)):
        for row, n in enumerate(mb[NUM_IMAGES].tolist()):  # every row keeps exactly its own images
            assert [float(mb[PIXEL_VALUES][row, j].mean()) for j in range(n)] == expected[n]
    with pytest.raises(ValueError, match="pixel_fn"):
        build_batch(groups, correct, "all", 0)


def test_freeze_vision_tower_trains_all_but_the_tower(ray_session: None, vl_dir: str, tmp_path: Path) -> None:
    """learner.freeze_vision_tower: the tower's weights take no gradient and are not in the
    optimizer, every other weight is; iterations run; a text-only policy is refused by name."""
    from transformers import AutoModelForCausalLM

    from k15ray.algorithms.learner import freeze_vision_tower
    from k15ray.errors import UserError

    def trainable(learner: Any) -> dict[str, tuple[bool, bool]]:  # name -> (requires_grad, in the optimizer)
        stepped = {id(p) for opt in learner._named_optimizers.values() for g in opt.param_groups for p in g["params"]}
        return {name: (p.requires_grad, id(p) in stepped) for name, p in learner.policy.named_parameters()}

    config = small_config(vl_dir, tmp_path / "logs", env="k15/Vision-v0", freeze_vision_tower=True).environment(
        "k15/Vision-v0", env_config={"num_prompts": 6, "source": "synthetic", "difficulty": 1, "seed": 0,
                                     "image_store": "memory"})
    algo = config.build_algo()
    try:
        results = [algo.train() for _ in range(2)]  # budget 12 of 24 tokens: the second finishes some
        flags = algo._on_learner(trainable)
    finally:
        algo.stop()
    assert any(r.get("loss/optimizer_steps", 0) > 0 for r in results)
    tower = {name: f for name, f in flags.items() if "vision_tower." in name}
    rest = {name: f for name, f in flags.items() if "vision_tower." not in name}
    assert len(tower) > 20 and set(tower.values()) == {(False, False)}
    assert any("language_model." in n for n in rest) and set(rest.values()) == {(True, True)}
    text_dir = create_model("tiny", tmp_path / "tiny")
    with pytest.raises(UserError, match="freeze_vision_tower: the policy has no vision tower"):
        freeze_vision_tower(AutoModelForCausalLM.from_pretrained(str(text_dir)))
