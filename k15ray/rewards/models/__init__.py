"""Model reward models for math (paper section 2.3.5): a value-head RM and a chain-of-thought judge.

Both are ``RewardFn``s (``k15ray.types``) with a batched ``score_batch(prompts, responses)``, load
from Hugging Face directories (the built-in tiny model or any checkpoint), and are trained from
verifier-labelled samples of a policy (``make_rm_examples``). docs/reward_models.md shows how.
"""

from k15ray.rewards.models.cot_judge import CoTJudge, judge_sft_records, train_cot_judge
from k15ray.rewards.models.data import (
    RMExample,
    balance_classes,
    make_rm_examples,
    read_rm_examples,
    write_rm_examples,
)
from k15ray.rewards.models.template import (
    answer_pairs,
    judge_trace,
    parse_verdict,
    rm_input_text,
    value_input_text,
)
from k15ray.rewards.models.value_head import ValueRM, load_value_model, train_value_rm

__all__ = [
    "CoTJudge",
    "RMExample",
    "ValueRM",
    "answer_pairs",
    "balance_classes",
    "judge_sft_records",
    "judge_trace",
    "load_value_model",
    "make_rm_examples",
    "parse_verdict",
    "read_rm_examples",
    "rm_input_text",
    "train_cot_judge",
    "train_value_rm",
    "value_input_text",
    "write_rm_examples",
]
