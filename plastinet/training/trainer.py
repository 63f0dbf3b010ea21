"""The training loop: seeded data, optimiser steps, evaluation, early stopping, checkpoints.

Determinism: the initialisation comes from the layer's ``seed``; training batches from
``numpy.random.default_rng([seed, 1])``; the fixed evaluation set from
``default_rng([seed, 2])``. A checkpoint stores the parameters, the optimiser state, the
data generator's state, the history and the early-stopping counters, so that a resumed run
follows the bit-identical trajectory of an uninterrupted one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from plastinet._version import __version__
from plastinet.errors import NonFiniteError, NumericalError, ValidationError
from plastinet.params import Parameter, Spec
from plastinet.results import finalize_dataset, variable
from plastinet.seeds import seed_parameter
from plastinet.training.checkpoint import CheckpointError, checkpoint_exists, load_checkpoint, save_checkpoint
from plastinet.training.optim import Optimizer, clip_grad_norm, make_optimizer

__all__ = ["TrainingSpec", "train"]


class TrainingSpec(Spec):
    """Settings of :func:`train` (the ``[training]`` table of a model file).

    Parameters
    ----------
    optimizer : {"adam", "sgd"}
    lr : float
        Learning rate.
    momentum : float
        SGD momentum (ignored by Adam).
    batch_size : int
        Sequences per step.
    max_steps : int
        Optimiser steps at most.
    eval_every : int
        Evaluate (and checkpoint) every this many steps, and at the last step.
    eval_size : int
        Sequences in the fixed evaluation set.
    patience : int or None
        Stop after this many evaluations without improvement of the evaluation loss.
    target_loss : float or None
        Stop once the evaluation loss is at most this.
    clip_norm : float or None
        Clip the global gradient norm to this value.
    diverge_factor : float
        A training loss above ``diverge_factor`` times the first step's loss is divergence.
    seed : int
        Seed of the data (the initialisation uses the layer's seed).
    """

    key = "training"
    optimizer = Parameter("adam", choices=("adam", "sgd"))
    lr = Parameter(1e-3, low=0.0, low_open=True, doc="learning rate")
    momentum = Parameter(0.0, low=0.0, high=1.0, high_open=True, doc="SGD momentum")
    batch_size = Parameter(32, low=1, integer=True, doc="sequences per step")
    max_steps = Parameter(1000, low=1, integer=True, doc="optimiser steps at most")
    eval_every = Parameter(100, low=1, integer=True, doc="steps between evaluations")
    eval_size = Parameter(20, low=1, integer=True, doc="evaluation sequences")
    patience = Parameter(10, low=1, integer=True, allow_none=True, doc="evaluations without improvement")
    target_loss = Parameter(None, low=0.0, allow_none=True, doc="stop at this evaluation loss")
    clip_norm = Parameter(None, low=0.0, low_open=True, allow_none=True, doc="gradient clipping")
    diverge_factor = Parameter(1e3, low=1.0, low_open=True, doc="divergence threshold factor")
    seed = seed_parameter(0, doc="data seed")

    def make_optimizer(self) -> Optimizer:
        """A fresh optimiser with these settings."""
        opts = {"lr": self.lr}
        if self.optimizer == "sgd":
            opts["momentum"] = self.momentum
        return make_optimizer(self.optimizer, **opts)

    def resume_identity(self) -> dict[str, Any]:
        """Settings that must match to resume a checkpoint (all but the stopping criteria)."""
        d = self.get_params()
        for name in ("max_steps", "patience", "target_loss"):
            d.pop(name)
        return d


def _check_batch(batch: dict[str, np.ndarray]) -> None:
    for name, arr in batch.items():
        arr = np.asarray(arr)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            raise NonFiniteError("train", f"batch.{name}", arr,
                                 f"contains {arr[where]} at index {where}; training data must be finite")


def train(model: Any, task: Any, spec: TrainingSpec | dict[str, Any] | None = None, *,
          out_dir: str | os.PathLike | None = None, resume: bool = True,
          progress: bool = True) -> xr.Dataset:
    """Train ``model`` on ``task``; return the history as an :class:`xarray.Dataset`.

    Parameters
    ----------
    model
        A model of :mod:`plastinet.training.models` (updated in place).
    task
        A task of :mod:`plastinet.tasks` (``sample(batch_size, rng)``).
    spec : TrainingSpec or dict, optional
        Training settings (see :class:`TrainingSpec`).
    out_dir : path, optional
        Directory of the checkpoint (written at every evaluation). Without it nothing is
        written.
    resume : bool
        Continue from the checkpoint in ``out_dir`` if there is one (bit-identical to an
        uninterrupted run). A checkpoint of another model or other training settings
        raises :class:`~plastinet.training.checkpoint.CheckpointError`.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    xarray.Dataset
        ``train_loss (step)``, ``grad_norm (step)``, ``eval_loss (eval_step)``,
        ``eval_accuracy (eval_step)`` (where the model reports accuracy), attrs
        ``stop_reason`` ("target_loss", "patience", "max_steps"), ``best_eval_loss``,
        ``steps``.

    Raises
    ------
    NumericalError
        When the loss or the gradients become non-finite or the loss diverges; names
        the step. The checkpoint in ``out_dir`` then still holds the last good state.
    NonFiniteError
        For NaN or infinity in the data, naming the batch entry.
    """
    if spec is None:
        spec = TrainingSpec()
    elif isinstance(spec, dict):
        spec = TrainingSpec(**spec)
    elif not isinstance(spec, TrainingSpec):
        raise ValidationError("train", "spec", spec, "expected a TrainingSpec or a dict of its parameters")
    params = model.params
    opt = spec.make_optimizer()
    data_rng = np.random.default_rng([spec.seed, 1])
    eval_batch = task.sample(spec.eval_size, np.random.default_rng([spec.seed, 2]))
    _check_batch(eval_batch)
    hist: dict[str, list[float]] = {"train_loss": [], "grad_norm": [], "eval_step": [],
                                    "eval_loss": [], "eval_accuracy": []}
    step, best, bad, first_loss, stop = 0, math.inf, 0, None, None
    identity = model.to_dict()
    if out_dir is not None and resume and checkpoint_exists(out_dir):
        arrays, meta = load_checkpoint(out_dir, identity)
        if meta["training"] != spec.resume_identity():
            raise CheckpointError(Path(out_dir), "training", meta["training"],
                                  f"written with other training settings than {spec.resume_identity()}; "
                                  "use another out_dir or delete the checkpoint")
        for name, p in params.items():
            p[...] = arrays["param/" + name]
        opt.load_state_dict({k[4:]: v for k, v in arrays.items() if k.startswith("opt/")})
        for name in hist:
            hist[name] = arrays["hist/" + name].tolist()
        data_rng.bit_generator.state = meta["rng_state"]
        step, best, bad, first_loss = meta["step"], meta["best"], meta["bad_evals"], meta["first_loss"]
        stop = meta["stop_reason"]
        best = math.inf if best is None else best
    bar = tqdm(total=spec.max_steps, initial=min(step, spec.max_steps), disable=not progress,
               desc="train", unit="step", leave=False)
    try:
        while stop is None and step < spec.max_steps:
            batch = task.sample(spec.batch_size, data_rng)
            _check_batch(batch)
            with np.errstate(over="ignore", invalid="ignore"):
                loss, grads = model.loss_and_grads(batch)
            grads, gnorm = clip_grad_norm(grads, spec.clip_norm)
            if not (math.isfinite(loss) and math.isfinite(gnorm)):
                raise NumericalError(f"training diverged at step {step + 1}: loss {loss}, gradient norm "
                                     f"{gnorm}; lower lr, set clip_norm, or normalise keys",
                                     step=step + 1, where="loss")
            first_loss = loss if first_loss is None else first_loss
            if loss > spec.diverge_factor * max(first_loss, 1e-12):
                raise NumericalError(f"training diverged at step {step + 1}: loss {loss:.4g} exceeds "
                                     f"{spec.diverge_factor:g} x the first loss {first_loss:.4g}; lower lr "
                                     "or set clip_norm", step=step + 1, where="loss")
            opt.step(params, grads)
            step += 1
            hist["train_loss"].append(loss)
            hist["grad_norm"].append(gnorm)
            bar.update(1)
            if step % spec.eval_every == 0 or step == spec.max_steps:
                metrics = model.evaluate(eval_batch)
                bad_param = next((n for n, p in params.items() if not np.isfinite(p).all()), None)
                if bad_param is not None or not math.isfinite(metrics["loss"]):
                    raise NumericalError(f"training diverged by step {step}: "
                                         f"{'parameter ' + bad_param if bad_param else 'evaluation loss'} "
                                         "is non-finite", step=step, where=bad_param or "eval_loss")
                hist["eval_step"].append(step)
                hist["eval_loss"].append(metrics["loss"])
                hist["eval_accuracy"].append(metrics.get("accuracy", math.nan))
                if metrics["loss"] < best:
                    best, bad = metrics["loss"], 0
                else:
                    bad += 1
                if spec.target_loss is not None and metrics["loss"] <= spec.target_loss:
                    stop = "target_loss"
                elif spec.patience is not None and bad >= spec.patience:
                    stop = "patience"
                bar.set_postfix(loss=f"{loss:.4g}", eval=f"{metrics['loss']:.4g}")
                if out_dir is not None:
                    arrays = {"param/" + n: p for n, p in params.items()}
                    arrays.update({"opt/" + n: a for n, a in opt.state_dict().items()})
                    arrays.update({"hist/" + n: np.asarray(v, dtype=float) for n, v in hist.items()})
                    save_checkpoint(out_dir, arrays, {
                        "model": identity, "training": spec.resume_identity(), "step": step,
                        "rng_state": data_rng.bit_generator.state, "best": best if math.isfinite(best) else None,
                        "bad_evals": bad, "first_loss": first_loss, "stop_reason": stop})
    finally:
        bar.close()
    return _history(hist, spec, model, stop or "max_steps", best, step)


def _history(hist: dict[str, list[float]], spec: TrainingSpec, model: Any, stop: str,
             best: float, step: int) -> xr.Dataset:
    n = len(hist["train_loss"])
    acc = np.asarray(hist["eval_accuracy"], dtype=float)
    data = {
        "train_loss": variable("step", np.asarray(hist["train_loss"]), "1", "training loss of the batch"),
        "grad_norm": variable("step", np.asarray(hist["grad_norm"]), "1",
                              "global gradient norm before clipping"),
        "eval_loss": variable("eval_step", np.asarray(hist["eval_loss"]), "1",
                              "loss on the fixed evaluation set"),
    }
    if acc.size and not np.isnan(acc).all():
        data["eval_accuracy"] = variable("eval_step", acc, "1", "accuracy on the evaluation set")
    coords = {"step": variable("step", np.arange(1, n + 1), "1", "optimiser step"),
              "eval_step": variable("eval_step", np.asarray(hist["eval_step"], dtype=np.int64), "1",
                                    "optimiser step of the evaluation")}
    ds = xr.Dataset(data, coords=coords)
    return finalize_dataset(ds, backend="numpy", backend_version=__version__, dt=None,
                            seed=spec.seed, model_spec=model.to_dict(), training=spec.to_dict(),
                            stop_reason=stop, best_eval_loss=best if math.isfinite(best) else None,
                            steps=step, n_params=int(sum(p.size for p in model.params.values())))
