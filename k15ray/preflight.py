"""Checks of what a user gave ``k15ray train`` / ``k15ray sft``, run before any expensive work.

Each check reads only files and registries (no model weights, no Ray, no SFT step) and raises
``k15ray.errors.UserError`` naming the config field, the file (and line) and the fix:

* ``check_run_folder``: ``output_dir`` already holds an RL run and ``--resume`` is not set;
* ``check_env_id``: the env id is known (after ``env.imports`` / ``env.entry_point``);
* ``check_env``: the env can be made with its kwargs: this reads and validates its whole prompt
  file (``k15ray.envs.dataset``: a bad JSON line, a duplicate id, a bad field);
* ``check_sft``: the SFT data file (every record has a question and a response), the accuracy
  check's prompt file, and the starting model (a preset or a model directory);
* ``k15ray.models.check_model_dir``: a model directory's config, weights and tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from k15ray.config.sft import SFTConfig
from k15ray.errors import UserError, user_error
from k15ray.run_layout import RunLayout


def check_run_folder(layout: RunLayout, *, resume: bool) -> None:
    """A new run must not write over an earlier one in the same ``output_dir``."""
    if not resume and layout.holds_run():
        raise UserError(
            f"output_dir {layout.output_dir} already holds a run ({layout.rl}); add --resume to "
            "continue it, or set another output_dir (--set output_dir=...)"
        )


def check_env_id(env_id: str, *, entry_point: str | None = None, imports: Iterable[str] = ()) -> None:
    """The env id is known here once ``env.imports`` are imported and ``env.entry_point`` registered."""
    from k15ray.envs.registration import ensure_registered, is_known, unknown_env_message

    imports = tuple(imports)
    try:
        ensure_registered(env_id, entry_point=entry_point, imports=imports)
    except ValueError as err:
        field = "env.entry_point" if entry_point and not imports else "env.imports" if imports and not entry_point else "env"
        raise user_error(field, err) from err
    if not is_known(env_id):
        raise UserError(f"env.id: {unknown_env_message(env_id)}")


def check_env(env_id: str, env_config: Mapping[str, Any], where: str) -> None:
    """Make the env once, as training will (its id registered, ``check_env_id``); ``where`` is the
    config section of ``env_config`` (``env.config``, ``eval.env_config``) its errors are blamed on."""
    from k15ray.envs.registration import make_env

    try:
        env = make_env(env_id, env_config)
    except ValueError as err:  # the prompt file, or an env argument
        data_path = env_config.get("data_path")
        about_data = data_path is not None and str(Path(data_path)) in str(err)
        raise user_error(f"{where}.data_path" if about_data else where, err) from err
    except TypeError as err:  # gym.make passes env_config as keyword arguments
        if "argument" not in str(err):
            raise
        raise user_error(where, err) from err
    env.close()


def check_sft(config: SFTConfig, prefix: str = "") -> None:
    """The SFT warm-up's inputs; ``prefix`` is where its fields sit in the YAML (``sft.``)."""
    from k15ray.envs.dataset import load_prompts
    from k15ray.jsonl import read_jsonl
    from k15ray.models import PRESETS, check_model_dir
    from k15ray.packing import split_record

    try:
        records = 0
        for line_no, record in read_jsonl(config.data):
            split_record(record, f"{config.data}:{line_no}")
            records += 1
        if not records:
            raise ValueError(f"{config.data}: no SFT records; write one JSON object per line")
    except ValueError as err:
        raise user_error(f"{prefix}data", err) from err
    if config.eval_every_steps:
        try:
            load_prompts(config.eval_data)
        except ValueError as err:
            raise user_error(f"{prefix}eval_data", err) from err
    path = config.model.path
    if not (path in PRESETS and not Path(path).exists()):
        check_model_dir(path, f"{prefix}model.path")
