"""Vision prompts from the paper's three sources (section 2.3.5), for ``k15/Vision-v0``.

* ``synthetic``: procedurally drawn scenes (counting, spatial relations, geometric patterns);
* ``render``: text, code and tables drawn as images (the same question as text and as image);
* ``records``: real-world records (JSONL/Parquet with image paths), validated;
* ``mixture``: the prompt set D as a weighted mixture of the three; ``problem``: shared types.
"""

from k15ray.vision.mixture import VisionDataConfig, build_prompt_set, generate
from k15ray.vision.problem import VisualProblem, fit_image, to_prompt
from k15ray.vision.records import load_records

__all__ = [
    "VisionDataConfig",
    "VisualProblem",
    "build_prompt_set",
    "fit_image",
    "generate",
    "load_records",
    "to_prompt",
]
