"""The long-CoT supervised fine-tuning warm-up (paper section 2.2).

"After performing a lightweight SFT on this warm-up dataset, we effectively prime the model to
internalize these reasoning strategies." ``train_sft`` fine-tunes any causal-LM directory (or a
built-in preset, built from scratch) on (question, long-CoT response) pairs:

    L(theta) = - (1 / |R|) * sum_{(x, z, y) in batch} sum_{t in response} log pi_theta(w_t | x, w_<t)

where R is the set of response tokens (thinking z, answer y and EOS) of the optimizer step's
examples: the prompt x carries no loss. A micro-batch holds the examples of ``batch_size`` packed
rows of ``seq_len`` tokens, laid out one example per row (``batching: padded``, the default) or as
the packed rows with a block-diagonal mask (``packed``): no attention across examples either way
(``k15ray.packing``). The learning rate warms up linearly for ``warmup_steps``,
then follows a cosine decay to ``min_lr_ratio * lr``; the decay's clock is the fraction of the run
done, measured in steps, minutes or epochs, whichever limit is set and nearest, so a run limited
by wall-clock time still ends at the low learning rate.

Checkpoints are Hugging Face directories ``out_dir/checkpoint-STEP`` (model, tokenizer,
``trainer_state.json``, ``optimizer.pt``), written atomically; a new run with the same
``out_dir`` resumes from the newest one (weights, optimizer, step, elapsed time; the data order
is a function of the step, so it continues where it stopped). An interrupted run (Ctrl-C) saves a
checkpoint first. The final model is ``out_dir/final``.

With ``eval_data``, ``eval_every_steps`` and ``stop_at_accuracy``, the greedy accuracy on the first
``eval_num_prompts`` prompts of ``eval_data`` is checked every ``eval_every_steps`` steps (logged as
``eval_greedy_accuracy``) and training stops once it reaches ``stop_at_accuracy``: the quick-start
stops its warm-up early on purpose, at a model that solves some problems, so that RL has room.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer

from k15ray.config.sft import SFTConfig
from k15ray.models import PRESETS, create_model, is_model_dir, save_tokenizer
from k15ray.packing import IGNORE_INDEX, MicroBatch, StepBatches, load_examples

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
METRICS_FILE = "metrics.jsonl"


def learning_rate(config: SFTConfig, step: int, progress: float) -> float:
    """lr at optimizer step ``step`` (0-based): linear warm-up, then cosine decay by ``progress``.

    lr_t = lr * (t + 1) / W for t < W; afterwards
    lr_t = lr * (m + (1 - m) * (1 + cos(pi * p)) / 2), p = progress in [0, 1], m = min_lr_ratio.
    """
    return warmup_cosine(config.lr, step, config.warmup_steps, progress, config.min_lr_ratio)


def warmup_cosine(lr: float, step: int, warmup_steps: int, progress: float, min_lr_ratio: float) -> float:
    """The schedule of ``learning_rate`` without a config: ``lr`` warmed up linearly over
    ``warmup_steps``, then decayed by cosine to ``min_lr_ratio * lr`` as ``progress`` goes 0 -> 1."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    p = min(max(progress, 0.0), 1.0)
    return lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def run_progress(config: SFTConfig, step: int, elapsed_s: float, epochs: float) -> float:
    """Fraction of the run done: the largest of steps, minutes and epochs against their limits."""
    fractions = [0.0]
    if config.max_steps:
        fractions.append(step / config.max_steps)
    if config.max_minutes:
        fractions.append(elapsed_s / 60.0 / config.max_minutes)
    if config.max_epochs:
        fractions.append(epochs / config.max_epochs)
    return max(fractions)


