"""Curation rules (paper 2.1): format exclusion on examples of each kind, pass-rate buckets, the
easy-to-hack rule, the stored pass rate, coverage, settings errors, and the combined sampler."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from k15ray.config import from_mapping
from k15ray.config.sampling import SamplingConfig
from k15ray.curation.config import CurationConfig
from k15ray.curation.coverage import coverage, plot_coverage
from k15ray.curation.difficulty import (
    difficulty_bucket,
    is_easy_to_hack,
    pass_rate,
    pass_rate_tag,
    stored_pass_rate,
)
from k15ray.curation.formats import question_format
from k15ray.sampling import CurriculumPrioritizedSampler, make_sampler
from k15ray.types import Prompt

MULTIPLE_CHOICE = [
    ("What is 2 + 2?\nA) 3\nB) 4\nC) 5\nD) 6", "B", "option_labels"),
    ("Which planet is largest? (A) Mars (B) Jupiter (C) Venus", "B", "option_labels"),
    ("Which of the following numbers is prime: 4, 6, 7, 9?", "7", "which_of_the_following"),
    ("Pick the correct option for the derivative of x^2.", "2x", "choose_option"),
    ("Compute 3 * 4. Options: 12, 7, 1, 34. Answer with the letter.\n", "a", "answer_choices"),
]
TRUE_FALSE = [
    ("True or false: every even number greater than 2 is a sum of two primes.", "true", "true_or_false"),
    ("Is 91 prime? Answer yes or no.", "no", "yes_or_no"),
    ("Determine whether the statement 2^10 > 1000 is true.", "true", "whether_true"),
    ("17 is prime. (T/F)", "T", "t_f"),
    ("Is the square root of 2 rational?", "False", "answer_true_false"),  # by its answer alone
]
PROOF = [
    ("Prove that there are infinitely many primes.", "infinitely many", "prove_that"),
    ("Show that the sum of two odd numbers is even.", "It is even", "show_that"),
    ("Let n be an integer. Give a proof that n^2 - n is even.", "done", "give_a_proof"),
    ("Explain why the product of three consecutive integers is divisible by 6.", "", "no_checkable_answer"),
]
FREE_FORM = [
    ("What is 12 * 13?", "156"),
    ("Solve for x: 2x + 3 = 11.", "4"),
    ("A train travels 60 km in 1.5 hours. What is its average speed in km/h?", "40"),
    ("How many ways can 5 books be arranged on a shelf?", "120"),
    ("Compute the improvement in percent from 80 to 100.", "25"),  # "improve" is not "prove"
    ("Find the value of a + b if a = 3 and b = 4.", "7"),
]


@pytest.mark.parametrize(
    ("kind", "examples"), [("multiple_choice", MULTIPLE_CHOICE), ("true_false", TRUE_FALSE), ("proof", PROOF)]
)
def test_each_excluded_kind_is_detected(kind: str, examples: list[tuple[str, str, str]]) -> None:
    for question, answer, rule in examples:
        match = question_format(question, answer)
        assert match is not None and (match.kind, match.rule) == (kind, rule), (question, match)


def test_free_form_questions_are_kept_and_chat_questions_are_read() -> None:
    for question, answer in FREE_FORM:
        assert question_format(question, answer) is None, question
    chat = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "True or false: 1 < 2"})
    assert question_format(chat, "true") is not None


def test_pass_rate_and_buckets_hand_computed() -> None:
    assert pass_rate([True, False, True, False, False, False, False, False, False, False]) == 0.2  # 2 / 10
    edges = (0.7, 0.3)
    # difficulty = 1 + #{edges above p}: 0.8 -> 1 + 0; 0.7 -> 1 + 0 (not below 0.7); 0.5 -> 1 + 1; 0.2 -> 1 + 2
    assert [difficulty_bucket(p, edges) for p in (0.8, 0.7, 0.5, 0.3, 0.2, 0.0)] == [1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="no samples"):
        pass_rate([])


def test_easy_to_hack_counts_only_the_first_n_tries() -> None:
    assert is_easy_to_hack([False] * 7 + [True], tries=8)
    assert not is_easy_to_hack([False] * 8 + [True], tries=8)  # the 9th try is beyond N = 8
    assert not is_easy_to_hack([False] * 8, tries=8)


def test_stored_pass_rate_round_trip_and_bad_tag() -> None:
    p = Prompt("a", "q", "1", tags=("x", pass_rate_tag(0.3)))
    assert p.tags[-1] == "pass_rate=0.30" and stored_pass_rate(p) == 0.3
    assert stored_pass_rate(Prompt("b", "q", "1")) is None
    with pytest.raises(ValueError, match="pass_rate=0.30"):
        stored_pass_rate(Prompt("c", "q", "1", tags=("pass_rate=high",)))


def test_coverage_counts_and_chart(tmp_path: Path) -> None:
    prompts = [Prompt(f"p{i}", "q", "1", domain="math" if i < 3 else "code", difficulty=1 + i % 2,
                      tags=("algebra", pass_rate_tag(0.5)) if i % 2 else ("geometry",)) for i in range(5)]
    c = coverage(prompts)
    assert c["domain"] == {"math": 3, "code": 2}
    assert c["tag"] == {"geometry": 3, "algebra": 2}  # pass_rate= tags are not topics
    assert c["difficulty"] == {"1": 3, "2": 2}
    png = plot_coverage(c, coverage([Prompt("z", "q", "1", difficulty=3)]), tmp_path / "c.png")  # a new level
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"bucket_edges": [0.3, 0.7]}, "highest first"),
        ({"exclude_formats": ["essay"]}, "exclude_formats"),
        ({"hack_template": "no placeholder"}, "{question}"),
        ({"min_pass_rate": 0.8, "max_pass_rate": 0.2}, "min <= max"),
        ({"output_format": "csv"}, "output_format"),
    ],
)
def test_bad_settings_name_the_field_and_the_fix(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        from_mapping(CurationConfig, {"input": "x.jsonl", "out_dir": "o", **values})


def test_curriculum_plus_prioritized_weights_the_pool_by_one_minus_success() -> None:
    prompts = [Prompt(f"p{i}", "q", "1", difficulty=1 + i % 2, tags=(pass_rate_tag(r),))
               for i, r in enumerate([0.9, 0.5, 0.2, 0.0])]
    cfg = SamplingConfig(strategy="curriculum+prioritized", curriculum_mode="warmup_then_hard",
                         warmup_iterations=1, hard_difficulty=2, priority_floor=0.05, initial_success="pass_rate")
    s = make_sampler(prompts, cfg, seed=0)
    assert isinstance(s, CurriculumPrioritizedSampler)
    assert s.success.tolist() == [0.9, 0.5, 0.2, 0.0] and s.counts.tolist() == [1, 1, 1, 1]
    # warm-up: all of D, weights 1 - s_i = 0.1, 0.5, 0.8, 1.0 (sum 2.4)
    np.testing.assert_allclose(s.probabilities(), [0.1 / 2.4, 0.5 / 2.4, 0.8 / 2.4, 1.0 / 2.4])
    s.sample(1)
    # then hard only (difficulty >= 2: p1, p3), weights 0.5 and 1.0 (sum 1.5)
    np.testing.assert_allclose(s.probabilities(), [0, 0.5 / 1.5, 0, 1.0 / 1.5])
    drawn = Counter(p.id for _ in range(600) for p in s.sample(1))
    assert set(drawn) == {"p1", "p3"} and drawn["p3"] > drawn["p1"]
    s.update(["p3"], [1.0])  # running mean over the stored observation and the new one: (0 + 1) / 2
    assert s.success[3] == 0.5
    plain = make_sampler(prompts, SamplingConfig(strategy="prioritized"), seed=0)
    assert plain.success.tolist() == [0.0] * 4  # initial_success: none keeps s_i = 0
    with pytest.raises(ValueError, match="initial_success"):
        SamplingConfig(initial_success="maybe")
