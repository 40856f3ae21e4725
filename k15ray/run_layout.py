"""The folder of one ``k15ray train`` run: every path the job, the run loop and the tools read.

::

    <output_dir>/
        config.json          the experiment as it ran (sections of the YAML, defaults filled in)
        data/                generated splits: train.jsonl, heldout.jsonl, sft.jsonl
        sft/                 the SFT warm-up (k15ray.sft); sft.done names its final model
        before.json          held-out figures of the starting policy
        rl/                  K15's logdir
            history.jsonl    one row of metrics per iteration (direct mode)
            tb/              TensorBoard event files (direct mode)
            checkpoint/      RLlib checkpoint (direct mode), with policy/ inside
            tune/            Tune's experiment folder (run.use_tune); trial checkpoints hold policy/
            policy/          the final policy, a Hugging Face directory (direct mode)
        curves.png, summary.json
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

POLICY_DIR = "policy"
"""Inside every K15 checkpoint: the policy as a Hugging Face directory (``K15.save_to_path``)."""


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run under ``output_dir`` (see the module docstring)."""

    output_dir: Path

    @classmethod
    def of(cls, output_dir: str | Path) -> RunLayout:
        """The layout under ``output_dir``, made absolute (pyarrow, behind RLlib's checkpoints,
        rejects relative paths)."""
        return cls(Path(output_dir).resolve())

    @property
    def config_json(self) -> Path:
        return self.output_dir / "config.json"

    @property
    def data(self) -> Path:
        return self.output_dir / "data"

    @property
    def sft(self) -> Path:
        return self.output_dir / "sft"

    @property
    def sft_done(self) -> Path:
        return self.output_dir / "sft.done"

    @property
    def before_json(self) -> Path:
        return self.output_dir / "before.json"

    @property
    def summary_json(self) -> Path:
        return self.output_dir / "summary.json"

    @property
    def curves_png(self) -> Path:
        return self.output_dir / "curves.png"

    @property
    def rl(self) -> Path:
        return self.output_dir / "rl"

    @property
    def history(self) -> Path:
        return self.rl / "history.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.rl / "tb"

    @property
    def checkpoint(self) -> Path:
        return self.rl / "checkpoint"

    @property
    def tune(self) -> Path:
        return self.rl / "tune"

    @property
    def policy(self) -> Path:
        return self.rl / POLICY_DIR

    @property
    def checkpoint_saved(self) -> bool:
        """Whether ``checkpoint/`` holds an RLlib checkpoint (direct mode) that ``--resume`` restores."""
        return (self.checkpoint / "algorithm_state.pkl").is_file()

    def holds_run(self) -> bool:
        """Whether an RL run (direct or Tune) was started here before."""
        return self.history.exists() or self.tune.exists() or self.checkpoint.exists()