def checkpoints(out_dir: Path) -> list[Path]:
    """Complete checkpoints in ``out_dir``, oldest first."""
    found = [p for p in out_dir.glob("checkpoint-*") if (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def _start_dir(config: SFTConfig, out_dir: Path) -> Path:
    """The model directory to start from: a given HF dir, or a preset built into out_dir/init."""
    path = config.model.path
    if path in PRESETS and not Path(path).exists():
        init = out_dir / "init"
        if not is_model_dir(init):
            create_model(path, init, seed=config.seed)
        return init
    if not is_model_dir(path):
        raise ValueError(
            f"model.path={path!r} is neither a preset {sorted(PRESETS)} nor a Hugging Face model "
            "directory (no config.json there); pass a preset name or a save_pretrained directory"
        )
    return Path(path)


def _save(model: Any, tokenizer: Any, optimizer: Any, state: dict[str, Any], target: Path) -> None:
    """Write a checkpoint atomically: into a temp dir, then rename."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    save_tokenizer(tokenizer, tmp)
    if optimizer is not None:
        torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def _prune(out_dir: Path, keep: int) -> None:
    if keep > 0:
        for old in checkpoints(out_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)


def step_batches(config: SFTConfig, tokenizer: Any) -> StepBatches:
    """The micro-batches of ``config``'s data (``sft.batching``, ``seq_len``, ``batch_size``, seed)."""
    examples = load_examples(config.data, tokenizer)
    return StepBatches(examples, config.batching, config.seq_len, config.batch_size, config.seed)


def _micro_batches(batches: StepBatches, config: SFTConfig, step: int, pad_id: int) -> list[MicroBatch]:
    """The micro-batches of optimizer step ``step``: a pure function of the step, so a resumed run
    sees the same data order."""
    return [mb for m in range(config.grad_accum) for mb in batches.tensors(step * config.grad_accum + m, pad_id)]


def _train_step(
    model: Any,
    optimizer: Any,
    micro_batches: list[MicroBatch],
    config: SFTConfig,
    lr: float,
) -> tuple[float, int]:
    """One optimizer step over the accumulated micro-batches; returns (mean loss, response tokens).

    Each micro-batch's summed token loss is divided by the response-token count of the WHOLE
    step, so accumulation gives exactly the loss of one big batch.
    """
    device = next(model.parameters()).device
    n_tokens = sum(int((mb[2] != IGNORE_INDEX).sum()) for mb in micro_batches)
    total = 0.0
    for input_ids, positions, targets, mask in micro_batches:
        logits = model(
            input_ids=input_ids.to(device),
            position_ids=None if positions is None else positions.to(device),
            attention_mask=None if mask is None else mask.to(device),  # packed: (B, 1, T, T)
            use_cache=False,
        ).logits  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(
            logits.float().flatten(0, 1),
            targets.to(device).flatten(),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        ) / max(n_tokens, 1)
        loss.backward()
        total += float(loss.detach())
    if config.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total, n_tokens


AccuracyFn = Callable[[Any, Any], float]  # (model, tokenizer) -> greedy accuracy in [0, 1]


def greedy_accuracy_fn(config: SFTConfig) -> AccuracyFn:
    """The default check: greedy accuracy on the first ``eval_num_prompts`` prompts of ``eval_data``
    (``k15ray.evaluation.evaluate``, the env's reward)."""
    from k15ray.envs.dataset import load_prompts
    from k15ray.evaluation import evaluate

    prompts = load_prompts(config.eval_data)[: config.eval_num_prompts]
    if not prompts:
        raise ValueError(f"eval_data {config.eval_data}: no prompts; give a prompt file with answers")

    def accuracy(model: Any, tokenizer: Any) -> float:
        report = evaluate(model, tokenizer, prompts, k=0, max_new_tokens=config.eval_max_new_tokens,
                          batch_size=len(prompts))
        return float(report.greedy_accuracy or 0.0)

    return accuracy


def _stop(config: SFTConfig, step: int, elapsed_s: float, epochs: float) -> bool:
    return bool(
        (config.max_steps and step >= config.max_steps)
        or (config.max_minutes and elapsed_s >= config.max_minutes * 60.0)
        or (config.max_epochs and epochs >= config.max_epochs)
    )


def _load(config: SFTConfig, out_dir: Path) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(model, tokenizer, optimizer, state) from the newest checkpoint, else from the start model."""
    existing = checkpoints(out_dir)
    source = existing[-1] if existing else _start_dir(config, out_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    model = AutoModelForCausalLM.from_pretrained(
        str(source), dtype=getattr(torch, config.model.dtype)
    )
    model.to(torch.device(config.model.device))  # type: ignore[arg-type]  # in place
    model.train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    state: dict[str, Any] = {"step": 0, "elapsed_s": 0.0, "tokens": 0}
    if existing:  # resume: weights above, optimizer moments and counters here
        state = json.loads((source / STATE_FILE).read_text())
        optimizer.load_state_dict(torch.load(source / OPTIMIZER_FILE, weights_only=True))
    return model, tokenizer, optimizer, state


def _save_due(config: SFTConfig, state: dict[str, Any], last_save_s: float) -> bool:
    by_steps = config.save_every_steps and state["step"] % config.save_every_steps == 0
    by_time = config.save_every_minutes and (
        state["elapsed_s"] - last_save_s >= config.save_every_minutes * 60
    )
    return bool(by_steps or by_time)


def _log_step(config: SFTConfig, out_dir: Path, state: dict[str, Any], loss: float, lr: float, n_tokens: int) -> None:
    """Append the step's figures to ``metrics.jsonl`` every ``log_every_steps`` steps (and step 1)."""
    if state["step"] % config.log_every_steps == 0 or state["step"] == 1:
        _log(out_dir, {"step": state["step"], "elapsed_s": round(state["elapsed_s"], 3), "loss": loss,
                       "lr": lr, "response_tokens": n_tokens, "tokens": state["tokens"]})


def train_sft(config: SFTConfig, progress: bool = True, accuracy_fn: AccuracyFn | None = None) -> Path:
    """Run (or resume) SFT as configured; returns the final model directory ``out_dir/final``.

    ``accuracy_fn(model, tokenizer) -> float`` replaces the default accuracy check (greedy accuracy
    on ``eval_data``) used with ``eval_every_steps``."""
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, tokenizer, optimizer, state = _load(config, out_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batches = step_batches(config, tokenizer)
    bar = tqdm(total=config.max_steps or None, initial=state["step"], disable=not progress, desc="sft")
    last_save_s = state["elapsed_s"]
    if config.eval_every_steps and accuracy_fn is None:
        accuracy_fn = greedy_accuracy_fn(config)

    def save() -> None:
        nonlocal last_save_s
        _save(model, tokenizer, optimizer, state, out_dir / f"checkpoint-{state['step']}")
        _prune(out_dir, config.keep_checkpoints)
        last_save_s = state["elapsed_s"]

    try:
        while True:
            epochs = batches.epochs(state["step"] * config.grad_accum)
            if state.get("accuracy_reached") or _stop(config, state["step"], state["elapsed_s"], epochs):
                break
            t0 = time.perf_counter()
            progress_fraction = run_progress(config, state["step"], state["elapsed_s"], epochs)
            lr = learning_rate(config, state["step"], progress_fraction)
            micro = _micro_batches(batches, config, state["step"], pad_id)
            loss, n_tokens = _train_step(model, optimizer, micro, config, lr)
            dt = time.perf_counter() - t0
            step_tokens = sum(batches.tokens(state["step"] * config.grad_accum + m) for m in range(config.grad_accum))
            state["step"] += 1
            state["elapsed_s"] += dt
            state["tokens"] += step_tokens
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{step_tokens / dt:.0f}")
            _log_step(config, out_dir, state, loss, lr, n_tokens)
            if accuracy_fn is not None and state["step"] % config.eval_every_steps == 0:
                line = _check_accuracy(config, accuracy_fn, model, tokenizer, state, out_dir)
                if progress:
                    bar.write(line)
            if _save_due(config, state, last_save_s):
                save()
    except KeyboardInterrupt:
        save()  # nothing trained is lost; a new run resumes from here
        raise
    finally:
        bar.close()
    newest = checkpoints(out_dir)
    if not newest or newest[-1].name != f"checkpoint-{state['step']}":
        save()
    final = out_dir / "final"
    _save(model, tokenizer, None, state, final)
    return final


def _check_accuracy(
    config: SFTConfig, accuracy_fn: AccuracyFn, model: Any, tokenizer: Any, state: dict[str, Any], out_dir: Path
) -> str:
    """Run the accuracy check, log it, mark ``state`` when the target is reached; a progress line."""
    acc = accuracy_fn(model, tokenizer)
    model.train()
    _log(out_dir, {"step": state["step"], "eval_greedy_accuracy": acc})
    state["accuracy_reached"] = bool(config.stop_at_accuracy and acc >= config.stop_at_accuracy)
    stop = " (target reached: stopping)" if state["accuracy_reached"] else ""
    return f"sft step {state['step']}: greedy accuracy {acc:.2f}{stop}"


def _log(out_dir: Path, record: dict[str, Any]) -> None:
    with (out_dir / METRICS_FILE).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
