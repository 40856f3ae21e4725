"""Rating prompts with the SFT model through the Ray rollout actors, resumably (paper 2.1).

Thin adapter (STYLE.md rule 1): ``AnswerProbe`` asks ``k15ray.rollout.actor.RolloutPool`` for n
answers per prompt and scores them with the prompt's verifiable reward (math: ``math_reward``,
code: ``code_reward``); the pure rules that read the scores live in ``k15ray.curation.difficulty``.

``ProbeStore`` is the resume file: one JSON line per (stage, prompt) with the answers' scores and a
fingerprint of the prompt, appended as each chunk finishes; a rerun reads it and asks the model only
about the prompts it lacks. Each answer samples from its own random stream (request id
``stage/prompt id/j``), so a resumed run draws exactly what an uninterrupted one would have drawn.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from k15ray.config.rollout import RolloutConfig
from k15ray.types import GenerationRequest, Prompt, RewardResult, SamplingParams

RewardCallable = Callable[[Prompt, str], RewardResult]
STAGES: tuple[str, ...] = ("hack", "pass_rate")
"""The model's two jobs: no-chain-of-thought tries (easy-to-hack), and the k pass-rate samples."""


def reward_for(domain: str) -> RewardCallable:
    """The verifiable reward of a domain (``math`` or ``code``); ValueError names the others."""
    from k15ray.rewards import code_reward, math_reward

    rewards: dict[str, RewardCallable] = {"math": math_reward, "code": code_reward}
    if domain not in rewards:
        raise ValueError(
            f"domain {domain!r}: curation scores answers with a verifiable reward, known for "
            f"{sorted(rewards)}; filter the input to those domains"
        )
    return rewards[domain]


def fingerprint(prompt: Prompt) -> str:
    """A short hash of what the model is asked and what counts as correct: a cached score whose
    prompt changed since is not reused."""
    payload = json.dumps([prompt.question, prompt.answer, [(t.stdin, t.expected_stdout) for t in prompt.tests]], default=list)
    return hashlib.sha1(payload.encode()).hexdigest()[:12]


def read_complete_lines(path: Path) -> list[dict[str, Any]]:
    """The records of an append-only JSONL file; a last line cut by a kill mid-write is dropped
    from the file too, so that the next append starts on a line of its own."""
    if not path.is_file():
        return []
    text = path.read_text()
    lines = text.splitlines()
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # the cut line: recomputed
            continue
    if text and not text.endswith("\n"):
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


class ProbeStore:
    """The per-prompt scores already computed, kept in a JSONL file (append-only)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.scores: dict[tuple[str, str], tuple[str, list[bool]]] = {}
        for rec in read_complete_lines(self.path):
            self.scores[(rec["stage"], rec["id"])] = (rec["fingerprint"], [bool(c) for c in rec["correct"]])

    def get(self, stage: str, prompt: Prompt, n: int) -> list[bool] | None:
        """The ``n`` scores of ``prompt`` at ``stage``, if stored for this very prompt."""
        hit = self.scores.get((stage, prompt.id))
        if hit is None or hit[0] != fingerprint(prompt) or len(hit[1]) != n:
            return None
        return hit[1]

    def add(self, stage: str, prompts: Sequence[Prompt], results: dict[str, list[bool]]) -> None:
        """Append one chunk's scores (by prompt id) and flush them to disk."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            for prompt in prompts:
                correct = results[prompt.id]
                rec: dict[str, Any] = {"stage": stage, "id": prompt.id, "fingerprint": fingerprint(prompt), "correct": correct}
                f.write(json.dumps(rec) + "\n")
                self.scores[(stage, prompt.id)] = (rec["fingerprint"], list(correct))
            f.flush()


class AnswerProbe:
    """n answers per prompt from the SFT model on Ray rollout actors, each scored 0/1."""

    def __init__(self, model_dir: str | Path, rollout: RolloutConfig) -> None:
        from transformers import AutoTokenizer

        from k15ray.rollout.actor import RolloutPool

        self.rollout = rollout
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(model_dir))
        self.pool = RolloutPool(rollout, model_dir=model_dir)

    def score(
        self,
        stage: str,
        prompts: Sequence[Prompt],
        n: int,
        *,
        temperature: float,
        max_new_tokens: int,
        seed: int,
        template: str = "{question}",
    ) -> dict[str, list[bool]]:
        """``n`` answers to each prompt (its question put into ``template``), each scored by the
        reward of the prompt's domain; a reward that fails scores 0 (``safe_score``)."""
        from k15ray.prompting import chat_messages, encode_prompt, stop_token_ids
        from k15ray.rewards import safe_score

        requests = []
        for prompt in prompts:
            messages = chat_messages(prompt.question)
            last = messages[-1]
            messages[-1] = {**last, "content": template.replace("{question}", last["content"])}
            ids = tuple(encode_prompt(self.tokenizer, messages))
            requests += [GenerationRequest(f"{stage}/{prompt.id}/{j}", ids, max_new_tokens) for j in range(n)]
        params = SamplingParams(
            temperature=temperature, top_p=self.rollout.top_p, stop_token_ids=stop_token_ids(self.tokenizer), seed=seed
        )
        results = self.pool.generate(requests, params)
        by_id = {p.id: p for p in prompts}
        scores: dict[str, list[bool]] = {p.id: [] for p in prompts}
        for req, res in zip(requests, results, strict=True):
            prompt = by_id[req.request_id.split("/", 1)[1].rsplit("/", 1)[0]]
            text = self.tokenizer.decode(list(res.token_ids), skip_special_tokens=True)
            scores[prompt.id].append(bool(safe_score(reward_for(prompt.domain), prompt, text).correct))
        return scores

    def shutdown(self) -> None:
        self.pool.shutdown()
