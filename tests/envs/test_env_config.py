"""EnvConfig: one frozen dataclass naming the task env, loadable from YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from k15ray.config import from_mapping
from k15ray.config.env import EnvConfig
from k15ray.envs import write_prompts
from k15ray.types import Prompt


def test_from_yaml_mapping_and_make(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    write_prompts(data, [Prompt(id="a", question="1+1?", answer="2")])
    config = from_mapping(
        EnvConfig, {"env_id": "k15/Math-v0", "data_path": str(data), "env_kwargs": {"max_turns": 2}}
    )
    assert config.make_kwargs() == {"max_turns": 2, "data_path": str(data)}
    env = config.make().unwrapped
    assert [p.id for p in env.prompts] == ["a"] and env.max_turns == 2


def test_validation_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="env.env_id"):
        EnvConfig(env_id=" ")
    with pytest.raises(ValueError, match="env.data_path"):
        EnvConfig(data_path=str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="env.env_kwargs.data_path"):
        EnvConfig(env_kwargs={"data_path": "x"})
    with pytest.raises(ValueError, match="unknown key"):
        from_mapping(EnvConfig, {"envid": "k15/Math-v0"})
