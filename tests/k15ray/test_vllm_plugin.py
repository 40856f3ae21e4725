"""The vLLM general plugin: installed as an entry point, and it gives vLLM 0.26 the Pixtral name it imports."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import torch

from k15ray.rollout.vllm_plugin import position_ids_in_meshgrid, register


def test_the_plugin_is_an_installed_vllm_general_plugin() -> None:
    """vLLM finds general plugins by this entry-point group in every process it starts."""
    found = {ep.name: ep.value for ep in entry_points(group="vllm.general_plugins")}
    assert found.get("k15ray") == "k15ray.rollout.vllm_plugin:register"
    assert entry_points(group="vllm.general_plugins", name="k15ray")[0].load() is register


def test_register_makes_vllm_026s_pixtral_import_work() -> None:
    """The exact import of vllm/model_executor/models/pixtral.py line 18, in a fresh interpreter."""
    line = ("from transformers.models.pixtral.modeling_pixtral import PixtralRotaryEmbedding, apply_rotary_pos_emb, "
            "position_ids_in_meshgrid, PixtralVisionRotaryEmbedding")
    check = f"{line}; assert PixtralRotaryEmbedding is PixtralVisionRotaryEmbedding; print('ok')"
    bare = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert bare.returncode != 0 and "PixtralRotaryEmbedding" in bare.stderr  # what vLLM 0.26 meets
    plugged = subprocess.run(
        [sys.executable, "-c", f"from k15ray.rollout.vllm_plugin import register; register(); {check}"],
        capture_output=True, text=True,
    )
    assert plugged.returncode == 0, plugged.stderr
    assert plugged.stdout.strip() == "ok"


def test_position_ids_in_meshgrid_numbers_patches_row_major_per_image() -> None:
    """Two patch grids, 2 x 3 and 1 x 2, in a 4-wide frame: ids row * 4 + col, image after image."""
    grids = [torch.zeros(8, 2, 3), torch.zeros(8, 1, 2)]
    assert position_ids_in_meshgrid(grids, max_width=4).tolist() == [0, 1, 2, 4, 5, 6, 0, 1]
