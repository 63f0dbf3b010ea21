"""A trained fast weight programmer whose fast-weight memory is a spiking network.

:func:`spiking_fwp_retrieval` trains a delta-rule FWP (:class:`~plastinet.training.models.AssocRetrievalModel`,
linear programmer, DPFP-1 keys) on associative retrieval (Schlag et al. 2021, setting 1),
then runs every evaluation sequence through :func:`plastinet.experiments.fwp_bridge.from_fwp`:
the trained programmer computes keys, values, queries and ``beta`` from the input tokens, the
spiking network writes all pairs into its plastic synapses and answers every query in a read
phase, and the prediction is the arg-max of the spiking read-out. It is the
``spiking_fwp_retrieval`` protocol of the ``spiking_protocol`` kind.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import xarray as xr

from plastinet.errors import RangeError, ShapeError, ValidationError
from plastinet.experiments.protocols import protocol
from plastinet.results import variable
from plastinet.seeds import check_seed
from plastinet.simulation import check_run_options

__all__ = ["spiking_fwp_retrieval", "spiking_predictions", "programmed_sequence"]

_OBJ = "spiking_fwp_retrieval"


def programmed_sequence(model: Any, batch: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """What a trained retrieval model's programmer writes and reads, per sequence.

    Parameters
    ----------
    model : AssocRetrievalModel
        A model with a linear or MLP programmer and one head.
    batch : dict
        A batch of :meth:`plastinet.tasks.AssocRetrieval.sample`.

    Returns
    -------
    list of dict
        Per sequence: ``k (T, d_key)``, ``v (T, d_v)``, ``beta (T,)``, ``q (Q, d_key)`` (real
        queries only) and the rate read-out ``y_rate (Q, d_v)``.
    """
    x, xq = model._inputs(batch)
    out = model.layer.forward(x, xq)
    c = out.cache
    seqs = []
    for b in range(x.shape[0]):
        real = batch["mask"][b] > 0
        seqs.append({"k": c["k"][b, 0], "v": c["v"][b, 0], "beta": c["gates"]["beta"][b, 0],
                     "q": c["query"]["q"][b, 0][real], "y_rate": out.y_query[b][real],
                     "targets": batch["targets"][b][real]})
    return seqs


def spiking_predictions(rule: Any, seqs: list[dict[str, np.ndarray]], *, neurons_per_feature: int,
                        rate: float, phase: float, tau: float, dt: float, seed: int,
                        backend: Any = None, run_options: Any = None) -> np.ndarray:
    """Spiking read-outs ``(sum Q, d_v)`` of the programmed sequences (all queries read at the end).

    Sequence ``b`` runs with the seed ``SeedSequence([seed, b])``.
    """
    from plastinet.experiments.fwp_bridge import from_fwp, simulate_fwp

    ys = []
    for b, s in enumerate(seqs):
        T = s["k"].shape[0]
        net = from_fwp(rule, s["q"], s["k"], s["v"], s["beta"], read_after=np.full(s["q"].shape[0], T - 1),
                       neurons_per_feature=neurons_per_feature, rate=rate, phase=phase, tau=tau, dt=dt)
        run_seed = int(np.random.SeedSequence([seed, b]).generate_state(1)[0])
        y, _, _ = simulate_fwp(net, dt=dt, seed=run_seed, backend=backend, run_options=run_options)
        ys.append(y)
    return np.concatenate(ys)


def _load_retrieval_model(checkpoint: Any) -> tuple[Any, Any, dict[str, Any]]:
    """Task, model and attrs of a ``plastinet train`` run of an associative-retrieval model file."""
    from plastinet.experiments.trained import load_trained
    from plastinet.tasks import AssocRetrieval
    from plastinet.training.models import AssocRetrievalModel

    loaded = load_trained(checkpoint)
    model = loaded.model
    if not isinstance(model, AssocRetrievalModel) or not isinstance(loaded.task, AssocRetrieval):
        raise ValidationError(_OBJ, "checkpoint", str(checkpoint),
                              f"expected a 'plastinet train' run of an associative-retrieval model (such as "
                              f"assoc_retrieval); this one trained {type(model).__name__} ({loaded.spec.name})")
    rule = model.layer.rule
    heads = model.layer.spec.heads
    if type(rule).__name__ != "Delta" or heads != 1:
        raise ValidationError(_OBJ, "checkpoint", str(checkpoint),
                              f"the spiking memory realises a single-head delta-rule layer; {loaded.spec.name} "
                              f"has rule {type(rule).__name__} and {heads} heads")
    return loaded.task, model, {"trained_steps": int(loaded.step), "trained_model": loaded.spec.name}


@protocol
def spiking_fwp_retrieval(n_keys: int = 10, d_key: int = 16, train_steps: int = 200, lr: float = 3e-3,
                          batch_size: int = 32, sequences: int = 4, neurons: Any = (1, 1, 1, 2, 5),
                          rates: Any = (10.0, 20.0, 50.0, 50.0, 100.0), phase: float = 0.2, tau: float = 0.01,
                          dt: float = 1e-3, seed: int = 0, checkpoint: Any = None, backend: Any = None,
                          run_options: Any = None) -> xr.Dataset:
    """Train a delta-rule FWP on associative retrieval (or load one) and run it with a spiking memory.

    Parameters
    ----------
    n_keys : int
        Keys (= values) of the task, setting 1 (every key written once, all queried).
    d_key : int
        Key dimension of the programmer (``d_phi = 2 d_key`` with DPFP-1).
    train_steps, lr, batch_size : int, float, int
        Adam training of the rate model (``plastinet.training.train``; layer seed ``seed``).
    sequences : int
        Evaluation sequences (``n_keys`` queries each), drawn with ``seed``.
    neurons, rates : lists of equal length
        The spike budgets: key/query neurons per feature and their maximum rate (Hz).
    phase, tau, dt : float
        Phase duration, filter time constant and time step (s).
    seed : int
        Seed of the model, data and spiking runs.
    checkpoint : path or None
        The ``--out-dir`` of ``plastinet train assoc_retrieval`` (any associative-retrieval
        training model file with a delta-rule, single-head programmer): that trained model is
        loaded (:func:`plastinet.load_trained`) instead of training one here, and ``n_keys``,
        ``d_key``, ``train_steps``, ``lr`` and ``batch_size`` are not used.
    backend : str, Backend or None
        Runs the spiking networks (any backend with the ``"spiking"`` capability).
    run_options : mapping or None
        The reliability options of every run (:data:`plastinet.simulation.RUN_OPTIONS`), as
        for every protocol.

    Returns
    -------
    xarray.Dataset
        ``accuracy(budget)``, ``relative_error(budget)`` (of the read-outs against the rate
        model's), coordinates ``neurons``, ``rate``, ``spikes_per_token`` (``neurons x rate x
        phase``, the most key spikes per feature in one phase); attrs ``accuracy_rate``,
        ``accuracy_spiking`` and ``spikes_per_token`` (of the largest budget),
        ``smallest_budget_90`` / ``smallest_budget_95`` (the smallest ``spikes_per_token``
        reaching 0.9 / 0.95 x ``accuracy_rate``; -1 if none), ``train_loss`` (last; with
        ``checkpoint``: ``trained_steps``, the checkpoint's optimiser steps, instead).
    """
    from plastinet.tasks import AssocRetrieval
    from plastinet.training.models import AssocRetrievalModel
    from plastinet.training.trainer import train

    seed = check_seed(_OBJ, seed, allow_none=False)
    run_options = check_run_options(_OBJ + " run_options", run_options)
    neurons = [int(n) for n in np.atleast_1d(neurons)]
    rates = [float(r) for r in np.atleast_1d(rates)]
    if len(neurons) != len(rates) or not neurons:
        raise ShapeError(_OBJ, "rates", rates, f"expected one rate per entry of neurons ({len(neurons)})")
    if min(neurons) < 1 or min(rates) <= 0:
        raise RangeError(_OBJ, "neurons", neurons, "expected neurons >= 1 and rates > 0 Hz")
    if checkpoint is None:
        task = AssocRetrieval(n_keys=n_keys, setting=1)
        model = AssocRetrievalModel(task, rule="delta", feature_map="dpfp-1", feature_normalize="sum", d_key=d_key,
                                    programmer="linear", form="recurrent", beta_scale=1.0, seed=seed)
        hist = train(model, task, {"max_steps": train_steps, "eval_every": max(1, train_steps // 2), "lr": lr,
                                   "batch_size": batch_size, "patience": None, "seed": seed}, progress=False)
        trained = {"train_loss": float(hist["train_loss"].values[-1])}
    else:
        task, model, trained = _load_retrieval_model(checkpoint)
    batch = task.sample(sequences, np.random.default_rng([seed, 1]))
    seqs = programmed_sequence(model, batch)
    rule = model.layer.rule
    targets = np.concatenate([s["targets"] for s in seqs])
    y_rate = np.concatenate([s["y_rate"] for s in seqs])
    acc_rate = float(np.mean(y_rate.argmax(-1) == targets))
    acc, rel = [], []
    for n, r in zip(neurons, rates):
        y = spiking_predictions(rule, seqs, neurons_per_feature=n, rate=r, phase=phase, tau=tau, dt=dt,
                                seed=seed, backend=backend, run_options=run_options)
        acc.append(float(np.mean(y.argmax(-1) == targets)))
        rel.append(float(np.linalg.norm(y - y_rate) / np.linalg.norm(y_rate)))
    rel_err = variable("budget", np.array(rel), "1", "|y_spiking - y_rate| / |y_rate| of the query read-outs")
    ds = budget_dataset(neurons, rates, phase, acc, acc_rate, {"relative_error": rel_err})
    ds.attrs.update(**trained, queries=int(targets.size), phase=phase, dt=dt, seed=seed)
    return ds


def budget_dataset(neurons: Sequence[int], rates: Sequence[float], phase: float, acc: Sequence[float],
                   acc_rate: float, extra: dict[str, xr.DataArray]) -> xr.Dataset:
    """Accuracy against the spike budget of a spiking read-out of a rate model.

    Parameters
    ----------
    neurons, rates : sequence
        Key neurons per feature and maximum key rate (Hz) of each run.
    phase : float
        Duration of one presentation phase (s).
    acc : sequence of float
        Accuracy of the spiking runs, in the order of ``neurons``.
    acc_rate : float
        Accuracy of the rate model on the same sequences.
    extra : dict
        Further variables on the ``budget`` dimension.

    Returns
    -------
    xarray.Dataset
        ``accuracy`` and ``extra`` against ``budget`` with coordinates ``neurons``, ``rate`` and
        ``spikes_per_token`` (neurons x rate x phase); attrs ``accuracy_rate``, ``accuracy_spiking``
        and ``spikes_per_token`` of the largest budget, and ``smallest_budget_90`` /
        ``smallest_budget_95``: the smallest budget reaching 90 % / 95 % of the rate model's
        accuracy (-1 if none does).
    """
    budget = np.array(neurons) * np.array(rates) * phase
    order = np.argsort(budget, kind="stable")

    def smallest(frac: float) -> float:
        ok = [budget[i] for i in order if acc[i] >= frac * acc_rate]
        return float(ok[0]) if ok else -1.0

    last = int(order[-1])
    ds = xr.Dataset({"accuracy": variable("budget", np.array(acc), "1", "spiking retrieval accuracy"), **extra},
                    coords={"neurons": variable("budget", np.array(neurons), "1", "key neurons per feature"),
                            "rate": variable("budget", np.array(rates), "Hz", "maximum key rate"),
                            "spikes_per_token": variable("budget", budget, "1",
                                                         "neurons x rate x phase (key spikes per feature and phase)")})
    ds.attrs.update(accuracy_rate=acc_rate, accuracy_spiking=acc[last], spikes_per_token=float(budget[last]),
                    smallest_budget_90=smallest(0.9), smallest_budget_95=smallest(0.95))
    return ds
