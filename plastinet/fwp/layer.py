""":class:`FastWeightLayer`: slow weights that program fast weights.

``x (B, T, d_in)`` → programmer → per-head ``k, v, q, beta`` (and ``alpha`` or the
neuromodulator where the rule has one) → the rule's fast weights, read out
``u_t = W_t phi(q_t)`` → output projection ``y_t = W_out u_t + b_out``. The programmers
(linear, MLP, recurrent, self-referential) are described in :mod:`plastinet.fwp.programmers`.
All quantities are dimensionless; time is the step index.
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

import numpy as np
import xarray as xr

from plastinet._version import __version__
from plastinet.errors import RangeError, UnsupportedError, ValidationError
from plastinet.fwp import programmers as prog
from plastinet.fwp.feature_maps import as_feature_map
from plastinet.fwp.rules import Delta, GatedDelta, Oja, Rule, get_rule
from plastinet.params import REQUIRED, Parameter, Spec
from plastinet.results import finalize_dataset, variable
from plastinet.seeds import seed_parameter
from plastinet.validation import check_finite, check_shape, float_array

__all__ = ["FastWeightLayer", "LayerSpec", "LayerOutput", "LayerGradients", "RECORDABLE"]

#: Variables :meth:`FastWeightLayer.run` can record besides ``y``.
RECORDABLE = ("W", "k", "q", "v", "beta", "alpha", "mod", "u")


def _as_rule(value: Any) -> Rule:
    if isinstance(value, Rule):
        return value
    if isinstance(value, str):
        return get_rule(value)
    raise ValidationError("FastWeightLayer", "rule", value,
                          "expected a rule object or a rule key ('hebbian', 'decayed_hebbian', "
                          "'delta', 'gated_delta', 'oja', 'three_factor')")


class LayerSpec(Spec):
    """Validated configuration of a :class:`FastWeightLayer` (see its parameters)."""

    key = "fast_weight_layer"
    d_in = Parameter(REQUIRED, low=1, integer=True, doc="input size")
    d_out = Parameter(None, low=1, integer=True, allow_none=True, doc="output size")
    rule = Parameter("delta", convert=_as_rule, doc="a rule object or rule key")
    feature_map = Parameter(None, convert=as_feature_map, allow_none=True,
                            doc="feature map overriding the rule's ('elu+1', 'dpfp-2', ...)")
    feature_normalize = Parameter("auto", choices=("auto", None, "sum", "l2"),
                                  doc="normalisation of phi(k), phi(q)")
    heads = Parameter(1, low=1, integer=True, doc="number of heads")
    d_key = Parameter(16, low=1, integer=True, doc="key/query size per head")
    d_value = Parameter(16, low=1, integer=True, doc="value size per head")
    programmer = Parameter("linear", choices=prog.PROGRAMMERS)
    hidden = Parameter(64, low=1, integer=True, doc="hidden units of the MLP programmer")
    beta_scale = Parameter(None, low=0.0, low_open=True, allow_none=True,
                           doc="beta = beta_scale * sigmoid(.)")
    values = Parameter("project", choices=("project", "input"))
    output = Parameter("project", choices=("project", "identity"))
    form = Parameter("auto", choices=("auto", "recurrent", "parallel", "chunkwise"))
    chunk_size = Parameter(64, low=1, integer=True, doc="chunk length of the chunkwise form")
    initial_state = Parameter(None, choices=(None, "zeros", "learned"),
                              doc="fast weights before step 0")
    init_scale = Parameter(1.0, low=0.0, low_open=True, doc="std of weights times sqrt(fan_in)")
    dtype = Parameter("float64", choices=("float64", "float32"))
    seed = seed_parameter(0, doc="seed of the initialisation")

    def effective_rule(self) -> Rule:
        """The rule with the layer's feature map and normalisation applied."""
        rule = self.rule
        phi = self.feature_map if self.feature_map is not None else rule.phi
        norm = self.feature_normalize
        if norm == "auto":
            delta_family = isinstance(rule, (Delta, GatedDelta, Oja))
            norm = phi.normalize if (phi.normalize or not delta_family) else (
                "sum" if phi.positive else "l2")
        phi = phi.replace(normalize=norm)
        return rule.replace(feature_map=phi)

    def _check(self) -> None:
        name = "FastWeightLayer"
        rule = self.effective_rule()
        if self.programmer == "srwm":
            if self.d_in % self.heads:
                raise ValidationError(name, "heads", self.heads,
                                      f"the self-referential programmer splits d_in={self.d_in} "
                                      "into equal head slices: heads must divide d_in")
            if self.values == "input":
                raise UnsupportedError(name, "values", "input",
                                       "the self-referential programmer makes its own values")
        if self.values == "input" and self.d_value > self.d_in:
            raise ValidationError(name, "d_value", self.d_value,
                                  f"values='input' uses the first d_value inputs: need d_value <= d_in={self.d_in}")
        if self.output == "identity" and self.d_out not in (None, self.heads * self.d_value):
            raise ValidationError(name, "d_out", self.d_out,
                                  f"output='identity' gives d_out = heads * d_value = {self.heads * self.d_value}")
        if self.form not in ("auto",) + rule.forms:
            raise UnsupportedError(name, "form", self.form,
                                   f"{type(rule).__name__} has the forms {', '.join(rule.forms)}")
        why = prog.rule_supports(self.config())
        if why:
            raise UnsupportedError(name, "programmer", self.programmer, why)

    def config(self) -> prog.Config:
        """The derived sizes and options the programmers use."""
        rule = self.effective_rule()
        d_key = self.d_in // self.heads if self.programmer == "srwm" else self.d_key
        d_out = self.heads * self.d_value if self.output == "identity" else (self.d_out or self.d_in)
        if self.beta_scale is not None:
            scale = float(self.beta_scale)
        else:
            scale = 2.0 if isinstance(rule, (Delta, GatedDelta)) else 1.0
        form = self.form
        if form == "auto":
            form = "chunkwise" if "chunkwise" in rule.forms else "recurrent"
        learned = self.initial_state == "learned" or (self.initial_state is None and isinstance(rule, Oja))
        return prog.Config(rule=rule, programmer=self.programmer, learned_init=learned, d_in=self.d_in, d_out=d_out,
                           heads=self.heads, d_key=d_key, d_value=self.d_value,
                           hidden=self.hidden, beta_scale=scale, values=self.values,
                           output=self.output, form=form, chunk_size=self.chunk_size)


