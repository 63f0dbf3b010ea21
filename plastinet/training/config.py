"""``train_config``: train from a parsed model file of ``kind = "training"``.

Schema (TOML, ``schema_version = 1``)::

    schema_version = 1
    name = "assoc_retrieval"
    kind = "training"
    description = "..."
    source = "paper"

    [task]                  # type = "assoc_retrieval" (n_keys, setting, max_queries)
    type = "assoc_retrieval"   #  or "ba_retrieval" (n_pairs)
    n_keys = 20
    setting = 1

    [layer]                 # FastWeightLayer options: rule, feature_map, feature_normalize,
    rule = "delta"          # d_key, d_value, heads, programmer, hidden, beta_scale, form,
    feature_map = "dpfp-1"  # chunk_size, init_scale, initial_state, dtype, seed;
    d_key = 64              # context (ba_retrieval only)
    programmer = "linear"

    [training]              # TrainingSpec: optimizer, lr, momentum, batch_size, max_steps,
    optimizer = "adam"      # eval_every, eval_size, patience, target_loss, clip_norm,
    lr = 1e-3               # diverge_factor, seed

    [quick]                 # optional dotted-key overrides for a fast check, applied by the
    "training.max_steps" = 20   # model-file loader (``--quick``); train_config ignores it
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import xarray as xr

from plastinet.errors import ValidationError
from plastinet.tasks import get_task
from plastinet.training.models import build_model
from plastinet.training.trainer import TrainingSpec, train

__all__ = ["train_config", "TrainResult"]

_TOP = ("schema_version", "name", "kind", "description", "source", "task", "layer", "training",
        "quick")


class TrainResult(NamedTuple):
    """Result of :func:`train_config`: the history and the trained model."""

    history: xr.Dataset
    model: Any


def _table(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    table = cfg.get(name, {})
    if not isinstance(table, dict):
        raise ValidationError("training model", name, table, f"expected a [{name}] table")
    return dict(table)


def train_config(cfg: dict[str, Any], *, out_dir: str | os.PathLike | None = None,
                 progress: bool = True, resume: bool = True) -> TrainResult:
    """Build the task, model and trainer a model-file dict describes, and train.

    Parameters
    ----------
    cfg : dict
        A parsed TOML model file with ``kind = "training"`` (schema in the module docstring).
    out_dir : path, optional
        Checkpoint directory (resumed if it holds a checkpoint of the same model).
    progress : bool
        Show a progress bar.
    resume : bool
        Continue from a checkpoint in ``out_dir``.

    Returns
    -------
    TrainResult
        ``(history, model)``; the history's attrs also hold ``model_name`` and
        ``model_kind`` (``"training"``).

    Raises
    ------
    ValidationError
        For a malformed configuration (the message names the key).
    """
    if not isinstance(cfg, dict):
        raise ValidationError("training model", "cfg", cfg, "expected a dict (a parsed TOML file)")
    unknown = sorted(set(cfg) - set(_TOP))
    if unknown:
        raise ValidationError("training model", unknown[0], cfg[unknown[0]],
                              "known top-level keys: " + ", ".join(_TOP))
    if cfg.get("schema_version") != 1:
        raise ValidationError("training model", "schema_version", cfg.get("schema_version"),
                              "this plastinet reads schema_version = 1")
    if cfg.get("kind") != "training":
        raise ValidationError("training model", "kind", cfg.get("kind"), "expected kind = \"training\"")
    task = get_task(_table(cfg, "task"))
    model = build_model(task, _table(cfg, "layer"))
    spec = TrainingSpec(**_table(cfg, "training"))
    history = train(model, task, spec, out_dir=out_dir, resume=resume, progress=progress)
    history.attrs["model_name"] = str(cfg.get("name", ""))
    history.attrs["model_kind"] = "training"
    return TrainResult(history, model)
