"""Prompt-set curation (paper section 2.1): ``k15ray curate``.

* ``formats``: multiple-choice, true/false and proof questions are detected and excluded;
* ``difficulty``: pass rate of the SFT model over k samples -> difficulty bucket; the easy-to-hack
  rule (a correct answer without chain of thought within N tries drops the prompt);
* ``coverage``: prompts per domain, tag and difficulty, and a bar chart;
* ``probe``: the Ray adapter that samples and scores answers through the rollout actors, resumably;
* ``pipeline.curate``: the command's job; ``config.CurationConfig``: its settings.

Test-case generation for code problems (paper 2.3.5) is ``k15ray.testgen``.
"""

from k15ray.curation.config import CurationConfig
from k15ray.curation.difficulty import (
    difficulty_bucket,
    is_easy_to_hack,
    pass_rate,
    stored_pass_rate,
)
from k15ray.curation.formats import FORMAT_KINDS, FormatMatch, question_format

__all__ = [
    "FORMAT_KINDS",
    "CurationConfig",
    "FormatMatch",
    "difficulty_bucket",
    "is_easy_to_hack",
    "pass_rate",
    "question_format",
    "stored_pass_rate",
]
