"""Benchmark ``vision_rl``: a vision-language policy learns from images, by SFT and then K15 (issue 17).

Task: ``k15/Vision-v0``, synthetic ``counting`` problems at difficulty 1 ("How many shapes are in
the image?", 2 to 5 shapes; answers 2..5, so a policy that ignores the image is right about one
time in four). The built-in ``tiny-vl`` policy (a LLaVA-style model: 48 x 48 images, 36 image
tokens, the tiny Llama) can learn it on 2 CPU cores in minutes; the other kinds and levels ask for
more than it can resolve at 48 pixels (docs/vision.md).

Per seed (``SEEDS``): a train prompt set and a disjoint held-out set (different generator seeds);
``train_vision_sft`` warm-up of ``tiny-vl`` (``SFT_STEPS``), then K15 (mirror descent, the
transformers rollout backend on two workers, images through rollout, reference pass and learner;
``PROMPTS_PER_ITERATION`` prompts x 8 samples, the vision tower frozen) for ``RL_ITERATIONS``
iterations on the train set; held-out pass@1 (``evaluate_vision``: the mean
accuracy of 4 samples at the rollout temperature, the text quick-start's measure) and greedy
accuracy after SFT and after RL, each also with every image replaced by a blank one (the control).
The warm-up stops once greedy accuracy on 100 training prompts reaches 50%, as the text
quick-start's does, so that RL starts from a policy that reads the image some of the time.

value = mean held-out pass@1 gain of RL over the SFT model (points, mean of the seeds);
baseline = the SFT model's held-out pass@1 (points, the same run); ratio = after / before; the
greedy figures beside.
Extra keys: per seed figures, the blank-image controls, minutes, a PNG of the RL curves.
Outputs in ``K15_BENCH_DIR`` (default: a temporary directory). Run: ``python bench/run.py vision_rl``.

``K15_VISION_RL=gpu``: the same run with the K15 iterations on the GPU: the vLLM rollout backend
(bf16, 30% of the GPU, colocated with the learner and asleep while it trains) and the learner on
the GPU, as ``bench/iteration_gpu.py`` runs the text policy; the warm-up SFT and the held-out
evaluations stay the transformers code above (they run on the CPU either way). Extra keys then:
per seed the median seconds per K15 iteration and rollout tokens/s (iteration 0, which starts
the engine's compiled graphs, left out), and the GPU's name.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEEDS = tuple(int(s) for s in os.environ.get("K15_VISION_SEEDS", "0,1").split(","))  # e.g. "0" for one seed
TRAIN_PROMPTS, HELDOUT_PROMPTS = 4000, 200
SFT_STEPS, SFT_LR, SFT_BATCH = int(os.environ.get("K15_VISION_SFT_STEPS", 1200)), 1e-3, 16
# the warm-up stops once greedy accuracy on CHECK_PROMPTS training prompts reaches STOP_AT (checked
# every CHECK_EVERY steps), as the text quick-start's does: RL starts with room to learn
CHECK_PROMPTS, CHECK_EVERY, STOP_AT = 100, 50, float(os.environ.get("K15_VISION_STOP_AT", 0.5))
RL_ITERATIONS = int(os.environ.get("K15_VISION_RL_ITERATIONS", 40))
RL_LR, TEMPERATURE, EVAL_SAMPLES = 1e-4, 1.0, 4  # pass@1: mean of 4 samples at the rollout temperature
PROMPTS_PER_ITERATION = int(os.environ.get("K15_VISION_PROMPTS", 32))  # x 8 samples each
# RL trains the projector and the language model; the SFT'd vision tower stays fixed (LLaVA freezes its
# encoder too): training the tiny tower in RL cost seed 1 its greedy accuracy (docs/vision.md)
FREEZE_TOWER = os.environ.get("K15_VISION_FREEZE_TOWER", "1") == "1"
TASK: dict[str, Any] = {"source": "synthetic", "kinds": ("counting",), "difficulty": 1, "image_store": "memory"}
GPU = os.environ.get("K15_VISION_RL", "cpu") == "gpu"
# CPU: two rollout workers of one thread each (generation and training alternate, so each phase has both cores)
CPU_ROLLOUT: dict[str, Any] = {"num_workers": 2, "num_cpus_per_worker": 1}
GPU_ROLLOUT: dict[str, Any] = {"num_workers": 1, "backend": "vllm", "colocate": True, "dtype": "bfloat16",
                               "gpu_memory_utilization": 0.3}
PERF = {"iteration_s": "perf/seconds_iteration", "rollout_s": "perf/seconds_rollout",
        "rollout_tokens": "rollout/tokens", "rollout_tokens_per_s": "perf/rollout_tokens_per_s"}


def k15_config(model_dir: str, seed: int, logdir: Path) -> Any:
    from k15ray.algorithms import K15Config

    return (
        K15Config()
        .environment("k15/Vision-v0", env_config={**TASK, "num_prompts": TRAIN_PROMPTS, "seed": 10 + seed})
        .policy(model_dir=model_dir)
        .k15_rollouts(
            rollout={"samples_per_prompt": 8, "temperature": TEMPERATURE, "max_batch_size": 128,
                     **(GPU_ROLLOUT if GPU else CPU_ROLLOUT)},
            partial_rollout={"budget_tokens": 40, "max_response_tokens": 40},
            sampling={"prompts_per_iteration": PROMPTS_PER_ITERATION},
        )
        .k15_training(learner={"num_minibatches": 2, "lr": RL_LR, "grad_clip": 1.0, "num_gpus": 1 if GPU else 0,
                               "freeze_vision_tower": FREEZE_TOWER},
                      mirror_descent={"objective": "mirror_descent", "tau": 0.1})
        .debugging(seed=seed)
        .update_from_dict({"k15_logdir": str(logdir)})
    )


def run_seed(seed: int, base: Path) -> dict[str, Any]:
    from k15ray.envs.vision import VisionEnv
    from k15ray.models import create_model
    from k15ray.vision_training import evaluate_vision, train_vision_sft, vision_accuracy_fn

    out = base / f"seed{seed}"
    train = VisionEnv(**TASK, num_prompts=TRAIN_PROMPTS, seed=10 + seed)
    heldout = VisionEnv(**TASK, num_prompts=HELDOUT_PROMPTS, seed=100 + seed)
    train_ids = {p.id for p in train.prompts}
    held = [p for p in heldout.prompts if p.id not in train_ids]  # disjoint by content hash
    t0 = time.perf_counter()
    start = create_model("tiny-vl", out / "tiny-vl", seed=seed)
    check = vision_accuracy_fn(train.prompts[:CHECK_PROMPTS], train.prompt_images)
    sft = train_vision_sft(start, out / "sft", train.prompts, train.prompt_images, steps=SFT_STEPS,
                           batch_size=SFT_BATCH, lr=SFT_LR, seed=seed, check=check, check_every=CHECK_EVERY,
                           stop_at_accuracy=STOP_AT)
    t1 = time.perf_counter()
    def scores(model_dir: Path) -> dict[str, Any]:
        """Held-out pass@1 (sampled) and greedy accuracy, each with the images and with blank ones."""
        return {
            f"{name}{'_blank' if blank else ''}": evaluate_vision(
                model_dir, held, heldout.prompt_images, blank=blank, samples=samples, temperature=TEMPERATURE)
            for name, samples in (("pass_at_1", EVAL_SAMPLES), ("greedy", 0))
            for blank in (False, True)
        }

    before = scores(sft.model_dir)
    print(json.dumps({"seed": seed, "sft_minutes": round((t1 - t0) / 60, 2), "sft_pass_at_1":
                      before["pass_at_1"]["all"]["accuracy"]}), file=sys.stderr, flush=True)
    algo = k15_config(str(sft.model_dir), seed, out / "logs").build_algo()
    curve = []
    try:
        t2 = time.perf_counter()
        for _ in range(RL_ITERATIONS):
            result = algo.train()
            curve.append({k: float(result.get(k, float("nan")))
                          for k in ("reward/accuracy", "rollout/response_len_mean", *PERF.values())})
            print(json.dumps({"seed": seed, "iteration": len(curve) - 1, **curve[-1]}), file=sys.stderr, flush=True)
        rl_seconds = time.perf_counter() - t2
        policy_dir = Path(algo.export_policy(out / "rl"))
    finally:
        algo.stop()
    after = scores(policy_dir)
    figures = {f"{when}_{key}": report["all"]["accuracy"]
               for when, reports in (("sft", before), ("rl", after)) for key, report in reports.items()}
    return {
        "seed": seed, "heldout": len(held),
        "sft": before["pass_at_1"]["all"]["accuracy"], "rl": after["pass_at_1"]["all"]["accuracy"],
        "gain_points": 100 * (after["pass_at_1"]["all"]["accuracy"] - before["pass_at_1"]["all"]["accuracy"]),
        "greedy_gain_points": 100 * (after["greedy"]["all"]["accuracy"] - before["greedy"]["all"]["accuracy"]),
        **figures,
        "by_kind_level": {"sft": before["pass_at_1"], "rl": after["pass_at_1"]},
        "sft_steps": sft.steps, "sft_checks": sft.checks,
        "sft_minutes": round((t1 - t0) / 60, 2), "rl_minutes": round(rl_seconds / 60, 2),
        "sft_final_loss": round(sft.final_loss, 4), "curve": curve,
        # medians over iterations 1.. (iteration 0 also starts the engine's graphs and caches)
        "perf": {name: round(statistics.median(c[key] for c in curve[1:] or curve), 4) for name, key in PERF.items()},
    }


def plot(seeds: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for s in seeds:
        ax.plot([c["reward/accuracy"] for c in s["curve"]], label=f"seed {s['seed']}: train reward accuracy")
    ax.set_xlabel("K15 iteration")
    ax.set_ylabel("accuracy of the rollouts")
    ax.set_title("tiny-vl on k15/Vision-v0 counting (level 1), after SFT")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run() -> dict[str, Any]:
    import ray

    from k15ray.noise import ray_runtime_env

    base = Path(os.environ.get("K15_BENCH_DIR") or tempfile.mkdtemp(prefix="k15-bench-vision-"))
    t0 = time.perf_counter()
    ray.init(num_cpus=max(2, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False,
             configure_logging=False, runtime_env=ray_runtime_env())
    try:
        seeds = [run_seed(seed, base) for seed in SEEDS]
    finally:
        ray.shutdown()
    plot(seeds, base / "vision_rl_curves.png")
    before = sum(s["sft"] for s in seeds) / len(seeds)
    after = sum(s["rl"] for s in seeds) / len(seeds)
    figures = {
        "value": round(100 * (after - before), 2),
        "unit": "points of held-out pass@1 (4 samples at T 1.0) gained by K15 over the SFT model (mean of seeds)",
        "baseline": round(100 * before, 2),
        "ratio": round(after / before, 3) if before > 0 else float("nan"),
        "sft_accuracy": round(before, 4), "rl_accuracy": round(after, 4),
        "greedy_gain_points": round(sum(s["greedy_gain_points"] for s in seeds) / len(seeds), 2),
        **{key: round(sum(s[key] for s in seeds) / len(seeds), 4)
           for key in ("sft_greedy", "rl_greedy", "sft_pass_at_1_blank", "rl_pass_at_1_blank",
                       "sft_greedy_blank", "rl_greedy_blank")},
        "seeds": seeds, "sft_steps": SFT_STEPS, "rl_iterations": RL_ITERATIONS,
        "wall_minutes": round((time.perf_counter() - t0) / 60, 2),
        "curves_png": str(base / "vision_rl_curves.png"),
        "mode": "gpu: vLLM rollouts (bf16, colocated) + GPU learner" if GPU else "cpu: transformers rollouts + CPU learner",
        "seconds_per_iteration": round(statistics.mean(s["perf"]["iteration_s"] for s in seeds), 4),
        "rollout_tokens_per_s": round(statistics.mean(s["perf"]["rollout_tokens_per_s"] for s in seeds), 1),
    }
    if GPU:
        import torch

        figures["device"] = torch.cuda.get_device_name(0)
    (base / "vision_rl.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    print(json.dumps(run()))
