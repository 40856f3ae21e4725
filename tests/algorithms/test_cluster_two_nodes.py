"""Several nodes: ``k15ray train --address`` attaches to a running two-node Ray cluster.

Ray's own ``ray.cluster_utils.Cluster`` starts a head node (2 CPUs) and a worker node (1 CPU) on
this machine; ``k15ray train`` runs in a process of its own (a driver of that cluster, as after
``ray start --head`` / ``ray start --address``), and its two rollout actors must run on both nodes
(``RolloutPool`` spreads them). The GCS's actor table tells where they ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

TINY_RUN = """
seed: 0
output_dir: {out}
data: {{n_train: 40, n_heldout: 6, levels: [1]}}
sft: {{model: {{path: tiny}}, max_steps: 2, batch_size: 2, seq_len: 256, save_every_steps: 0}}
rollout: {{num_workers: 2, num_cpus_per_worker: 1, samples_per_prompt: 2, max_batch_size: 8}}
partial_rollout: {{budget_tokens: 16, max_response_tokens: 32}}
sampling: {{prompts_per_iteration: 2}}
learner: {{num_minibatches: 1, num_threads: 1}}
eval: {{every_iterations: 0, num_prompts: 2, final_num_prompts: 2, max_new_tokens: 8}}
run: {{iterations: 2, checkpoint_every: 0}}
"""


def test_train_attaches_to_a_two_node_cluster(tmp_path: Path) -> None:
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "include_dashboard": False},
    )
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        config = tmp_path / "tiny.yaml"
        config.write_text(TINY_RUN.format(out=tmp_path / "run"))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_ADDRESS": ""}
        cmd = [
            sys.executable,
            "-m",
            "k15ray.cli",
            "train",
            str(config),
            "--address",
            cluster.address,
        ]
        done = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert summary["iterations"] == 2  # the short run completed on the cluster

        actors = cluster.global_state.actor_table(None).values()
        nodes = {a["Address"]["NodeID"] for a in actors if a["ActorClassName"] == "RolloutWorker"}
        head: Any = cluster.head_node
        assert nodes == {head.node_id, worker.node_id}, nodes  # both nodes ran one
    finally:
        cluster.shutdown()


def test_address_option_is_run_address(tmp_path: Path) -> None:
    """``--address X`` sets ``run.address`` (checked with the one value it conflicts with)."""
    from typer.testing import CliRunner

    from k15ray.cli import app

    config = tmp_path / "run.yaml"
    config.write_text("run: {num_cpus: 2}\n")
    result = CliRunner().invoke(app, ["train", str(config), "--address", "auto"])
    assert result.exit_code == 2, result.output
    assert "run.num_cpus 2 with address: 'auto'" in result.output
