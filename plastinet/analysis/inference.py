"""Infer a plasticity rule from activity or behaviour alone: :func:`infer_rule`.

No weights are observed. The fitted model is the plastic rate network of
:mod:`plastinet.analysis.rule_recurrence` (``y_t = f(W_t x_t)``,
``W_{t+1} = W_t + rule(x_t, u_t, W_t, r_t, v_t)``) with a parameterised rule of
:mod:`plastinet.analysis.rule_models` (a truncated Taylor series or a small MLP).

Statistics (stated):

* **initial weights** are fitted, one matrix per trial (a single recording is cut into
  ``segments`` contiguous pieces, each with its own fitted initial weights), or known to be
  zero (``initial_weights="zero"``);
* **standardised coefficients** ``psi_k = theta_k T s_k / s_W`` (``T`` steps per trial,
  ``s_k`` the root mean square of term ``k``'s factors, ``s_W`` the weight scale from a
  static least-squares fit): the fraction of the weight scale that term ``k`` changes over
  a trial. The optimiser works on ``psi``; the L1 penalty is ``l1 * sum |psi_k|``;
* **optimiser**: L-BFGS-B (scipy) on the exact gradient. The L1 term is made smooth by
  the split ``psi = psi+ - psi-`` with bounds ``psi+-`` >= 0 (exact, not a smoothing).
  Terms with ``|psi_k| <= prune`` after this sparse fit are dropped, and the remaining
  ones are refitted without the penalty (relaxed lasso: no shrinkage bias);
* **confidence intervals**: 95 % bootstrap-t-quantile intervals over trials: the estimate
  plus or minus ``t(0.975, nu) sqrt(n / (n - 1)) s_B``, ``s_B`` the standard deviation of
  the coefficients refitted to ``B`` resamples of the ``n`` trials with replacement (every
  resample repeats selection and refit, warm-started at the full fit; all resamples are
  fitted side by side as one problem). The estimator is close to a mean of per-trial
  contributions, so two small-sample corrections apply: the bootstrap variance of a mean
  over ``n`` trials is ``(n - 1) / n`` of the unbiased variance (hence ``sqrt(n / (n - 1))``),
  and the variance estimate is ``sigma^2 (chi2_a / a) (chi2_b / b)`` with ``a = n - 1``
  (trials) and ``b = B - 1`` (resamples) degrees of freedom. Matching the variance of that
  product, ``2 / a + 2 / b + 4 / (a b)``, to ``2 / nu`` gives the Student-t degrees of freedom
  ``nu = 1 / (1 / a + 1 / b + 2 / (a b))`` (6 trials, 8 resamples: ``nu = 2.5``, half-width
  3.92 ``s_B`` instead of the normal approximation's 1.96 ``s_B``). The measured coverage of
  planted coefficients (conservative: 99 % at 6 trials) is in the documentation's rule
  inference section;
* **library family** (``.best``): each family of :data:`LIBRARY_PATTERNS` is a linear
  subspace of coefficient space; its distance to the estimate is the generalised least
  squares ``d^2 = min_eta (psi - B eta)^T S^-1 (psi - B eta)`` with ``S`` the bootstrap
  covariance (times ``n / (n - 1)``, as for the intervals) plus ``(0.02 max |psi|)^2`` (a
  2 % resolution floor). A family matches if its coefficients have the family's signs and
  ``d^2`` passes a chi-squared test at 5 %
  (``K - dim`` degrees of freedom); ``.best`` is the matching family with the fewest
  parameters (``"none"`` if no family matches);
* the **MLP** rule is fitted without penalty; its coefficients are the least-squares
  projection of its weight changes (over the fitted trajectories) on the Taylor terms,
  classified like a Taylor fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import xarray as xr
from scipy.optimize import minimize
from scipy.stats import chi2
from scipy.stats import t as student_t

from plastinet.analysis.rule_models import VARIABLES, MLPRule, TaylorRule, parse_term, taylor_terms, term_name
from plastinet.analysis.rule_recurrence import ACTIVATIONS, BLOWUP, Observations, run
from plastinet.errors import NonFiniteError, RangeError, ShapeError, UnsupportedError, ValidationError

__all__ = ["infer_rule", "RuleInference", "LIBRARY_PATTERNS", "MIN_STEPS"]

_OBJ = "infer_rule"
#: Fewest time steps per trial (or segment) :func:`infer_rule` accepts.
MIN_STEPS = 5
#: Relative resolution floor of the family test (fraction of the largest standardised coefficient).
RESOLUTION = 0.02
_NEEDED = ("pre (time, pre) or (trial, time, pre), and post (time, post) (same leading dims) or "
           "choice (time) (integer actions); optionally reward (time) and teacher (time, post)")
_XY = (1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Pattern:
    """A library family as a subspace of Taylor coefficients.

    ``basis`` lists the family's free parameters, each a mapping from exponent tuples to
    its coefficient pattern; ``signs`` the sign each parameter must have (0: any).
    """

    name: str
    equation: str
    basis: tuple[dict[tuple[int, ...], float], ...]
    signs: tuple[int, ...]


#: Library families and their Taylor-term patterns (x pre, y post, W weight, r third factor, v teacher).
LIBRARY_PATTERNS: tuple[Pattern, ...] = (
    Pattern("static", "dW = 0", (), ()),
    Pattern("hebbian", "dW = eta x y, eta > 0", ({_XY: 1.0},), (1,)),
    Pattern("anti_hebbian", "dW = eta x y, eta < 0", ({_XY: 1.0},), (-1,)),
    Pattern("oja", "dW = eta (x y - y^2 W)", ({_XY: 1.0, (0, 2, 1, 0, 0): -1.0},), (1,)),
    Pattern("hebbian_decay", "dW = eta x y - lam W", ({_XY: 1.0}, {(0, 0, 1, 0, 0): -1.0}), (1, 1)),
    Pattern("bcm", "dW = eta y (y - theta) x = eta x y^2 - eta theta x y",
            ({(1, 2, 0, 0, 0): 1.0}, {_XY: -1.0}), (1, 1)),
    Pattern("covariance", "dW = eta (x - <x>)(y - <y>) (subspace of x y, x, y, 1)",
            ({_XY: 1.0}, {(1, 0, 0, 0, 0): 1.0}, {(0, 1, 0, 0, 0): 1.0}, {(0, 0, 0, 0, 0): 1.0}), (1, 0, 0, 0)),
    Pattern("modulated_hebbian", "dW = eta r x y (three-factor, reward-modulated)",
            ({(1, 1, 0, 1, 0): 1.0},), (0,)),
    Pattern("modulated_hebbian_decay", "dW = eta r x y - lam W (reward-modulated with forgetting)",
            ({(1, 1, 0, 1, 0): 1.0}, {(0, 0, 1, 0, 0): -1.0}), (0, 1)),
    Pattern("delta", "dW = eta (v - y) x (Widrow-Hoff, v the teaching input)",
            ({(1, 0, 0, 0, 1): 1.0, _XY: -1.0},), (1,)),
    Pattern("modulated_delta", "dW = eta r (v - y) x (delta rule gated by r, e.g. a programmed beta)",
            ({(1, 0, 0, 1, 1): 1.0, (1, 1, 0, 1, 0): -1.0},), (1,)),
)


@dataclass
class RuleInference:
    """Result of :func:`infer_rule`.

    Attributes
    ----------
    family : str
        ``"taylor"`` or ``"mlp"``.
    coefficients : xarray.DataArray
        Taylor coefficients along dim ``coefficient`` (term names such as ``"x*y"``), with
        coords ``ci_low``, ``ci_high`` (95 %, bootstrap over trials with small-sample t quantile), ``effect`` (the
        standardised coefficient ``psi``), ``effect_scale`` (``psi / theta``) and ``units``
        (weight units per step over the term's units). For the MLP: the projection of its changes on the Taylor terms.
    best : str
        The matching library family (see :data:`LIBRARY_PATTERNS`), or ``"none"``.
    matches : xarray.Dataset
        Per family: ``d2``, ``dof``, ``p_value``, ``sign_ok``, ``matched``, ``n_params``.
    prediction : xarray.Dataset
        ``predicted`` and ``observed`` post activity ``(trial, time, post)``, or the choice
        ``probability (trial, time, action)`` and the observed ``choice (trial, time)``.
    initial_weights : xarray.DataArray
        Fitted initial weights ``(trial, post, pre)``.
    loss : float
        Final loss without penalty (normalised MSE, or choice negative log-likelihood).
    r2 : float
        Explained variance of the activity (``1 - loss``), or the mean choice likelihood
        per step (``exp(-loss)``) for behaviour.
    bootstrap : xarray.DataArray
        Bootstrap coefficients ``(resample, coefficient)``.
    notes : list of str
        What was dropped, segmented or could not be tested.
    model : str
        The fitted network, in words.
    params : ndarray
        The fitted rule parameters (Taylor: the coefficients; MLP: the network's weights).
    """

    family: str
    coefficients: xr.DataArray
    best: str
    matches: xr.Dataset
    prediction: xr.Dataset
    initial_weights: xr.DataArray
    loss: float
    r2: float
    bootstrap: xr.DataArray
    notes: list[str] = field(default_factory=list)
    model: str = ""
    params: np.ndarray | None = None

    def table(self) -> xr.Dataset:
        """The family tests (:attr:`matches`)."""
        return self.matches

    def to_dataset(self) -> xr.Dataset:
        """Everything as one Dataset (every variable and coordinate with ``units`` and
        ``long_name``): ``coefficient``, ``ci_low``, ``ci_high``, ``effect`` along
        ``coefficient`` (per-term units in coordinate ``coefficient_units``), the family
        tests along ``family``, the prediction variables and ``initial_weights``; attrs
        ``best``, ``rule_family``, ``fitted_model``, ``loss``, ``r2``, ``notes``."""
        c = self.coefficients
        units = [str(u) for u in c.units.values]
        common = units[0] if len(set(units)) == 1 else "mixed (see coefficient_units)"
        var = lambda data, u, name: (("coefficient",), np.asarray(data), {"units": u, "long_name": name})  # noqa: E731
        ds = xr.Dataset(
            {"coefficients": var(c.values, common, "Taylor coefficient per step"),
             "ci_low": var(c.ci_low.values, common, "lower end of the 95 % interval"),
             "ci_high": var(c.ci_high.values, common, "upper end of the 95 % interval"),
             "effect": var(c.effect.values, "1", "standardised coefficient (weight-scale change per trial)"),
             "effect_scale": var(c.effect_scale.values, "mixed (1 / coefficient_units)",
                                 "standardised coefficient per unit coefficient"),
             **{name: (da.dims, da.values, dict(da.attrs)) for name, da in self.matches.data_vars.items()},
             **{name: (da.dims, da.values, dict(da.attrs)) for name, da in self.prediction.data_vars.items()},
             "initial_weights": (self.initial_weights.dims, self.initial_weights.values,
                                 dict(self.initial_weights.attrs))},
            coords={"coefficient": ("coefficient", np.asarray(c.coefficient.values, dtype=str),
                                    {"units": "1", "long_name": "Taylor term"}),
                    "coefficient_units": ("coefficient", units,
                                          {"units": "1", "long_name": "units of each coefficient"}),
                    "family": ("family", np.asarray(self.matches.family.values, dtype=str),
                               {"units": "1", "long_name": "library family"}),
                    **{k: (v.dims, v.values, dict(v.attrs)) for k, v in self.prediction.coords.items()}},
            attrs={"best": self.best, "rule_family": self.family, "fitted_model": self.model, "loss": self.loss,
                   "r2": self.r2, "notes": "; ".join(self.notes), "ci_method": c.attrs.get("ci_method", "")})
        for name in ("matched", "sign_ok"):
            ds[name] = ds[name].astype(np.int8)
        return ds

    def plot(self, ax: Any = None, kind: str = "coefficients") -> Any:
        """Draw the coefficients with intervals (``kind="coefficients"``) or predicted
        against observed activity (``"prediction"``); see
        :func:`plastinet.plotting.plot_rule_inference`."""
        from plastinet.plotting import plot_rule_inference

        return plot_rule_inference(self, ax=ax, kind=kind)

    def __repr__(self) -> str:
        what = "R^2" if "predicted" in self.prediction else "choice likelihood"
        return f"<RuleInference {self.family} best={self.best!r} {what}={self.r2:.3f}>"


# ----------------------------------------------------------------------------- data


def _array(data: xr.Dataset, name: str, tail: tuple[str, ...], lead: tuple[str, ...],
           shared: bool = False) -> np.ndarray:
    """A variable as float64 with dims ``lead + tail``; ``shared``: ``(time,)`` is repeated per trial."""
    da = data[name]
    want = lead + tail
    if shared and lead == ("trial", "time") and da.dims == ("time",):
        return _array(data, name, tail, ("time",))[None].repeat(data.sizes["trial"], axis=0)
    if set(da.dims) != set(want) or da.ndim != len(want):
        raise ShapeError(_OBJ, f"data[{name!r}]", da, f"expected dims {want}, got {da.dims}")
    arr = np.asarray(da.transpose(*want).values, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise NonFiniteError(_OBJ, f"data[{name!r}]", arr, "all entries must be finite (no NaN or inf)")
    return arr


def _observations(data: Any, names: dict[str, str | None], n_actions: int | None,
                  segments: int) -> tuple[Observations, dict[str, str], list[str], Any]:
    if not isinstance(data, xr.Dataset):
        raise ValidationError(_OBJ, "data", data, "expected an xarray.Dataset with " + _NEEDED)
    present = {k: n for k, n in names.items() if n is not None and n in data.variables}
    if "pre" not in present or not ({"post", "choice"} & set(present)):
        missing = [names[k] or k for k in ("pre",) if k not in present] + \
            ([f"{names['post']} or {names['choice']}"] if not ({"post", "choice"} & set(present)) else [])
        raise ValidationError(_OBJ, "data", f"<Dataset with {sorted(map(str, data.variables))}>",
                              f"missing {', '.join(missing)}; infer_rule needs " + _NEEDED)
    pre = data[present["pre"]]
    lead = ("trial", "time") if "trial" in pre.dims else ("time",)
    x = _array(data, present["pre"], ("pre",), lead)
    notes: list[str] = []
    y = ch = None
    if "post" in present:
        if "choice" in present:
            notes.append(f"both {present['post']} and {present['choice']} present: fitting the activity")
        y = _array(data, present["post"], ("post",), lead)
        P = y.shape[-1]
    else:
        c = _array(data, present["choice"], (), lead)
        P = int(n_actions) if n_actions is not None else max(2, int(c.max()) + 1)
        if np.any(c != np.round(c)) or c.min() < 0 or c.max() >= P:
            raise RangeError(_OBJ, f"data[{present['choice']!r}]", c,
                             f"choices must be integers in 0 .. {P - 1} (n_actions = {P})")
        ch = np.eye(P)[c.astype(np.int64)]
    r = _array(data, present["reward"], (), lead, shared=True) if "reward" in present else None
    v = _array(data, present["teacher"], ("post",), lead) if "teacher" in present else None
    if v is not None and v.shape[-1] != P:
        raise ShapeError(_OBJ, f"data[{present['teacher']!r}]", v, f"expected {P} post neurons like the target")
    units = {"x": pre.attrs.get("units", "1"),
             "y": data[present["post"]].attrs.get("units", "1") if "post" in present else "1",
             "r": data[present["reward"]].attrs.get("units", "1") if "reward" in present else "1",
             "v": data[present["teacher"]].attrs.get("units", "1") if "teacher" in present else "1"}
    arrays = [x, y, ch, r, v]
    if lead == ("time",):
        T = x.shape[0]
        S = max(1, min(int(segments), T // MIN_STEPS))
        L = T // S
        if S > 1:
            notes.append(f"single recording cut into {S} segments of {L} steps, each with fitted initial weights"
                         + (f" (last {T - S * L} steps dropped)" if T % S else ""))
        arrays = [None if a is None else a[: S * L].reshape((S, L) + a.shape[1:]) for a in arrays]
    obs = Observations(*arrays)
    if obs.x.shape[1] < MIN_STEPS:
        raise ValidationError(_OBJ, "data", f"<Dataset with time={obs.x.shape[1]}>",
                              f"too few time steps: needs at least {MIN_STEPS} per trial")
    time = data["time"].values if "time" in data.coords else None
    return obs, units, notes, time


# ----------------------------------------------------------------------------- fitting


def _rms(a: np.ndarray | None) -> float:
    if a is None:
        return 1.0
    s = float(np.sqrt(np.mean(a * a)))
    return s if s > 0 else 1.0


def _initial_weights(obs: Observations, activation: str) -> tuple[np.ndarray, float]:
    """Static least-squares weights from the first steps of each trial, and the weight scale."""
    n, T, P, Q = obs.shape
    if obs.y is None:
        return np.zeros((n, P, Q)), 1.0
    target = np.arctanh(np.clip(obs.y, -0.999, 0.999)) if activation == "tanh" else obs.y
    K = min(T, max(2 * Q, T // 5))
    W0 = np.stack([np.linalg.lstsq(obs.x[i, :K], target[i, :K], rcond=None)[0].T for i in range(n)])
    scale = _rms(W0)
    if not np.any(W0):
        whole = np.stack([np.linalg.lstsq(obs.x[i], target[i], rcond=None)[0].T for i in range(n)])
        scale = _rms(whole)
    return W0, scale


def _two_valued(a: np.ndarray | None) -> bool:
    return a is not None and np.unique(a).size <= 2


@dataclass
class _Problem:
    obs: Observations
    rule: Any
    activation: str
    s_W: float
    scale: np.ndarray          # theta = psi * scale (Taylor) or params (MLP: ones)
    var_y: float
    max_iter: int
    fix_W0: bool = False

    def w_bounds(self, w0: np.ndarray) -> list[tuple[float | None, float | None]]:
        """L-BFGS-B bounds of the scaled initial weights (fixed at ``w0`` when not fitted)."""
        return [(float(v), float(v)) for v in w0] if self.fix_W0 else [(None, None)] * w0.size

    def run(self, params: np.ndarray, W0: np.ndarray, obs: Observations | None = None, grad: bool = True) -> Any:
        obs = obs or self.obs
        return run(self.rule, params, W0, obs, self.activation, self.rule.prepare(obs.context()), grad=grad,
                   var_y=self.var_y, limit=BLOWUP * self.s_W)


def _minimise(fun: Any, x0: np.ndarray, bounds: Any, max_iter: int) -> np.ndarray:
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": max_iter, "ftol": 1e-10, "gtol": 1e-8, "maxcor": 20})
    return res.x


def _fit_taylor(pb: _Problem, psi0: np.ndarray, W0: np.ndarray, obs: Observations, l1: float,
                prune: float, select: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Sparse fit (L1, split variables), then the unpenalised refit of the kept terms.

    ``psi0 (G, K)``: ``G`` independent problems side by side (bootstrap resamples), each
    owning a consecutive block of the trials of ``obs``. Returns ``psi (G, K)`` and the
    fitted initial weights.
    """
    G, K = psi0.shape
    GK = G * K
    shape = W0.shape
    prep = pb.rule.prepare(obs.context())

    def evaluate(psi: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        out = run(pb.rule, psi.reshape(G, K) * pb.scale, w.reshape(shape) * pb.s_W, obs, pb.activation, prep,
                  var_y=pb.var_y, groups=G, limit=BLOWUP * pb.s_W)
        if out is None:
            return 1e10, np.zeros(GK), np.zeros(w.size)
        return out["loss"], (out["g_params"] * pb.scale).ravel(), out["g_W0"].ravel() * pb.s_W

    def sparse(u: np.ndarray) -> tuple[float, np.ndarray]:
        f, gp, gw = evaluate(u[:GK] - u[GK: 2 * GK], u[2 * GK:])
        return f + l1 * u[: 2 * GK].sum(), np.concatenate([gp + l1, -gp + l1, gw])

    w0 = W0.ravel() / pb.s_W
    psi = psi0.ravel()
    if select:
        u0 = np.concatenate([np.maximum(psi, 0), np.maximum(-psi, 0), w0])
        bounds = [(0, None)] * (2 * GK) + pb.w_bounds(w0)
        u = _minimise(sparse, u0, bounds, pb.max_iter)
        psi, w0 = u[:GK] - u[GK: 2 * GK], u[2 * GK:]
    keep = np.abs(psi) > prune
    psi = np.where(keep, psi, 0.0)

    def relaxed(u: np.ndarray) -> tuple[float, np.ndarray]:
        f, gp, gw = evaluate(u[:GK], u[GK:])
        return f, np.concatenate([gp, gw])

    bounds = [(None, None) if k else (0.0, 0.0) for k in keep] + pb.w_bounds(w0)
    u = _minimise(relaxed, np.concatenate([psi, w0]), bounds, pb.max_iter)
    return u[:GK].reshape(G, K), u[GK:].reshape(shape) * pb.s_W


def _fit_mlp(pb: _Problem, p0: np.ndarray, W0: np.ndarray, obs: Observations) -> tuple[np.ndarray, np.ndarray]:
    n = p0.size
    shape = W0.shape
    prep = pb.rule.prepare(obs.context())

    def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
        out = run(pb.rule, u[:n], u[n:].reshape(shape) * pb.s_W, obs, pb.activation, prep, var_y=pb.var_y,
                  limit=BLOWUP * pb.s_W)
        if out is None:
            return 1e10, np.zeros(u.size)
        return out["loss"], np.concatenate([out["g_params"], out["g_W0"].ravel() * pb.s_W])

    w0 = W0.ravel() / pb.s_W
    u = _minimise(fun, np.concatenate([p0, w0]), [(None, None)] * n + pb.w_bounds(w0), pb.max_iter)
    return u[:n], u[n:].reshape(shape) * pb.s_W


def _monomials(terms: list[tuple[int, ...]], out: dict[str, Any], obs: Observations) -> np.ndarray:
    """Design ``(samples, K)`` of Taylor terms over a run's states (for the MLP projection)."""
    n, T, P, Q = obs.shape
    full = (n, T, P, Q)
    var = {"x": np.broadcast_to(obs.x[:, :, None, :], full), "y": np.broadcast_to(out["u"][..., None], full),
           "W": out["W"],
           "r": np.broadcast_to((obs.r if obs.r is not None else np.ones((n, T)))[:, :, None, None], full),
           "v": np.broadcast_to((obs.v if obs.v is not None else np.ones((n, T, P)))[..., None], full)}
    cols = []
    for e in terms:
        col = np.ones(full)
        for s, p in zip(VARIABLES, e):
            if p:
                col = col * var[s] ** p
        cols.append(col.ravel())
    return np.stack(cols, axis=1)


def _project(pb: _Problem, params: np.ndarray, W0: np.ndarray, obs: Observations,
             terms: list[tuple[int, ...]]) -> tuple[np.ndarray, float]:
    out = pb.run(params, W0, obs, grad=False)
    if out is None:
        return np.full(len(terms), np.nan), float("nan")
    X = _monomials(terms, out, obs)
    dW = out["dW"].ravel()
    d = np.sqrt((X * X).mean(axis=0))
    d = np.where(d > 0, d, 1.0)
    theta = np.linalg.lstsq(X / d, dW, rcond=None)[0] / d
    tss = float(((dW - dW.mean()) ** 2).sum())
    return theta, 1.0 - float(((dW - X @ theta) ** 2).sum()) / tss if tss > 0 else float("nan")


# ----------------------------------------------------------------------------- classification


def _bootstrap_calibration(n: int, B: int) -> tuple[float, float, float]:
    """Inflation, quantile and degrees of freedom of the bootstrap interval (module docstring).

    ``n`` trials, ``B`` finite resamples: the bootstrap variance over ``n`` trials is
    ``(n - 1) / n`` of the unbiased one (inflate the SD by ``sqrt(n / (n - 1))``); the
    variance estimate carries ``n - 1`` (trials) and ``B - 1`` (resamples) degrees of
    freedom, combined by matching the variance of the product of the two scaled chi-squared
    factors: ``1 / dof = 1 / (n - 1) + 1 / (B - 1) + 2 / ((n - 1) (B - 1))``.
    """
    a, b = n - 1, B - 1
    dof = 1.0 / (1.0 / a + 1.0 / b + 2.0 / (a * b))
    return float(np.sqrt(n / a)), float(student_t.ppf(0.975, dof)), dof


def _match(psi: np.ndarray, cov: np.ndarray, terms: list[tuple[int, ...]], psi_per_theta: np.ndarray,
           notes: list[str]) -> tuple[str, xr.Dataset]:
    K = psi.size
    floor = (RESOLUTION * max(float(np.abs(psi).max()), 1e-12)) ** 2
    S = cov + floor * np.eye(K)
    Si = np.linalg.inv(S)
    index = {t: k for k, t in enumerate(terms)}
    rows = []
    for pat in LIBRARY_PATTERNS:
        needed = {e for col in pat.basis for e in col}
        if not needed <= set(index):
            notes.append(f"{pat.name}: not testable (the fitted terms lack "
                         + ", ".join(term_name(e) for e in sorted(needed - set(index))) + ")")
            continue
        B = np.zeros((K, len(pat.basis)))
        for j, col in enumerate(pat.basis):
            for e, c in col.items():
                B[index[e], j] = c * psi_per_theta[index[e]]
        if B.shape[1]:
            eta = np.linalg.solve(B.T @ Si @ B, B.T @ Si @ psi)
            resid = psi - B @ eta
        else:
            eta, resid = np.zeros(0), psi
        d2 = float(resid @ Si @ resid)
        sign_ok = bool(np.all(np.asarray(pat.signs) * eta >= 0)) if B.shape[1] else True
        dof = K - B.shape[1]
        p = float(chi2.sf(d2, dof)) if dof > 0 else float(d2 < 1e-12)
        rows.append((pat.name, d2, dof, p, sign_ok, sign_ok and p >= 0.05, B.shape[1], pat.equation))
    passing = [r for r in rows if r[5]]
    best = min(passing, key=lambda r: (r[6], -r[3]))[0] if passing else "none"
    var = lambda i, units, name: (("family",), np.asarray([r[i] for r in rows]),  # noqa: E731
                                  {"units": units, "long_name": name})
    table = xr.Dataset({"d2": var(1, "1", "generalised least-squares distance to the family"),
                        "dof": var(2, "1", "degrees of freedom of the test"),
                        "p_value": var(3, "1", "chi-squared p-value of the distance"),
                        "sign_ok": var(4, "1", "family coefficients have the family's signs"),
                        "matched": var(5, "1", "family matches at the 5 % level"),
                        "n_params": var(6, "1", "free parameters of the family"),
                        "equation": var(7, "1", "the family's rule")},
                       coords={"family": ("family", [r[0] for r in rows],
                                          {"units": "1", "long_name": "library family"})},
                       attrs={"best": best})
    return best, table


def _unit(e: tuple[int, ...], units: dict[str, str], mode: str) -> str:
    """Units of a coefficient: weight units per step over the term's units."""
    powers: dict[str, int] = {}

    def add(u: str, p: int) -> None:
        if u != "1" and p:
            powers[u] = powers.get(u, 0) + p

    w_units = [(units["y"], 1), (units["x"], -1)] if mode == "activity" else [(units["x"], -1)]
    for u, p in w_units:
        add(u, p * (1 - e[2]))
    add(units["x"], -e[0])
    if mode == "activity":
        add(units["y"], -e[1])
    add(units["r"], -e[3])
    add(units["v"], -e[4])
    parts = [u if p == 1 else f"{u}^{p}" for u, p in powers.items() if p]
    return " ".join(parts) or "1"


def _prediction(final: dict[str, Any], obs: Observations, activation: str, units: dict[str, str],
                data: xr.Dataset, time: Any) -> tuple[xr.Dataset, float]:
    """Predicted vs observed activity (or choice probabilities vs choices), and R^2 (or the
    mean choice likelihood)."""
    n, T = obs.shape[:2]
    segmented = "trial" not in data.dims
    tcoord = time[:T] if time is not None and len(time) >= T and not segmented else np.arange(T)
    t_units = data["time"].attrs.get("units", "1") if "time" in data.coords and not segmented else "1"
    coords = {"trial": ("trial", np.arange(n), {"units": "1", "long_name": "trial (or segment)"}),
              "time": ("time", tcoord, {"units": t_units, "long_name": "time step"})}
    if obs.y is not None:
        Yhat = np.tanh(final["z"]) if activation == "tanh" else final["z"]
        u = units["y"]
        pred = xr.Dataset({"predicted": (("trial", "time", "post"), Yhat,
                                         {"units": u, "long_name": "post activity predicted by the fitted rule"}),
                           "observed": (("trial", "time", "post"), obs.y,
                                        {"units": u, "long_name": "recorded post activity"})}, coords=coords)
        return pred, 1.0 - final["loss"]
    pred = xr.Dataset({"probability": (("trial", "time", "action"), np.exp(final["logp"]),
                                       {"units": "1", "long_name": "choice probability of the fitted model"}),
                       "observed": (("trial", "time"), obs.choice.argmax(-1),
                                    {"units": "1", "long_name": "observed choice"})}, coords=coords)
    return pred, float(np.exp(-final["loss"]))


# ----------------------------------------------------------------------------- API


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low or \
            (high is not None and value > high):
        raise RangeError(_OBJ, name, value, f"expected an integer in [{low}, {high if high is not None else 'inf'}]")
    return int(value)


def _check_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or \
            not np.isfinite(value) or value < 0:
        raise RangeError(_OBJ, name, value, "expected a finite number >= 0")
    return float(value)


def _terms(terms: Iterable[Any] | None, degree: int, order: int | None, obs: Observations,
           present: set[str]) -> list[tuple[int, ...]]:
    if terms is None:
        post_signal = obs.y if obs.y is not None else obs.choice
        max_power = {"x": 1 if _two_valued(obs.x) else degree, "y": 1 if _two_valued(post_signal) else degree,
                     "W": degree, "r": (1 if _two_valued(obs.r) else degree) if "r" in present else 0,
                     "v": (1 if _two_valued(obs.v) else degree) if "v" in present else 0}
        out = taylor_terms(max_power, order)
        if obs.y is None:           # the same change for every action: invisible to the softmax
            out = [e for e in out if e[1] or e[2]]
        return out
    if isinstance(terms, str):
        terms = [terms]
    out = [parse_term(t) for t in terms]
    if not out:
        raise ValidationError(_OBJ, "terms", terms, "expected at least one term")
    if len(set(out)) != len(out):
        raise ValidationError(_OBJ, "terms", terms, "terms must be distinct")
    for t in out:
        for s, var in (("r", "reward"), ("v", "teacher")):
            if t[VARIABLES.index(s)] and s not in present:
                raise ValidationError(_OBJ, "terms", term_name(t), f"term uses {s} but the data have no {var} variable")
    return out


def infer_rule(data: xr.Dataset, family: str = "taylor", *, terms: Iterable[Any] | None = None,
               degree: int = 2, order: int | None = 3, activation: str = "linear",
               initial_weights: str = "fit", l1: float = 1e-3,
               prune: float = 1e-3, n_boot: int = 32, hidden: int = 8, segments: int = 8,
               n_actions: int | None = None, reselect: bool = True, max_iter: int = 500, seed: int = 0,
               pre: str = "pre", post: str = "post", reward: str | None = "reward",
               teacher: str | None = "teacher", choice: str = "choice") -> RuleInference:
    """Infer a plasticity rule from recorded activity (or choices) alone, without weights.

    The fitted network (stated in full in :mod:`plastinet.analysis.rule_recurrence`):
    ``y_t = f(W_t x_t)``, ``W_{t+1} = W_t + rule(x_t, y_t, W_t, r_t, v_t)`` with fitted
    initial weights per trial; for behaviour the choice probabilities are
    ``softmax(W_t x_t)`` and the rule sees the chosen action as one-hot ``y_t``. The fit
    minimises the normalised squared error of ``y`` (or the choices' negative
    log-likelihood) plus ``l1`` times the sum of the absolute standardised coefficients,
    with L-BFGS-B on exact gradients through time (see the module docstring).

    Parameters
    ----------
    data : xarray.Dataset
        ``pre (time, pre)`` or ``(trial, time, pre)``: presynaptic activity;
        ``post`` with the same leading dims and dim ``post``: recorded postsynaptic
        activity, or ``choice (time)`` / ``(trial, time)``: the action taken (integers);
        optional ``reward``: a scalar third factor per step ``(time)`` (shared by all
        trials) or ``(trial, time)``; optional ``teacher`` (like ``post``): a teaching input
        of each post neuron. Units are read from the ``units`` attrs.
    family : {"taylor", "mlp"}
        The rule's parameterisation.
    terms : iterable of str or tuple, optional
        Taylor terms, e.g. ``["x*y", "y^2*W", "W"]`` (symbols ``x, y, W, r, v``; powers
        ``^2``) or exponent tuples ``(a, b, c, d[, e])``. Default: every monomial with each
        variable's power at most ``degree`` (at most 1 for a variable with only two values,
        e.g. a binary reward or a choice, whose higher powers are not identifiable) and
        total degree at most ``order``; for choice data without the terms that depend on
        neither ``y`` nor ``W`` (they change every action's value alike, which the softmax
        cannot see).
    degree : int
        Highest power of each variable in the default terms (0 to 2).
    order : int or None
        Highest total degree of the default terms (``None``: no limit).
    activation : {"linear", "tanh"}
        Output nonlinearity ``f`` (activity data).
    initial_weights : {"fit", "zero"}
        ``"fit"``: the initial weights of every trial are fitted (starting from a static
        least-squares fit of its first steps); ``"zero"``: they are known to be zero (e.g. a
        naive animal's action values).
    l1 : float
        Weight of the L1 penalty on the standardised coefficients (Taylor family).
    prune : float
        Standardised coefficients at most this large after the sparse fit are set to zero.
    n_boot : int
        Bootstrap resamples over trials (0: no intervals). The interval's Student-t degrees
        of freedom grow with it (6 trials: half-width 3.92 bootstrap SDs with 8 resamples,
        3.02 with 32).
    reselect : bool
        Repeat the L1 selection in every resample (default). ``False``: refit only the
        terms selected on all trials, so the intervals are conditional on that selection
        (terms left out get ``[0, 0]``); about half the cost.
    hidden : int
        Hidden units of the MLP rule.
    segments : int
        Pieces a recording without a ``trial`` dim is cut into (each at least
        :data:`MIN_STEPS` steps).
    n_actions : int, optional
        Number of actions for choice data (default: the largest choice + 1, at least 2).
    max_iter : int
        Iterations of each L-BFGS-B run.
    seed : int
        Seed of the bootstrap and of the MLP's initial weights.
    pre, post, reward, teacher, choice : str
        Names of the variables in ``data`` (``reward``/``teacher`` None: ignore them).

    Returns
    -------
    RuleInference
        ``.coefficients`` (with 95 % intervals), ``.best``, ``.matches``, ``.prediction``,
        ``.plot()``.

    Raises
    ------
    ValidationError
        Missing variables (the message lists what is needed), too few steps, bad terms.
    ShapeError
        Variables with the wrong or mismatched dims.
    NonFiniteError
        NaN or infinite values.
    RangeError
        Choices outside ``0 .. n_actions - 1``; out-of-range options.
    UnsupportedError
        An unknown family or activation.

    Examples
    --------
    >>> from plastinet.experiments.rule_inference import planted_activity
    >>> ds = planted_activity("oja", trials=6, steps=60, seed=0, noise=0.02)
    >>> fit = infer_rule(ds, terms=["x*y", "y^2*W", "W", "y*W"], n_boot=8)
    >>> fit.best
    'oja'
    """
    if family not in ("taylor", "mlp"):
        raise UnsupportedError(_OBJ, "family", family, "known families: 'taylor', 'mlp'")
    if initial_weights not in ("fit", "zero"):
        raise UnsupportedError(_OBJ, "initial_weights", initial_weights, "allowed: 'fit', 'zero'")
    if activation not in ACTIVATIONS:
        raise UnsupportedError(_OBJ, "activation", activation, "known: " + ", ".join(map(repr, ACTIVATIONS)))
    degree = _check_int("degree", degree, 0, 2)
    if order is not None:
        order = _check_int("order", order, 0)
    n_boot, hidden = _check_int("n_boot", n_boot, 0), _check_int("hidden", hidden, 1)
    segments, max_iter = _check_int("segments", segments, 1), _check_int("max_iter", max_iter, 1)
    if n_actions is not None:
        n_actions = _check_int("n_actions", n_actions, 2)
    l1, prune = _check_float("l1", l1), _check_float("prune", prune)
    names = {"pre": pre, "post": post, "reward": reward, "teacher": teacher, "choice": choice}
    obs, units, notes, time = _observations(data, names, n_actions, segments)
    present = {"x", "y", "W"} | ({"r"} if obs.r is not None else set()) | ({"v"} if obs.v is not None else set())
    n, T, P, Q = obs.shape
    tlist = _terms(terms, degree, order, obs, present)
    W0, s_W = _initial_weights(obs, activation)
    if initial_weights == "zero":
        W0 = np.zeros_like(W0)
    post_signal = obs.y if obs.y is not None else obs.choice
    s = {"x": _rms(obs.x), "y": _rms(post_signal), "W": s_W, "r": _rms(obs.r), "v": _rms(obs.v)}
    term_scale = np.array([np.prod([s[v] ** p for v, p in zip(VARIABLES, e)]) for e in tlist])
    theta_per_psi = s_W / (T * term_scale)
    var_y = float(obs.y.var()) if obs.y is not None else 1.0
    if obs.y is not None and var_y <= 0:
        raise ValidationError(_OBJ, f"data[{post!r}]", obs.y, "the recorded activity is constant: nothing to fit")
    rng = np.random.default_rng(seed)
    boot_idx = [rng.integers(0, n, n) for _ in range(n_boot)] if n > 1 else []
    if n == 1 and n_boot:
        notes.append("one trial: no bootstrap intervals")
    if family == "taylor":
        rule = TaylorRule(tlist)
        pb = _Problem(obs, rule, activation, s_W, theta_per_psi, var_y, max_iter, initial_weights == "zero")
        psi, W0 = _fit_taylor(pb, np.zeros((1, len(tlist))), W0, obs, l1, prune)
        psi = psi[0]
        params = psi * theta_per_psi
        if boot_idx:
            idx = np.concatenate(boot_idx)
            boot = _fit_taylor(pb, np.tile(psi, (len(boot_idx), 1)), W0[idx], obs.take(idx), l1, prune,
                               reselect)[0]
        else:
            boot = np.zeros((0, psi.size))
    else:
        inputs = [v for v in VARIABLES if v in present]
        rule = MLPRule(inputs, hidden, s, s_W / T)
        pb = _Problem(obs, rule, activation, s_W, np.ones(rule.n_params), var_y, max_iter,
                      initial_weights == "zero")
        params, W0 = _fit_mlp(pb, rule.init(rng), W0, obs)
        theta, proj_r2 = _project(pb, params, W0, obs, tlist)
        notes.append(f"MLP rule: coefficients are its least-squares Taylor projection (R^2 = {proj_r2:.3f})")
        psi = theta / theta_per_psi
        boot = []
        for i in boot_idx:
            sub = obs.take(i)
            p_b, W_b = _fit_mlp(pb, params, W0[i], sub)
            boot.append(_project(pb, p_b, W_b, sub, tlist)[0] / theta_per_psi)
        boot = np.array(boot).reshape(-1, psi.size)
    final = pb.run(params if family == "mlp" else psi * theta_per_psi, W0, grad=False)
    if final is None:
        raise ValidationError(_OBJ, "data", "<Dataset>", "the fitted rule makes the weights blow up; try "
                                                          "fewer terms or a larger l1")
    theta = psi * theta_per_psi
    theta_b = boot * theta_per_psi
    ok = np.all(np.isfinite(theta_b), axis=1)
    if ok.sum() > 1:
        inflate, quantile, dof = _bootstrap_calibration(n, int(ok.sum()))
        half = quantile * inflate * theta_b[ok].std(axis=0, ddof=1)
        lo, hi = theta - half, theta + half
        cov = np.cov(boot[ok].T).reshape(psi.size, psi.size) * inflate ** 2
    else:
        lo = hi = np.full(theta.size, np.nan)
        dof, cov = float("nan"), np.zeros((psi.size, psi.size))
    best, matches = _match(psi, cov, tlist, 1.0 / theta_per_psi, notes)
    mode = obs.mode
    names_k = [term_name(e) for e in tlist]
    coefs = xr.DataArray(theta, dims="coefficient", name="coefficients",
                         coords={"coefficient": names_k, "ci_low": ("coefficient", lo), "ci_high": ("coefficient", hi),
                                 "effect": ("coefficient", psi), "effect_scale": ("coefficient", 1.0 / theta_per_psi),
                                 "units": ("coefficient", [_unit(e, units, mode) for e in tlist])},
                         attrs={"long_name": "Taylor coefficients of the inferred rule", "confidence": 0.95,
                                "ci_method": "estimate +- t(0.975, dof) sqrt(n / (n - 1)) bootstrap standard "
                                             f"deviations over n = {n} trials ({len(boot_idx)} resamples, "
                                             f"dof = {dof:.2f})",
                                "effect": "standardised coefficient: fraction of the weight scale changed per trial"})
    pred, r2 = _prediction(final, obs, activation, units, data, time)
    Wda = xr.DataArray(W0, dims=("trial", "post", "pre"), name="initial_weights",
                       attrs={"units": _unit((0, 0, 0, 0, 0), units, mode), "long_name": "fitted initial weights"})
    model = ("y_t = " + ("tanh(W_t x_t)" if activation == "tanh" and mode == "activity" else "W_t x_t")
             + (", p(choice_t) = softmax(W_t x_t), y_t = one-hot choice" if mode == "choice" else "")
             + f", W_(t+1) = W_t + rule(x, y, W{', r' if 'r' in present else ''}{', v' if 'v' in present else ''})"
             + (", initial weights fitted per trial" if initial_weights == "fit" else ", initial weights zero"))
    boot_da = xr.DataArray(theta_b, dims=("resample", "coefficient"), coords={"coefficient": names_k},
                           name="bootstrap", attrs={"units": "various", "long_name": "bootstrap coefficients"})
    return RuleInference(family, coefs, best, matches, pred, Wda, float(final["loss"]), float(r2), boot_da,
                         notes, model, params)
