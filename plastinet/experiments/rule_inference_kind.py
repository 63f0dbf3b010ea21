"""The ``rule_inference`` experiment kind: plant a rule, record activity or choices only,
and infer the rule with :func:`plastinet.analysis.infer_rule`.

Tables: ``[data]`` (``type = "activity"``: :class:`PlantedActivity`, a rate network with a
planted rule; ``type = "bandit"``: :class:`PlantedBandit`, a two-armed bandit learner) and
``[inference]`` (:class:`Inference`: the options of :func:`~plastinet.analysis.infer_rule`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from plastinet.analysis.rule_models import parse_term, term_name
from plastinet.errors import ValidationError
from plastinet.experiments.registry import register_kind, resolve_backend
from plastinet.experiments.rule_inference import PLANTED, planted_activity, planted_bandit
from plastinet.params import Parameter, Spec
from plastinet.results import finalize_dataset

__all__ = ["PlantedActivity", "PlantedBandit", "Inference", "RuleInferenceKind", "plot_rule_inference_result"]


def _terms(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValidationError("Inference", "terms", value, "expected a list of term names such as 'x*y' "
                                                            "(empty: the default library)")
    return [term_name(parse_term(t)) for t in value]


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError("Inference", "reselect", value, "expected true or false")
    return value


class PlantedActivity(Spec):
    """Rate network with a planted rule (:func:`~plastinet.experiments.rule_inference.planted_activity`)."""

    key = "activity"
    rule = Parameter("oja", choices=tuple(PLANTED), doc="planted rule")
    trials = Parameter(8, low=1, integer=True, doc="trials")
    steps = Parameter(60, low=5, integer=True, doc="steps per trial")
    n_pre = Parameter(4, low=1, integer=True, doc="presynaptic neurons")
    n_post = Parameter(2, low=1, integer=True, doc="postsynaptic neurons")
    noise = Parameter(0.02, low=0.0, doc="observation noise relative to the activity's standard deviation")
    seed = Parameter(0, low=0, integer=True, doc="data seed")


class PlantedBandit(Spec):
    """Two-armed bandit learner (:func:`~plastinet.experiments.rule_inference.planted_bandit`)."""

    key = "bandit"
    sessions = Parameter(16, low=1, integer=True, doc="sessions (trials of the fit)")
    steps = Parameter(150, low=5, integer=True, doc="choices per session")
    n_cues = Parameter(3, low=1, integer=True, doc="cue (odour) inputs")
    eta = Parameter(0.5, low=0.0, doc="reward-modulated learning rate")
    forget = Parameter(0.1, low=0.0, high=1.0, doc="forgetting rate per choice")
    block = Parameter(50, low=1, integer=True, doc="choices between reversals")
    seed = Parameter(0, low=0, integer=True, doc="data seed")


class Inference(Spec):
    """Options of :func:`~plastinet.analysis.infer_rule`."""

    key = "inference"
    family = Parameter("taylor", choices=("taylor", "mlp"))
    terms = Parameter([], convert=_terms, doc="list of term names; empty: the default library")
    degree = Parameter(2, low=0, high=2, integer=True, doc="highest power per variable (default terms)")
    order = Parameter(3, low=0, integer=True, doc="highest total degree (default terms)")
    activation = Parameter("linear", choices=("linear", "tanh"))
    initial_weights = Parameter("fit", choices=("fit", "zero"))
    l1 = Parameter(1e-3, low=0.0, doc="L1 weight")
    prune = Parameter(1e-3, low=0.0, doc="pruning threshold of standardised coefficients")
    n_boot = Parameter(16, low=0, integer=True, doc="bootstrap resamples")
    reselect = Parameter(True, convert=_bool, doc="repeat the selection in every resample")
    hidden = Parameter(8, low=1, integer=True, doc="hidden units of the MLP rule")
    max_iter = Parameter(500, low=1, integer=True, doc="L-BFGS-B iterations")
    seed = Parameter(0, low=0, integer=True, doc="bootstrap seed")


def plot_rule_inference_result(result: xr.Dataset, fig: Any = None) -> Any:
    """Standard figure: inferred coefficients with intervals and planted values, and the prediction."""
    import matplotlib.pyplot as plt

    from plastinet.plotting import plot_rule_inference

    fig = fig or plt.figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    plot_rule_inference(result, ax=ax1, kind="coefficients")
    plot_rule_inference(result, ax=ax2, kind="prediction")
    return fig


class RuleInferenceKind:
    """Model-file kind ``rule_inference``."""

    capability = "reference"

    def validate(self, top: Any) -> tuple[Spec, Inference]:
        from plastinet.params import Parameter as P

        data_t = top.table("data")
        kind = data_t.take("type", P(choices=("activity", "bandit")))
        data = data_t.build(PlantedActivity if kind == "activity" else PlantedBandit, "type")
        data_t.finish()
        inf_t = top.table("inference", required=False)
        inference = inf_t.build(Inference, "family")
        inf_t.finish()
        return data, inference

    def run(self, model: Any, *, backend: Any = None, progress: bool = True, **options: Any) -> xr.Dataset:
        """Generate the planted data and infer the rule (numpy only)."""
        from plastinet.analysis import infer_rule
        _, attrs = resolve_backend(model.name, self, backend)
        data, inf = model.spec
        if isinstance(data, PlantedActivity):
            ds = planted_activity(data.rule, trials=data.trials, steps=data.steps, n_pre=data.n_pre,
                                  n_post=data.n_post, noise=data.noise, seed=data.seed)
        else:
            ds = planted_bandit(sessions=data.sessions, steps=data.steps, n_cues=data.n_cues, eta=data.eta,
                                forget=data.forget, block=data.block, seed=data.seed)
        fit = infer_rule(ds, family=inf.family, terms=inf.terms or None, degree=inf.degree, order=inf.order,
                         activation=inf.activation, initial_weights=inf.initial_weights, l1=inf.l1,
                         prune=inf.prune, n_boot=inf.n_boot, reselect=inf.reselect, hidden=inf.hidden,
                         max_iter=inf.max_iter, seed=inf.seed)
        out = fit.to_dataset()
        planted = {term_name(parse_term(t)): v for t, v in json.loads(ds.attrs["planted"]).items()}
        names = [str(n) for n in out.coefficient.values]
        out["planted"] = (("coefficient",), np.array([planted.get(n, 0.0) for n in names]),
                          {"units": out.coefficients.attrs["units"],
                           "long_name": "planted coefficient (0: not a term of the planted rule)"})
        missing = sorted(set(planted) - set(names))
        return finalize_dataset(out, backend=attrs["backend"], backend_version=attrs["backend_version"], dt=None,
                                seed=getattr(data, "seed", None), model_spec=model.to_dict(),
                                model_kind="rule_inference", model_name=model.name,
                                planted_rule=ds.attrs["planted_rule"], planted_terms_not_fitted=", ".join(missing))

    def plot(self, result: xr.Dataset, fig: Any = None) -> Any:
        return plot_rule_inference_result(result, fig)


register_kind("rule_inference", RuleInferenceKind())
