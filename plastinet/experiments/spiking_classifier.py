"""A trained token classifier (Ba et al. 2016 retrieval) whose fast-weight memory is spiking.

:func:`spiking_ba2016_retrieval` trains a delta-rule :class:`~plastinet.training.models.TokenClassifier`
(``ba2016_retrieval``: letter-digit pairs, then a query letter), by default with the
recurrent programmer of Irie et al. (2021), and runs every evaluation sequence with its
fast weights in a :class:`~plastinet.experiments.spiking_memory.SpikingMemory`: step by step
the trained programmer computes ``k_t, v_t, q_t, beta_t`` from the input and from
``tanh`` of the previous step's *spiking* read-out, the memory writes and is read, and the
output layer classifies the spiking read-out of the last step. It is the
``spiking_ba2016_retrieval`` protocol of the ``spiking_protocol`` kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from plastinet.errors import RangeError, UnsupportedError, ValidationError
from plastinet.experiments.spiking_retrieval import budget_dataset
from plastinet.results import variable
from plastinet.seeds import check_seed
from plastinet.simulation import check_run_options

__all__ = ["spiking_logits", "spiking_ba2016_retrieval"]

_OBJ = "spiking_ba2016_retrieval"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def spiking_logits(model: Any, tokens: np.ndarray, *, seed: int = 0, **memory_options: Any) -> np.ndarray:
    """Class logits ``(B, n_classes)`` of a trained classifier whose memory is spiking.

    Parameters
    ----------
    model : TokenClassifier
        Delta or Hebbian rule, one head, ``linear`` or ``recurrent`` programmer, projected output.
    tokens : array of int (B, T)
        Token sequences.
    seed : int
        Sequence ``b`` runs its memory with the seed ``SeedSequence([seed, b])``.
    **memory_options
        Options of :class:`~plastinet.experiments.spiking_memory.SpikingMemory`
        (``neurons_per_feature``, ``rate``, ``phase``, ``readout``, ``error``...).

    Returns
    -------
    ndarray (B, n_classes)
        ``W_out u_T + b_out`` with ``u_T`` the spiking read-out of the last step.
    """
    from plastinet.experiments.spiking_memory import SpikingMemory

    layer = model.layer
    c, P = layer.config, layer.params
    if c.heads != 1 or c.programmer not in ("linear", "recurrent") or c.output != "project":
        raise UnsupportedError(_OBJ, "model", c.programmer, "expected one head, a linear or recurrent "
                               "programmer and a projected output")
    rule = layer.rule
    x = model._inputs(np.asarray(tokens))
    B, T, _ = x.shape
    u_last = np.zeros((B, c.d_value))
    if c.programmer == "linear":
        cache = layer.forward(x).cache
    for b in range(B):
        memory = SpikingMemory(rule, c.d_phi, c.d_value, seed=int(np.random.SeedSequence([seed, b]).generate_state(1)[0]),
                               **memory_options)
        r = np.zeros(c.d_value)
        for t in range(T):
            if c.programmer == "linear":
                k, q, v = cache["k"][b, 0, t], cache["q"][b, 0, t], cache["v"][b, 0, t]
                beta = float(cache["gates"]["beta"][b, 0, t])
            else:                                   # fed by the previous step's spiking read-out
                k = P["W_k"] @ x[b, t] + P["R_k"] @ r
                q = P["W_q"] @ x[b, t] + P["R_q"] @ r
                v = P["W_v"] @ x[b, t] + P["R_v"] @ r
                beta = float(c.beta_scale * _sigmoid(P["W_beta"][0] @ x[b, t] + P["b_beta"][0] + P["R_beta"][0] @ r))
            memory.write(rule.phi(k[None])[0], v, beta)
            if c.programmer == "recurrent" or t == T - 1:
                u = memory.read(rule.phi(q[None]))[0]
                r = np.tanh(u)
        u_last[b] = u
    return u_last @ P["W_out"].T + P["b_out"]


def _trained_model(trained: str, checkpoint: Any) -> tuple[Any, Any]:
    """The task and the model of training model file ``trained`` with the parameters of ``checkpoint``."""
    from plastinet.experiments import load_model
    from plastinet.tasks import BaRetrieval
    from plastinet.training.checkpoint import load_checkpoint

    spec = load_model(trained)
    if spec.kind != "training" or not isinstance(spec.spec["task"], BaRetrieval):
        raise UnsupportedError(_OBJ, "trained", trained, "expected a training model of the ba_retrieval task "
                               "(e.g. 'ba2016_retrieval')")
    if checkpoint is None:
        raise ValidationError(_OBJ, "checkpoint", None, f"the directory 'plastinet train {trained} --out-dir DIR' "
                              "wrote (it holds checkpoint.npz)")
    model = spec.spec["layer"]
    arrays, _ = load_checkpoint(checkpoint, model.to_dict())
    for name, p in model.params.items():
        p[...] = arrays["param/" + name]
    return spec.spec["task"], model


def spiking_ba2016_retrieval(n_pairs: int = 4, programmer: str = "recurrent", d_key: int = 16, d_value: int = 32,
                             train_steps: int = 1500, lr: float = 3e-3, batch_size: int = 32, sequences: int = 20,
                             neurons: Any = (2, 10), rates: Any = (50.0, 100.0), phase: float = 0.2,
                             readout: str = "rate", error: str = "rate", readout_neurons: int = 20,
                             error_neurons: int = 20, y_range: float = 1.0, tau: float = 0.01, dt: float = 1e-3,
                             seed: int = 0, trained: str | None = None, checkpoint: Any = None,
                             backend: Any = None, run_options: Any = None) -> xr.Dataset:
    """Train a delta-rule token classifier on Ba et al.'s retrieval and run it with a spiking memory.

    With ``trained`` (a training model file, e.g. ``"ba2016_retrieval"``) and ``checkpoint``
    (the directory ``plastinet train`` wrote), the model trained there is run instead
    (``n_pairs``, ``programmer``, ``d_key``, ``d_value`` and the training options are then
    those of the file, and ``train_loss`` is not reported).

    Parameters
    ----------
    n_pairs : int
        Letter-digit pairs per sequence (sequences of ``2 n_pairs + 3`` tokens).
    programmer : {"recurrent", "linear"}
        The recurrent programmer is fed by the previous step's (spiking) read-out.
    d_key, d_value : int
        Key (``d_phi = d_key`` with ELU+1 features) and value dimensions.
    train_steps, lr, batch_size : int, float, int
        Adam training (``plastinet.training.train``, gradient norm clipped at 5).
    sequences : int
        Evaluation sequences, drawn with ``seed``.
    neurons, rates : lists of equal length
        Spike budgets: key neurons per feature and their largest rate (Hz).
    phase, tau, dt : float
        Phase duration, filter time constant and time step (s).
    readout, error, readout_neurons, error_neurons, y_range
        Read-out and error carriers of :class:`~plastinet.experiments.spiking_memory.SpikingMemory`.
    seed : int
        Seed of the model, data and spiking runs.
    trained : str or None
        Name or path of a training model file of the ``ba_retrieval`` task.
    checkpoint : path or None
        Directory holding the ``checkpoint.npz`` that ``plastinet train`` wrote for ``trained``.
    backend : str, Backend or None
        Runs the spiking networks (any backend with the ``"spiking"`` capability).
    run_options : mapping or None
        Reliability options of every run (:data:`plastinet.simulation.RUN_OPTIONS`).

    Returns
    -------
    xarray.Dataset
        ``accuracy(budget)``, ``agreement(budget)`` (fraction of sequences whose spiking class
        equals the rate model's), ``relative_error(budget)`` of the logits; coordinates
        ``neurons``, ``rate``, ``spikes_per_token`` (``neurons x rate x phase``); attrs
        ``accuracy_rate``, ``accuracy_spiking`` and ``spikes_per_token`` (largest budget),
        ``smallest_budget_90`` / ``smallest_budget_95`` (-1 if none), ``train_loss``,
        ``beta_phi2_max`` (the largest ``beta |phi(k)|^2`` the rate model wrote).
    """
    from plastinet.tasks import BaRetrieval
    from plastinet.training.models import TokenClassifier
    from plastinet.training.trainer import train

    seed = check_seed(_OBJ, seed, allow_none=False)
    run_options = check_run_options(_OBJ + " run_options", run_options)
    neurons = [int(n) for n in np.atleast_1d(neurons)]
    rates = [float(r) for r in np.atleast_1d(rates)]
    if len(neurons) != len(rates) or not neurons or min(neurons) < 1 or min(rates) <= 0:
        raise RangeError(_OBJ, "neurons", neurons, "expected one rate (> 0 Hz) per entry of neurons (>= 1)")
    if programmer not in ("recurrent", "linear"):
        raise UnsupportedError(_OBJ, "programmer", programmer, "allowed: recurrent, linear")
    if trained is not None:
        task, model = _trained_model(trained, checkpoint)
        train_loss = None
    else:
        task = BaRetrieval(n_pairs=n_pairs)
        model = TokenClassifier(task, context=2, rule="delta", feature_map="elu+1", d_key=d_key, d_value=d_value,
                                programmer=programmer, form="recurrent" if programmer == "recurrent" else "chunkwise",
                                seed=seed)
        hist = train(model, task, {"max_steps": train_steps, "eval_every": max(1, train_steps // 5), "lr": lr,
                                   "batch_size": batch_size, "patience": None, "clip_norm": 5.0, "seed": seed},
                     progress=False)
        train_loss = float(hist["train_loss"].values[-1])
    batch = task.sample(sequences, np.random.default_rng([seed, 1]))
    out = model.layer.forward(model._inputs(batch["tokens"]))
    logits_rate = out.y[:, -1]
    k_phi = model.layer.rule.phi(out.cache["k"])
    beta_phi2 = out.cache["gates"]["beta"][..., None] * (k_phi * k_phi).sum(-1, keepdims=True)
    targets = batch["targets"]
    acc_rate = float(np.mean(logits_rate.argmax(-1) == targets))
    acc, agree, rel = [], [], []
    for n, r in zip(neurons, rates):
        logits = spiking_logits(model, batch["tokens"], seed=seed, neurons_per_feature=n, rate=r, phase=phase,
                                readout=readout, error=error, readout_neurons=readout_neurons,
                                error_neurons=error_neurons, y_range=y_range, tau=tau, dt=dt, backend=backend,
                                run_options=run_options)
        acc.append(float(np.mean(logits.argmax(-1) == targets)))
        agree.append(float(np.mean(logits.argmax(-1) == logits_rate.argmax(-1))))
        rel.append(float(np.linalg.norm(logits - logits_rate) / np.linalg.norm(logits_rate)))
    extra = {"agreement": variable("budget", np.array(agree), "1",
                                   "fraction of sequences classified as by the rate model"),
             "relative_error": variable("budget", np.array(rel), "1", "|logits_spiking - logits_rate| / |logits_rate|")}
    ds = budget_dataset(neurons, rates, phase, acc, acc_rate, extra)
    ds.attrs.update(beta_phi2_max=float(beta_phi2.max()), programmer=model.layer.config.programmer,
                    readout=readout, error=error, sequences=int(sequences), phase=phase, dt=dt, seed=seed)
    if train_loss is not None:
        ds.attrs["train_loss"] = train_loss
    else:
        ds.attrs["trained"] = str(trained)
    return ds
