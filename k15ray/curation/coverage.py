"""Coverage of a prompt set (paper section 2.1, "Diverse Coverage"): counts per domain, tag and
difficulty, and a bar chart of them, so a user sees the balance of what curation kept.

The paper tags prompts by domain and discipline to balance the set; here the counts read the
``domain``, ``tags`` and ``difficulty`` fields of the project's schema. Tags written by curation
itself (``pass_rate=...``) are not counted as topics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from k15ray.curation.difficulty import PASS_RATE_TAG
from k15ray.types import Prompt


def coverage(prompts: Iterable[Prompt]) -> dict[str, dict[str, int]]:
    """``{"domain": {...}, "tag": {...}, "difficulty": {...}}``: prompts per value, most first.

    >>> coverage([Prompt("a", "q", "1", tags=("x", "pass_rate=0.50"))])["tag"]
    {'x': 1}
    """
    domains: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    levels: Counter[str] = Counter()
    for p in prompts:
        domains[p.domain] += 1
        levels[str(p.difficulty)] += 1
        tags.update(t for t in p.tags if not t.startswith(PASS_RATE_TAG))
    return {
        "domain": dict(domains.most_common()),
        "tag": dict(tags.most_common()),
        "difficulty": dict(sorted(levels.items(), key=lambda kv: int(kv[0]))),
    }


def plot_coverage(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], path: str | Path, max_tags: int = 20
) -> Path:
    """Bar charts of domains, the ``max_tags`` most common tags and difficulty levels, raw pool
    against the curated set, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    panels = ("domain", "tag", "difficulty")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), gridspec_kw={"width_ratios": [1, 2.5, 1]})
    for ax, panel in zip(axes, panels, strict=True):
        keys = list(dict.fromkeys([*before[panel], *after[panel]]))  # curation may add levels
        if panel == "difficulty":
            keys.sort(key=int)
        keys = keys[: max_tags if panel == "tag" else None]
        xs = range(len(keys))
        ax.bar([x - 0.2 for x in xs], [before[panel].get(k, 0) for k in keys], 0.4, label="input")
        ax.bar([x + 0.2 for x in xs], [after[panel].get(k, 0) for k in keys], 0.4, label="curated")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(keys, rotation=60 if panel == "tag" else 0, ha="right" if panel == "tag" else "center", fontsize=8)
        ax.set_title(f"prompts per {panel}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def coverage_table(counts: dict[str, int], total: int) -> list[dict[str, Any]]:
    """Rows ``{"value", "count", "share"}`` of one panel, for the report."""
    return [{"value": k, "count": v, "share": round(v / total, 4) if total else 0.0} for k, v in counts.items()]