class LayerOutput(NamedTuple):
    """Result of :meth:`FastWeightLayer.forward`.

    Attributes
    ----------
    y : ndarray, shape (B, T, d_out)
        Output at every step.
    y_query : ndarray, shape (B, T_q, d_out), or None
        Outputs of the read phase (final fast weights, plasticity off), if queried.
    cache : dict
        Intermediate values for :meth:`FastWeightLayer.backward`.
    """

    y: np.ndarray
    y_query: np.ndarray | None
    cache: dict[str, Any]


class LayerGradients(NamedTuple):
    """Result of :meth:`FastWeightLayer.backward`: ``dL/dparams``, ``dL/dx``, ``dL/dquery``."""

    params: dict[str, np.ndarray]
    x: np.ndarray
    query: np.ndarray | None


class FastWeightLayer:
    """A fast-weight layer: slow weights program the fast weights of a rule.

    Parameters
    ----------
    d_in : int
        Input size.
    d_out : int, optional
        Output size (default ``d_in``; with ``output="identity"`` it is ``heads * d_value``).
    rule : Rule or str
        The fast-weight rule (object or key, e.g. ``"delta"``).
    feature_map : FeatureMap or str, optional
        Feature map ``phi`` overriding the rule's (``"elu+1"``, ``"dpfp-2"``...).
    feature_normalize : {"auto", None, "sum", "l2"}
        Normalisation of ``phi(k)``, ``phi(q)``. ``"auto"``: the feature map's own setting,
        except that Delta, GatedDelta and Oja with an unnormalised map get
        ``"sum"`` (positive maps, as Schlag et al. 2021) or ``"l2"``: then
        ``||phi(k)|| <= 1`` and the update is non-expanding for ``beta <= 2``.
    heads : int
        Number of heads (independent fast-weight matrices).
    d_key, d_value : int
        Key/query and value sizes per head. The self-referential programmer uses
        ``d_key = d_in / heads`` (its keys live in the input space).
    programmer : {"linear", "mlp", "recurrent", "srwm"}
        See :mod:`plastinet.fwp.programmers`.
    hidden : int
        Hidden units of the MLP programmer.
    beta_scale : float, optional
        ``beta_t = beta_scale * sigmoid(.)``. Default 2 for Delta/GatedDelta (so that
        ``beta`` in ``(0, 2)``, including negative eigenvalues, is reachable), else 1. Use 1
        to reproduce Schlag et al. (2021) and Irie et al. (2022).
    values : {"project", "input"}
        ``"project"``: ``v_t = W_v x_t``; ``"input"``: ``v_t`` is the first ``d_value``
        inputs (fixed, e.g. the one-hot values of the associative-retrieval task).
    output : {"project", "identity"}
        Output projection ``W_out u + b_out``, or the concatenated read-outs themselves.
    form : {"auto", "recurrent", "parallel", "chunkwise"}
        Form of :func:`~plastinet.fwp.apply` for the linear/MLP programmers ("auto":
        chunkwise where the rule has it). Recurrent/SRWM programmers always step.
    chunk_size : int
        Chunk length of the chunkwise form.
    initial_state : {None, "zeros", "learned"}
        Fast weights before step 0: zeros, or a slow parameter ``W_init (H, d_v, d_phi)``
        (linear/MLP/recurrent programmers). Default: learned for Oja (whose update keeps
        ``W = 0`` at 0), zeros otherwise.
    init_scale : float
        Weights are drawn ``N(0, init_scale^2 / fan_in)``; biases start at 0.
    dtype : {"float64", "float32"}
        Precision of parameters and computation.
    seed : int
        Seed of the initialisation (same seed, same parameters).

    Attributes
    ----------
    params : dict of str to ndarray
        The slow parameters by name (``W_k``, ``W_q``, ``W_v``, ``W_beta``, ``b_beta``,
        ``W_alpha``/``W_mod``..., ``R_*`` for the recurrent programmer, ``W0`` for the
        SRWM, ``W_init`` for a learned initial state, ``W_out``, ``b_out``). Arrays may be updated in place by an optimiser.

    Examples
    --------
    >>> import numpy as np
    >>> from plastinet.fwp import FastWeightLayer
    >>> layer = FastWeightLayer(8, 4, rule="delta", feature_map="elu+1", d_key=6, d_value=5, seed=1)
    >>> layer(np.zeros((2, 10, 8))).shape
    (2, 10, 4)
    """

    def __init__(self, d_in: int, d_out: int | None = None, **options: Any) -> None:
        self.spec = LayerSpec(d_in=d_in, d_out=d_out, **options)
        self.config = self.spec.config()
        self.dtype = np.dtype(self.spec.dtype)
        rng = np.random.default_rng(self.spec.seed)
        self.params: dict[str, np.ndarray] = {}
        for name, (shape, fan_in) in prog.param_shapes(self.config).items():
            if fan_in == 0:
                self.params[name] = np.zeros(shape, dtype=self.dtype)
            else:
                w = rng.standard_normal(shape) * (self.spec.init_scale / np.sqrt(fan_in))
                self.params[name] = w.astype(self.dtype)

    # -- description -------------------------------------------------------------------------
    @property
    def rule(self) -> Rule:
        """The rule, with the layer's feature map."""
        return self.config.rule

    @property
    def n_params(self) -> int:
        """Total number of slow parameters."""
        return int(sum(p.size for p in self.params.values()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description of the layer's configuration."""
        out = self.spec.to_dict()
        out["rule"] = self.rule.to_dict()
        out["feature_map"] = self.rule.phi.to_dict()
        return out

    def __repr__(self) -> str:
        c = self.config
        return (f"FastWeightLayer({c.d_in}->{c.d_out}, rule={type(c.rule).__name__}, "
                f"phi={c.rule.phi.kind}, programmer={c.programmer!r}, heads={c.heads}, "
                f"d_key={c.d_key}, d_value={c.d_value}, params={self.n_params})")

    # -- forward -----------------------------------------------------------------------------
    def _check_input(self, x: Any, name: str) -> np.ndarray:
        obj = "FastWeightLayer"
        arr = float_array(x, obj, name, self.dtype)
        check_shape(arr, (None, None, self.config.d_in), obj, name, ("B", "T", "d_in"))
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValidationError(obj, name, arr, f"needs at least one sequence and one step, got {arr.shape}")
        check_finite(arr, obj, name)
        return arr

    def forward(self, x: Any, query: Any = None, *, segment: int | None = None) -> LayerOutput:
        """Run the layer and keep what :meth:`backward` needs.

        Parameters
        ----------
        x : ndarray, shape (B, T, d_in)
            Input sequence, in the layer's dtype, finite.
        query : ndarray, shape (B, T_q, d_in), optional
            Read-phase inputs (linear/MLP programmers): queries are programmed from them and
            read the final fast weights with plasticity off.
        segment : int, optional
            Keep the fast weights every ``segment`` steps (linear/MLP; see :meth:`run`).

        Returns
        -------
        LayerOutput
        """
        x = self._check_input(x, "x")
        c, P = self.config, self.params
        if c.programmer in ("linear", "mlp"):
            y, cache = prog.feedforward_forward(c, P, x, segment=segment)
        elif c.programmer == "recurrent":
            y, cache = prog.recurrent_forward(c, P, x)
        else:
            y, cache = prog.srwm_forward(c, P, x)
        y_query = None
        if query is not None:
            if c.programmer not in ("linear", "mlp"):
                raise UnsupportedError("FastWeightLayer", "query", "<array>",
                                       "a separate read phase needs the linear or MLP programmer")
            xq = self._check_input(query, "query")
            if xq.shape[0] != x.shape[0]:
                raise ValidationError("FastWeightLayer", "query", xq,
                                      f"batch size {xq.shape[0]} differs from x's {x.shape[0]}")
            y_query, cache["query"] = prog.read_query(c, P, cache["state"], xq)
        return LayerOutput(y, y_query, cache)

    def __call__(self, x: Any, query: Any = None) -> Any:
        """``y (B, T, d_out)``, or ``(y, y_query)`` when ``query`` is given."""
        out = self.forward(x, query)
        return out.y if query is None else (out.y, out.y_query)

    # -- gradients ---------------------------------------------------------------------------
    def backward(self, out: LayerOutput, dy: Any, dy_query: Any = None) -> LayerGradients:
        """Exact gradients of a scalar loss, given its cotangents of the outputs.

        Linear/MLP programmers pull the rule back with :func:`plastinet.fwp.vjp`; the
        recurrent programmer does backpropagation through time around one-step ``vjp``
        calls; the self-referential programmer has its own backpropagation through time.

        Parameters
        ----------
        out : LayerOutput
            The result of :meth:`forward` with the current parameters.
        dy : ndarray, shape (B, T, d_out)
            ``dL/dy`` (zeros where the loss does not look).
        dy_query : ndarray, shape (B, T_q, d_out), optional
            ``dL/dy_query``, when ``forward`` was given a ``query``.

        Returns
        -------
        LayerGradients
            ``params`` (a dict with the keys and shapes of :attr:`params`), ``x``
            ``(B, T, d_in)`` and ``query`` ``(B, T_q, d_in)`` or ``None``.
        """
        obj = "FastWeightLayer.backward"
        B, T, d_out = out.y.shape
        dy = float_array(dy, obj, "dy", self.dtype)
        check_shape(dy, (B, T, d_out), obj, "dy", ("B", "T", "d_out"))
        check_finite(dy, obj, "dy")
        if (dy_query is None) != (out.y_query is None):
            raise ValidationError(obj, "dy_query", dy_query,
                                  "pass dy_query exactly when forward() was given a query")
        if dy_query is not None:
            dy_query = float_array(dy_query, obj, "dy_query", self.dtype)
            check_shape(dy_query, out.y_query.shape, obj, "dy_query", ("B", "T_q", "d_out"))
            check_finite(dy_query, obj, "dy_query")
        c, P = self.config, self.params
        dquery = None
        if c.programmer in ("linear", "mlp"):
            grads, dx, dquery = prog.feedforward_backward(c, P, out.cache, dy, dy_query)
        elif c.programmer == "recurrent":
            grads, dx = prog.recurrent_backward(c, P, out.cache, dy)
        else:
            grads, dx = prog.srwm_backward(c, P, out.cache, dy)
        return LayerGradients(grads, dx, dquery)

    # -- results -----------------------------------------------------------------------------
    def run(self, x: Any, query: Any = None, *, sample_every: int = 1,
            record: Iterable[str] = ()) -> xr.Dataset:
        """Run the layer and return the outputs (and probes) as an :class:`xarray.Dataset`.

        Parameters
        ----------
        x : ndarray, shape (B, T, d_in)
        query : ndarray, shape (B, T_q, d_in), optional
            Read-phase inputs; their outputs are ``y_query (trial, query, output)``.
        sample_every : int
            Probes keep steps ``sample_every - 1, 2 sample_every - 1, ...`` (dim
            ``sample_time``); ``W`` is the state after that step.
        record : iterable of str
            Any of ``"W"`` (fast weights ``(trial, sample_time, head, post, pre)``),
            ``"k"``, ``"q"`` (before ``phi``, ``(..., head, key)``), ``"v"``
            (``(..., head, post)``), ``"beta"``, ``"alpha"``, ``"mod"`` (``(..., head)``),
            ``"u"`` (read-outs of all heads, ``(..., unit)``).

        Returns
        -------
        xarray.Dataset
            ``y (trial, time, output)`` and the recorded probes; every variable has
            ``units`` and ``long_name``; global attrs as in :mod:`plastinet.results`.
        """
        record = tuple(record)
        for name in record:
            if name not in RECORDABLE:
                raise UnsupportedError("FastWeightLayer.run", "record", name,
                                       "recordable: " + ", ".join(RECORDABLE))
            if name in ("alpha", "mod") and name not in self.config.gates:
                raise UnsupportedError("FastWeightLayer.run", "record", name,
                                       f"{type(self.rule).__name__} has no {name} gate")
        if (not isinstance(sample_every, (int, np.integer)) or isinstance(sample_every, bool)
                or sample_every < 1):
            raise RangeError("FastWeightLayer.run", "sample_every", sample_every,
                             "expected a positive integer")
        c = self.config
        feedforward = c.programmer in ("linear", "mlp")
        out = self.forward(x, query, segment=sample_every if ("W" in record and feedforward) else None)
        cache = out.cache
        B, T, _ = out.y.shape
        times = np.arange(sample_every - 1, T, sample_every)
        one = "1"
        data: dict[str, xr.Variable] = {
            "y": variable(("trial", "time", "output"), out.y, one, "layer output"),
        }
        coords: dict[str, xr.Variable] = {
            "time": variable("time", np.arange(T), one, "time step index"),
            "sample_time": variable("sample_time", times, one, "time step index of the probe samples"),
        }
        if out.y_query is not None:
            data["y_query"] = variable(("trial", "query", "output"), out.y_query, one,
                                       "layer output in the read phase (plasticity off)")
        sampled = ("trial", "sample_time", "head")
        for name in record:
            if name == "W":
                if feedforward:
                    W = np.moveaxis(cache["W_samples"], 0, 1)
                elif c.programmer == "recurrent":
                    W = np.stack([cache["states"][t + 1].W for t in times], axis=1)
                else:
                    W = np.moveaxis(cache["Ws"][times + 1], 0, 1)
                data["W"] = variable(sampled + ("post", "pre"), W, one,
                                     "fast weights after the step (self-referential matrix for srwm)")
            elif name in ("k", "q"):
                data[name] = variable(sampled + ("key",), cache[name][:, :, times].transpose(0, 2, 1, 3),
                                      one, {"k": "key", "q": "query"}[name] + " before the feature map")
            elif name == "v":
                data["v"] = variable(sampled + ("post",), cache["v"][:, :, times].transpose(0, 2, 1, 3),
                                     one, "value (post-synaptic target)")
            elif name == "u":
                data["u"] = variable(("trial", "sample_time", "unit"), cache["u"][:, times], one,
                                     "fast read-out W_t phi(q_t) of all heads, concatenated")
            else:
                long = {"beta": "learning rate beta_t (third factor)", "alpha": "decay gate alpha_t",
                        "mod": "neuromodulator m_t"}[name]
                data[name] = variable(sampled, cache["gates"][name][:, :, times].transpose(0, 2, 1),
                                      one, long)
        ds = xr.Dataset(data, coords=coords)
        return finalize_dataset(ds, backend="numpy", backend_version=__version__, dt=None,
                                seed=self.spec.seed, model_spec=self.to_dict(),
                                programmer=c.programmer, sample_every=int(sample_every))
