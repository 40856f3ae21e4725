"""verify_math: equivalent and non-equivalent answer pairs, stated answers (cut-off responses),
units, several boxes, complex numbers, threads, Ray actors, time limits."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from k15ray.rewards import check_math, math_reward, verify_math
from k15ray.rewards.answer import (
    canonical,
    extract_answer,
    fast_verdict,
    list_items,
)
from k15ray.rewards.normalise import normalise_answer
from k15ray.types import Prompt

EQUIVALENT = [
    # forms: fractions, decimals, radicals, factorised polynomials
    ("The answer is \\boxed{\\frac{1}{2}}", "0.5"),
    ("\\boxed{0.5}", "\\frac{1}{2}"),
    ("\\boxed{\\dfrac12}", "1/2"),
    ("\\boxed{\\frac{-1}{2}}", "-0.5"),
    ("\\boxed{(a+2)(a-2)}", "a^2-4"),
    ("\\boxed{a^2 - 4}", "(a-2)(a+2)"),
    ("\\boxed{x^2+2x+1}", "(x+1)^2"),
    ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}"),
    ("\\boxed{\\pi/2}", "\\frac{\\pi}{2}"),
    ("\\boxed{1.5\\times10^{3}}", "1500"),
    ("\\boxed{1,000}", "1000"),
    ("\\boxed{-3}", "-3"),
    # intervals, sets, tuples, equations
    ("\\boxed{[1, 2)}", "[1,2)"),
    ("\\boxed{(-\\infty, 3]}", "(-\\infty,3]"),
    ("\\boxed{x \\in [1,2)}", "[1,2)"),
    ("\\boxed{\\{3, 1, 2\\}}", "\\{1,2,3\\}"),
    ("\\boxed{2, 3}", "\\{2, 3\\}"),
    ("\\boxed{(1, 2)}", "(1,2)"),
    ("\\boxed{x = 3}", "3"),
    ("\\boxed{y = 2x + 1}", "y=1+2x"),
    # units, percentages, currency, degrees, choices
    ("\\boxed{5\\text{ cm}}", "5"),
    ("\\boxed{12 \\text{ apples}}", "12"),
    ("\\boxed{50\\%}", "50\\%"),
    ("\\boxed{50\\%}", "0.5"),
    ("\\boxed{\\$5}", "5"),
    ("\\boxed{90^\\circ}", "90"),
    ("\\boxed{\\text{(B)}}", "B"),
    # where the answer is: markers, the last expression, a repeated box
    ("Answer: 42", "42"),
    ("so the final answer is $\\frac{3}{4}$.", "0.75"),
    ("Thus 2 + 2 = 4", "4"),
    ("The answer is: 007", "7"),
    ("\\boxed{3} and, checking again, \\boxed{3}", "3"),
]

NOT_EQUIVALENT = [
    ("\\boxed{\\frac{1}{3}}", "0.5"),
    ("\\boxed{0.33}", "\\frac{1}{3}"),
    ("\\boxed{(a+2)(a+2)}", "a^2-4"),
    ("\\boxed{x^2+1}", "(x+1)^2"),
    ("\\boxed{\\sqrt{2}}", "2"),
    ("\\boxed{-3}", "3"),
    ("\\boxed{1001}", "1000"),
    ("\\boxed{[1, 2]}", "[1,2)"),  # closed vs half-open interval
    ("\\boxed{(1, 2]}", "[1,2)"),
    ("\\boxed{\\{1, 2\\}}", "\\{1,2,3\\}"),
    ("\\boxed{(2, 1)}", "(1,2)"),  # tuples are ordered
    ("\\boxed{5\\text{ cm}}", "6"),
    ("\\boxed{60\\%}", "0.5"),
    ("\\boxed{\\text{(C)}}", "B"),
    ("Answer: 41", "42"),
    # missing answers
    ("", "42"),
    ("I don't know.", "42"),
    ("\\boxed{}", "42"),
    ("\\boxed{2", "2"),  # unbalanced
    # multiple answers: hedging is wrong even when one candidate is right
    ("\\boxed{3} or maybe \\boxed{4}", "3"),
    ("\\boxed{3, 4}", "3"),
    ("Answer: 3 or 4", "3"),
    ("\\boxed{x = 3 \\text{ or } x = 4}", "3"),
    ("\\boxed{1}\\boxed{2}\\boxed{3}\\boxed{4}\\boxed{5}", "1"),
]


# A response must state its final answer (module docstring of k15ray.rewards.answer); one cut
# off before it is wrong whatever numbers it holds (the last number of a cut sentence used to win)
CUT_OFF = [
    ("First, 3 + 4 = 7 and then we multiply by", "7", False),
    ("Let me compute 2 + 2 = 4. Then", "4", False),
    ("The speed is 80 km/h, so the time", "80", False),
    ("Step 1: 6 * 7 = 42\nStep 2: we now", "42", False),
    ("so x = \\frac{1}{", "\\frac{1}{2}", False),  # unbalanced
    ("so x = 2 +", "2", False),  # a trailing operator
    ("The answer is 7 and then we", "7", False),  # a last "answer" line stopped mid-sentence
    ("So the speed is 80", "80", False),  # "is X" counts only with the period ending it
    # stated answers: a box, "answer", a last line "= X" or "is X."
    ("Thus 2 + 2 = 4", "4", True),
    ("Work.\n\\[\n x = \\frac{1}{2}\n\\]", "0.5", True),
    ("So the speed is 80 km/h.", "80", True),
    ("The answer is 7", "7", True),
    ("Answer: no solution", "\\text{no solution}", True),
    ("**Final Answer**\n\n$42$", "42", True),
    ("The answer is $\\frac{1}{2}$ of the cake.", "0.5", True),
]

# Units and words around a number, degree signs: equal to the bare number, either side
UNITS = [
    ("Answer: 80 km/h", "80", True),
    ("Answer: 8 inches", "8", True),
    ("\\boxed{80\\text{ km/h}}", "80", True),
    ("\\boxed{8\\,\\text{inches}}", "8", True),
    ("\\boxed{\\text{8 inches}}", "8", True),
    ("\\boxed{45^\\circ}", "45", True),
    ("\\boxed{45°}", "45", True),
    ("\\boxed{45^{\\circ}}", "45", True),
    ("Answer: 45°", "45", True),
    ("\\boxed{25 \\text{ degrees}}", "25^\\circ", True),
    ("\\boxed{45}", "45^\\circ", True),
    ("\\boxed{80}", "80 km/h", True),
    ("\\boxed{80}", "80\\text{ km/h}", True),
    ("\\boxed{8 in}", "8 inches", True),
    ("\\boxed{2\\sqrt{3}\\text{ cm}}", "\\sqrt{12}", True),
    ("\\boxed{\\text{9 inches}}", "8", False),
    ("Answer: 45°", "135", False),
    ("\\boxed{81\\text{ km/h}}", "80 km/h", False),
    ("\\boxed{80 m/s}", "80 km/h", False),  # two different known units
    ("\\boxed{2 n}", "2", False),  # a variable, not a unit
]

# Several boxes: a list boxed item by item, an intermediate result boxed before the final one
SEVERAL_BOXES = [
    ("x = \\boxed{2} and x = \\boxed{-3}", "2, -3", True),
    ("x = \\boxed{2} and x = \\boxed{-3}", "-3, 2", True),
    ("x = \\boxed{2} and x = \\boxed{-3}", "\\{2, -3\\}", True),
    ("The roots are\n\\[x = \\boxed{2}\\]\n\\[x = \\boxed{-3}\\]", "-3, 2", True),
    ("x = \\boxed{2}.\n\nThe other root is x = \\boxed{-3}.", "2, -3", True),
    ("The area is \\boxed{12}.\n\nSo the perimeter is 2(3 + 4) = \\boxed{14}.", "14", True),
    ("\\boxed{3}.\n\nWait, 2 + 2 = 4, so the answer is \\boxed{4}.", "4", True),  # last one wins
    ("The area is \\boxed{12}.\n\nSo the perimeter is 2(3 + 4) = \\boxed{14}.", "12", False),
    ("x = \\boxed{2} and x = \\boxed{-3}", "2", False),  # claims a second root
    ("x = \\boxed{2} and x = \\boxed{3}", "2, -3", False),
    ("x = \\boxed{2}", "2, -3", False),  # a root missing
    ("x = \\boxed{2}, \\boxed{-3} or \\boxed{5}", "2, -3", False),  # a root too many
    ("\\boxed{3}.\n\nOr maybe \\boxed{4}.", "4", False),  # hedging across sentences
    ("\\boxed{3}\n\nAlternatively, it could be \\boxed{4}", "4", False),
]

# Complex numbers in any arrangement (latex2sympy reads 4i and \frac{4}{5}i as different i's)
COMPLEX = [
    ("\\boxed{\\frac{3-4i}{5}}", "\\frac{3}{5}-\\frac{4}{5}i", True),
    ("\\boxed{\\frac{3}{5}-\\frac{4}{5}i}", "\\frac{3-4i}{5}", True),
    ("\\boxed{0.6-0.8i}", "\\frac{3-4i}{5}", True),
    ("\\boxed{\\frac{3}{5}-\\frac{4}{5}i}", "0.6-0.8i", True),
    ("\\boxed{3+4i}", "3 + 4 i", True),
    ("\\boxed{\\frac{1+i}{2}}", "\\frac12+\\frac12 i", True),
    ("\\boxed{\\frac{3+4i}{5}}", "\\frac{3}{5}-\\frac{4}{5}i", False),
    ("\\boxed{\\frac{4-3i}{5}}", "0.6-0.8i", False),
    ("\\boxed{3-4i}", "\\frac{3-4i}{5}", False),
    ("\\boxed{\\frac{3}{5}}", "\\frac{3}{5}-\\frac{4}{5}i", False),
]


@pytest.mark.parametrize(("response", "reference", "label"), CUT_OFF + UNITS + SEVERAL_BOXES + COMPLEX)
def test_stated_answers_units_lists_complex(response: str, reference: str, label: bool) -> None:
    assert verify_math(response, reference) is label


def test_cut_off_is_wrong_format() -> None:
    verdict = check_math("First, 3 + 4 = 7 and then we multiply by", "7")
    assert (verdict.status, verdict.kind, verdict.correct) == ("wrong_format", "none", False)
    assert "no stated final answer" in verdict.problem


def test_normalise_answer_and_list_items() -> None:
    assert normalise_answer("80\\text{ km/h}") == ("80", "km/h")
    assert normalise_answer("\\text{8 inches}") == ("8", "inches")
    assert normalise_answer("x = 5 cm") == ("x = 5", "cm")
    assert normalise_answer("45^{\\circ}") == ("45", "")
    assert normalise_answer("50 percent") == ("50\\%", "")
    assert normalise_answer("7 and then we") == ("7 and then we", "")  # a clause, not a unit
    assert normalise_answer("\\frac{3-4i}{5}") == ("\\frac{3-4 i}{5}", "")
    assert normalise_answer("\\text{(B)}") == ("\\text{(B)}", "")
    assert list_items("2, -3") == ["2", "-3"]
    assert list_items("\\{2, -3\\}") == ["2", "-3"]
    assert list_items("x = 2 \\text{ or } x = -3") == ["2", "-3"]
    assert list_items("\\pm 2") == ["2", "-2"]
    assert list_items("(1, 2)") == ["(1, 2)"]  # a tuple or interval is one item
    assert list_items("1,000") == ["1,000"]


@pytest.mark.parametrize(("response", "reference"), EQUIVALENT)
def test_equivalent_pairs(response: str, reference: str) -> None:
    assert verify_math(response, reference) is True


@pytest.mark.parametrize(("response", "reference"), NOT_EQUIVALENT)
def test_non_equivalent_pairs(response: str, reference: str) -> None:
    assert verify_math(response, reference) is False


def test_extraction_rules() -> None:
    assert extract_answer("work... \\boxed{\\frac{1}{2}} done").answers == ("\\frac{1}{2}",)
    assert extract_answer("a \\boxed{x^{2}} b \\fbox{y}").answers == ("x^{2}", "y")
    assert extract_answer("\\boxed{\\{1,2\\}}").answers == ("\\{1,2\\}",)  # \{ is literal
    assert extract_answer("\\boxed 5 apples").answers == ("5",)
    # the LAST marker wins, up to the end of its line; $...$ and the final period are dropped
    found = extract_answer("answer: 1\nThe final answer is $12$.\nThanks")
    assert (found.kind, found.answers) == ("marker", ("12",))
    # else X of a last line "... = X" (or "... is X." with its period)
    tail = extract_answer("line one\n so x = 5  \n\n")
    assert (tail.kind, tail.answers) == ("tail", ("5",))
    assert extract_answer("Work.\n\\[\n x = \\frac{1}{2}\n\\]").answers == ("\\frac{1}{2}",)
    assert extract_answer("So the speed is 80 km/h.").values == ("80",)
    assert extract_answer("So the speed is 80 km/h").kind == "none"  # no period: may go on
    assert extract_answer("  \n ").kind == "none"


def test_canonical_and_fast_verdict() -> None:
    assert canonical(" $\\dfrac{1}{2}$. ") == "\\frac{1}{2}"
    assert canonical("\\left( 1, 2 \\right)") == "(1,2)"
    assert fast_verdict(("007",), "7") is True  # int("007") == 7
    assert fast_verdict(("8",), "7") is False
    assert fast_verdict(("7", "8"), "7") is False  # one wrong candidate: wrong
    assert fast_verdict(("0.5",), "1/2") is None  # needs math-verify


def test_fast_path_and_verdict_cache_skip_math_verify() -> None:
    assert check_math("\\boxed{12}", "12").via == "fast"
    first = check_math("thus \\boxed{\\frac{7}{8}}", "0.875")
    again = check_math("so, again: \\boxed{\\frac{7}{8}}", "0.875")  # same answer, same reference
    assert (first.via, first.correct) == ("math-verify", True)
    assert (again.via, again.correct) == ("cache", True)


def test_math_reward_statuses() -> None:
    prompt = Prompt(id="p", question="What is 6*7?", answer="42")
    ok = math_reward(prompt, "6*7 = \\boxed{42}")
    assert (ok.score, ok.correct, ok.status, ok.details["answer"]) == (1.0, True, "ok", "42")
    wrong = math_reward(prompt, "\\boxed{41}")
    assert (wrong.score, wrong.correct, wrong.status) == (0.0, False, "ok")
    assert math_reward(prompt, "").status == "wrong_format"
    assert math_reward(prompt, "\\boxed{}").status == "wrong_format"


def test_bad_arguments_raise() -> None:
    with pytest.raises(TypeError, match="two strings"):
        verify_math(42, "42")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout_s"):
        verify_math("1", "1", timeout_s=0)


def test_safe_from_threads() -> None:
    # math-verify alone raises in a non-main thread (signal.alarm); ours runs in worker processes
    pairs = [(f"\\boxed{{\\frac{{{n}}}{{2}}}}", f"{n / 2}") for n in range(1, 13)]
    pairs += [(f"\\boxed{{\\frac{{{n}}}{{3}}}}", f"{n / 2}") for n in range(1, 13)]
    expected = [True] * 12 + [n / 3 == n / 2 for n in range(1, 13)]  # all False: n/3 != n/2, n >= 1
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda p: verify_math(*p), pairs))
    assert got == expected
    assert threading.current_thread() is threading.main_thread()


PATHOLOGICAL = [
    ("100 KB of text", "x" * 100_000, "5"),
    ("100 KB of math", "1+" * 50_000 + "1", "5"),
    ("100 KB of boxes", "\\boxed{1}" * 11_000, "2"),
    ("deeply nested frac", "\\boxed{" + "\\frac{1}{" * 30 + "2" + "}" * 30 + "}", "5"),
    ("nested frac past the limit", "\\boxed{" + "\\frac{1}{" * 120 + "2" + "}" * 120 + "}", "5"),
    ("nesting past the limit", "\\boxed{" + "{" * 5000 + "}" * 5000 + "}", "5"),
    ("a power tower", "\\boxed{9^{9^{9^{9}}}}", "5"),
    ("a huge power", "\\boxed{2^{10^{10}}} ", "5"),
]


@pytest.mark.parametrize(("name", "response", "reference"), PATHOLOGICAL, ids=[p[0] for p in PATHOLOGICAL])
def test_pathological_inputs_return_false_within_the_limit(
    name: str, response: str, reference: str
) -> None:
    # an uncached check first, so a worker killed by the previous case has been replaced: the
    # limit bounds the check itself, not a worker's start-up
    den = 3 + [p[0] for p in PATHOLOGICAL].index(name)
    assert verify_math(f"\\boxed{{\\frac{{1}}{{{den}}}}}", str(1 / den))
    timeout_s = 1.0
    start = time.monotonic()
    result = verify_math(response, reference, timeout_s=timeout_s)
    elapsed = time.monotonic() - start
    assert result is False
    assert elapsed < timeout_s + 0.5, f"{name}: {elapsed:.2f} s"


def test_works_again_after_a_timeout() -> None:
    verdict = check_math("\\boxed{9^{9^{9^{9}}}}", "5", timeout_s=0.5)
    assert verdict.status == "timeout" and not verdict.correct
    assert verify_math("\\boxed{\\frac{2}{4}}", "0.5") is True


def test_inside_a_ray_actor(ray_session: None) -> None:
    import ray

    @ray.remote(num_cpus=0)
    class Scorer:
        def score(self, response: str, reference: str) -> bool:
            return verify_math(response, reference)

    @ray.remote(num_cpus=0)
    def score_in_thread(response: str, reference: str) -> bool:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(verify_math, response, reference).result()

    actor = Scorer.options(max_concurrency=4).remote()  # threaded actor: calls off the main thread
    results = ray.get(
        [
            actor.score.remote("\\boxed{(a+2)(a-2)}", "a^2-4"),
            actor.score.remote("\\boxed{a^2+4}", "a^2-4"),
            score_in_thread.remote("\\boxed{[1,2)}", "[1, 2)"),
        ]
    )
    assert results == [True, False, True]
