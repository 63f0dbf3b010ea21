"""Fit per-step weight changes to rule families: :func:`fit_rule` and its result.

Statistics (per family, see :mod:`plastinet.analysis.families` for the design matrices):

* ordinary least squares of ``dW`` on the family's terms, pooled over time steps and
  synapses (at most ``max_synapses`` synapses, and at most ``2e5 / T`` (but at least 16),
  drawn at random with ``seed``);
* a trace decay ``gamma`` is profiled: least squares on a grid of time constants
  ``tau = -1 / ln(gamma)`` (0.05 to ``3 T`` steps, log-spaced), then refined by a bounded
  scalar search;
* 95 % confidence intervals by the percentile bootstrap over *time steps* (all synapses of
  a step stay together, so shared modulators and correlated noise are respected), computed
  from per-step sufficient statistics;
* explained variance ``R^2 = 1 - RSS / sum (dW - mean dW)^2``;
* Gaussian information criteria with ``n`` samples and ``k`` parameters:
  ``AIC = n ln(RSS / n) + 2 k``, ``BIC = n ln(RSS / n) + k ln n``. Families are ranked by
  BIC (consistent: with enough data it selects the smallest family that contains the
  truth); ``bic_weight`` is ``exp(-dBIC / 2)`` normalised over the families. RSS is floored
  at ``1e-12 sum dW^2`` (the rounding of the normal equations), so that exact fits of
  noise-free data tie and the family with fewer parameters wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import xarray as xr
from scipy.optimize import minimize_scalar

from plastinet.analysis.families import FAMILIES, Family, Variables, family_terms
from plastinet.errors import NonFiniteError, ShapeError, UnsupportedError, ValidationError
from plastinet.seeds import check_seed

__all__ = ["fit_rule", "RuleFit", "FamilyFit", "MIN_STEPS", "rule_variables"]

_OBJ = "fit_rule"
#: Fewest time steps :func:`fit_rule` accepts.
MIN_STEPS = 10
_DIMS = {"dW": ("time", "post", "pre"), "pre": ("time", "pre"), "post": ("time", "post"),
         "W": ("time", "post", "pre"), "modulator": ("time",), "error": ("time", "post")}
_NEEDED = ("dW (time, post, pre), pre (time, pre) and post (time, post); optionally "
           "W (time, post, pre) (weight before the change), modulator (time), error (time, post)")
_N_GRID = 64
#: At most this many samples (time steps x synapses) enter a fit; more synapses are subsampled.
_MAX_SAMPLES = 200_000
#: Relative resolution of the residual sum of squares (rounding of the normal equations).
_RSS_FLOOR = 1e-12
_N_FINE = 33


@dataclass
class FamilyFit:
    """Fit of one family.

    Attributes
    ----------
    family : Family
        The family.
    coefficients : xarray.DataArray
        Estimates along dim ``coefficient`` with coords ``ci_low``, ``ci_high`` (95 %
        percentile bootstrap), ``term`` and ``units``; includes ``gamma``/``tau`` and
        derived coefficients (BCM ``theta``).
    rss, tss : float
        Residual and total (centred) sums of squares, in ``dW`` units squared.
    n, k : int
        Samples (time steps x synapses) and fitted parameters.
    r2, aic, bic : float
        Explained variance and information criteria.
    """

    family: Family
    coefficients: xr.DataArray
    rss: float
    tss: float
    n: int
    k: int
    r2: float
    aic: float
    bic: float
    gamma: float | None


def _stats(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-step Gram matrices ``(T, p, p)`` and cross products ``(T, p)``."""
    return np.einsum("tsp,tsq->tpq", X, X), np.einsum("tsp,ts->tp", X, y)


def _solve(G: np.ndarray, b: np.ndarray, yy: np.ndarray, sign: int) -> tuple[np.ndarray, np.ndarray]:
    """Batched least squares from normal equations (column-scaled pseudo-inverse)."""
    d = np.sqrt(np.einsum("...ii->...i", G))
    d = np.where(d > 0, d, 1.0)
    Gs = G / (d[..., :, None] * d[..., None, :])
    beta = np.einsum("...ij,...j->...i", np.linalg.pinv(Gs, rcond=1e-12, hermitian=True), b / d) / d
    if sign and beta.shape[-1] == 1:
        beta = np.where(sign * beta < 0, 0.0, beta)
    rss = yy - 2 * np.einsum("...i,...i->...", beta, b) + np.einsum("...i,...ij,...j->...", beta, G, beta)
    return beta, np.maximum(rss, 0.0)


def _design(family: Family, v: Variables, gamma: float) -> np.ndarray:
    return np.stack(family.build(v, gamma), axis=-1)


def _gamma(u: np.ndarray | float) -> np.ndarray | float:
    """Trace decay from ``u = ln tau`` (tau in steps)."""
    return np.exp(-np.exp(-np.asarray(u, dtype=float)))


def _parabolic(rss: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid argmin of ``rss (B, G)`` refined by a parabola through its neighbours.

    Returns the refined positions, the centre index ``i`` of the three grid points used
    (``1 <= i <= G - 2``) and the offset ``s`` of the refined position from ``u[i]`` in
    grid steps (``-1 <= s <= 1``).
    """
    i = np.clip(np.argmin(rss, axis=1), 1, rss.shape[1] - 2)
    rows = np.arange(rss.shape[0])
    r0, r1, r2 = rss[rows, i - 1], rss[rows, i], rss[rows, i + 1]
    den = r0 - 2 * r1 + r2
    off = np.where(den > 0, 0.5 * (r0 - r2) / np.where(den > 0, den, 1.0), 0.0)
    off = np.clip(off, -1.0, 1.0)
    return u[i] + off * (u[1] - u[0]), i, off


def _lagrange3(values: np.ndarray, i: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Quadratic interpolation of ``values (B, G, p)`` at ``i + s`` (grid units), per row."""
    rows = np.arange(values.shape[0])
    w = np.stack([0.5 * s * (s - 1), 1 - s * s, 0.5 * s * (s + 1)], axis=1)      # (B, 3)
    pts = np.stack([values[rows, i - 1], values[rows, i], values[rows, i + 1]], axis=1)   # (B, 3, p)
    return np.einsum("bk,bkp->bp", w, pts)


def _resolution(G: np.ndarray, floor: float) -> np.ndarray:
    """Half-widths of the region where the RSS rises by less than ``floor`` (per coefficient).

    For least squares ``RSS(theta) - RSS_min = (theta - theta_hat)^T G (theta - theta_hat)``,
    so coefficient ``j`` is numerically undetermined within ``sqrt(floor (G^-1)_jj)``.
    """
    d = np.sqrt(np.diag(G))
    d = np.where(d > 0, d, 1.0)
    inv = np.linalg.pinv(G / np.outer(d, d), rcond=1e-12, hermitian=True) / np.outer(d, d)
    return np.sqrt(floor * np.clip(np.diag(inv), 0.0, None))


def _fit_family(family: Family, v: Variables, counts: np.ndarray, names: tuple[str, ...],
                terms: tuple[str, ...]) -> FamilyFit:
    y = v.dW
    T = y.shape[0]
    yy_t = np.einsum("ts,ts->t", y, y)
    n = y.size
    tss = float(((y - y.mean()) ** 2).sum())
    yy_b = counts @ yy_t

    def stats(gamma: float) -> tuple[np.ndarray, np.ndarray]:
        return _stats(_design(family, v, gamma), y)

    def boot(st: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        G, b = st
        p = b.shape[1]
        Gb = (counts @ G.reshape(T, -1)).reshape(-1, p, p)
        return _solve(Gb, counts @ b, yy_b, family.sign)

    def total(st: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, float]:
        beta, rss = _solve(st[0].sum(0), st[1].sum(0), yy_t.sum(), family.sign)
        return beta, float(rss)

    floor = _RSS_FLOOR * float(yy_t.sum())
    if not family.has_gamma:
        st = stats(0.0)
        beta, rss = total(st)
        beta_b, _ = boot(st)
        gamma, gamma_b = None, None
        res = _resolution(st[0].sum(0), floor)
    else:
        u = np.linspace(np.log(0.05), np.log(3.0 * T), _N_GRID)
        grid = [stats(float(_gamma(ui))) for ui in u]
        grid_rss = np.array([total(st)[1] for st in grid])
        i = int(np.argmin(grid_rss))
        opt = minimize_scalar(lambda ui: total(stats(float(_gamma(ui))))[1], method="bounded",
                              bounds=(u[max(i - 1, 0)], u[min(i + 1, _N_GRID - 1)]),
                              options={"xatol": 1e-10})
        u_hat = float(opt.x) if opt.fun <= grid_rss[i] else float(u[i])
        gamma = float(_gamma(u_hat))
        st_hat = stats(gamma)
        beta, rss = total(st_hat)
        # bootstrap: coarse grid to find the spread, then a fine grid across it; each
        # resample's optimum by a parabola, its coefficients interpolated at that optimum
        coarse = np.stack([boot(st)[1] for st in grid], axis=1)
        del grid
        ub, _, _ = _parabolic(coarse, u)
        step = u[1] - u[0]
        pad = step
        for _ in range(2):          # a fine grid across the spread, then a zoom into it
            lo_u, hi_u = min(ub.min(), u_hat) - pad, max(ub.max(), u_hat) + pad
            fine = np.linspace(lo_u, hi_u, _N_FINE)
            fits = [boot(stats(float(_gamma(ui)))) for ui in fine]
            ub, idx, off = _parabolic(np.stack([f[1] for f in fits], axis=1), fine)
            pad = 2 * (fine[1] - fine[0])
        beta_b = _lagrange3(np.stack([f[0] for f in fits], axis=1), idx, off)
        gamma_b = _gamma(ub)
        # numerical resolution: the coefficients at fixed gamma, plus the range of gamma
        # (and of the coefficients profiled over it) where the RSS rises by less than the floor
        res = _resolution(st_hat[0].sum(0), floor)
        h = 1e-3
        r_m, r_p = (total(stats(float(_gamma(u_hat + e))))[1] for e in (-h, h))
        curv = (r_m - 2 * max(rss, 0.0) + r_p) / h ** 2
        du = float(np.sqrt(2 * floor / curv)) if curv > 0 else 0.0
        du = min(du, step)
        if du > 0:
            b_m, b_p = (total(stats(float(_gamma(u_hat + e))))[0] for e in (-du, du))
            res = res + np.maximum(np.abs(b_m - beta), np.abs(b_p - beta))
        g_res = abs(float(_gamma(u_hat + du)) - gamma) if du > 0 else 0.0

    est = list(beta)
    resol = list(res)
    boots = [beta_b[:, j] for j in range(beta_b.shape[1])]
    names, terms = list(names), list(terms)
    if family.name == "bcm":
        with np.errstate(divide="ignore", invalid="ignore"):
            est.append(-beta[1] / beta[0])
            boots.append(-beta_b[:, 1] / beta_b[:, 0])
            resol.append(abs(res[1] / beta[0]) + abs(beta[1] * res[0] / beta[0] ** 2))
        names.append("theta")
        terms.append("-b/eta")
    if gamma is not None:
        est += [gamma, -1.0 / np.log(gamma)]
        boots += [gamma_b, -1.0 / np.log(gamma_b)]
        resol += [g_res, g_res / (gamma * np.log(gamma) ** 2)]
        names += ["gamma", "tau"]
        terms += ["trace decay per step", "trace time constant (steps)"]
    boots_arr = np.stack(boots, axis=1)
    lo, hi = np.nanpercentile(boots_arr, [2.5, 97.5], axis=0)
    # never narrower than the numerical resolution of the estimate (noise-free data)
    est_arr, resol = np.asarray(est, dtype=float), np.nan_to_num(np.asarray(resol, dtype=float))
    lo, hi = np.fmin(lo, est_arr - resol), np.fmax(hi, est_arr + resol)
    units = [_coef_unit(t, v.units) for t in terms]
    coefs = xr.DataArray(np.asarray(est, dtype=float), dims="coefficient",
                         coords={"coefficient": names, "ci_low": ("coefficient", lo),
                                 "ci_high": ("coefficient", hi), "term": ("coefficient", terms),
                                 "units": ("coefficient", units)},
                         name=f"{family.name}_coefficients",
                         attrs={"long_name": f"coefficients of the {family.name} family",
                                "equation": family.equation, "confidence": 0.95,
                                "ci_method": f"percentile bootstrap over time steps ({counts.shape[0]} resamples)"})
    k = family.n_params(len(beta))
    rss = max(rss, floor, 1e-300)   # exact fits tie; fewer parameters win
    ll = n * np.log(rss / n)
    return FamilyFit(family, coefs, rss, tss, n, k, 1.0 - rss / tss if tss > 0 else float("nan"),
                     float(ll + 2 * k), float(ll + k * np.log(n)), gamma)


_TERM_UNITS = {"x": ("x",), "y": ("y",), "w": ("w",), "e": ("e",), "m": ("m",), "E": ("y", "x"),
               "P": ("x",), "(y-<y>)": ("y",), "(x-<x>)": ("x",), "-w": ("w",), "1": ()}


def _coef_unit(term: str, units: dict[str, str]) -> str:
    """Units of a coefficient: ``dW`` units over the term's units (plain text)."""
    if term == "trace decay per step":
        return "1"
    if term == "trace time constant (steps)":
        return "step"
    if term == "-b/eta":
        return units.get("y", "1")
    powers: dict[str, int] = {}
    for factor in term.split("-")[0].split("*") if term != "-w" else ["-w"]:
        base, _, exp = factor.partition("^")
        for sym in _TERM_UNITS.get(base, ()):
            unit = units.get(sym, "1")
            if unit != "1":
                powers[unit] = powers.get(unit, 0) + int(exp or 1)
    factors = [u + (f"^{p}" if p > 1 else "") for u, p in powers.items()]
    dw = units.get("dW", "1")
    return dw if not factors else f"{dw} / ({' '.join(factors)})"


class RuleFit:
    """Result of :func:`fit_rule`: all families, ranked by BIC.

    Attributes
    ----------
    best : str
        Name of the selected family (lowest BIC).
    coefficients : xarray.DataArray
        The best family's coefficients with 95 % bootstrap bounds (coords ``ci_low``,
        ``ci_high``).
    r2 : float
        Explained variance of the best family.
    classification : str
        Plain-language description, e.g. ``"delta-like, gated by a third factor correlated
        with modulator = programmed learning rate beta_t (r = 0.99)"`` (the gate's
        ``long_name``, when it has one, follows its name).
    fits : dict of str to FamilyFit
        Every fitted family.
    notes : list of str
        Families skipped and why.
    """

    def __init__(self, fits: dict[str, FamilyFit], variables: Variables, gates: dict[str, np.ndarray],
                 notes: list[str], gate_names: dict[str, str] | None = None) -> None:
        self.fits = dict(sorted(fits.items(), key=lambda kv: (kv[1].bic, kv[1].k)))
        self.best = next(iter(self.fits))
        self.notes = notes
        self._v = variables
        self._gates = gates
        self._gate_names = dict(gate_names or {})
        self.classification = self._classify()

    @property
    def coefficients(self) -> xr.DataArray:
        return self.fits[self.best].coefficients

    @property
    def r2(self) -> float:
        return self.fits[self.best].r2

    def table(self) -> xr.Dataset:
        """All families ranked by BIC: ``r2``, ``aic``, ``bic``, ``delta_bic``, ``bic_weight``,
        ``n_params``, ``rss``, ``label`` along dim ``family``."""
        f = list(self.fits.values())
        bic = np.array([x.bic for x in f])
        d = bic - bic.min()
        w = np.exp(-0.5 * d)
        var = lambda data, units, name: (("family",), np.asarray(data), {"units": units, "long_name": name})  # noqa: E731
        return xr.Dataset(
            {"r2": var([x.r2 for x in f], "1", "explained variance"),
             "aic": var([x.aic for x in f], "1", "Akaike information criterion"),
             "bic": var(bic, "1", "Bayesian information criterion"),
             "delta_bic": var(d, "1", "BIC minus the best BIC"),
             "bic_weight": var(w / w.sum(), "1", "BIC model weight"),
             "n_params": var([x.k for x in f], "1", "fitted parameters"),
             "rss": var([x.rss for x in f], self._v.units.get("dW", "1") + "^2", "residual sum of squares"),
             "label": var([x.family.label for x in f], "1", "plain-language family name")},
            coords={"family": ("family", [x.family.name for x in f], {"units": "1", "long_name": "rule family"})},
            attrs={"best": self.best, "classification": self.classification, "n_samples": f[0].n,
                   "notes": "; ".join(self.notes)})

    def predict(self, family: str | None = None) -> xr.Dataset:
        """Observed and predicted ``dW`` of the sampled synapses, dims ``(time, synapse)``."""
        fit = self.fits[family or self.best]
        fam = fit.family
        X = _design(fam, self._v, fit.gamma or 0.0)
        beta = fit.coefficients.values[: X.shape[-1]]
        u = self._v.units.get("dW", "1")
        return xr.Dataset({"observed": (("time", "synapse"), self._v.dW, {"units": u, "long_name": "observed dW"}),
                           "predicted": (("time", "synapse"), X @ beta,
                                         {"units": u, "long_name": f"dW predicted by {fam.name}"})},
                          attrs={"family": fam.name})

    def gate_profile(self, family: str | None = None) -> xr.DataArray:
        """Per-step gain ``g_t`` of a family's terms with the modulator set to 1: the
        least-squares factor by which step ``t``'s weight change scales the fitted rule."""
        fit = self.fits[family or self.best]
        v = self._v.without_modulator()
        X = _design(fit.family, v, fit.gamma or 0.0)
        X = X @ fit.coefficients.values[: X.shape[-1]]
        den = np.einsum("ts,ts->t", X, X)
        g = np.einsum("ts,ts->t", X, v.dW) / np.where(den > 0, den, np.nan)
        return xr.DataArray(g, dims="time", name="gate",
                            attrs={"units": "1", "long_name": "per-step gain of the fitted rule"})

    def _gate_correlations(self) -> list[tuple[str, float]]:
        g = self.gate_profile().values
        out = []
        for name, s in self._gates.items():
            ok = np.isfinite(g)
            if ok.sum() > 2 and np.std(s[ok]) > 0 and np.std(g[ok]) > 0:
                out.append((name, float(np.corrcoef(g[ok], s[ok])[0, 1])))
        return sorted(out, key=lambda t: -abs(t[1]))

    def _classify(self) -> str:
        fit = self.fits[self.best]
        fam = fit.family
        c = fit.coefficients
        text = fam.label
        if fam.name == "bcm":
            theta = float(c.sel(coefficient="theta"))
            y = self._v.y
            text += (f" (depression below the postsynaptic threshold theta = {theta:.3g}, "
                     "potentiation above)")
            if np.isfinite(theta) and (theta > y.max() or theta < y.min()):
                net = "depression" if (theta > y.max()) == (float(c.sel(coefficient="eta")) > 0) else "potentiation"
                text += (f"; the threshold lies outside the observed postsynaptic range "
                         f"[{y.min():.3g}, {y.max():.3g}]: {net} throughout")
        if fam.name.startswith("polynomial"):
            X = _design(fam, self._v, 0.0)
            contrib = np.sqrt(np.mean((X * c.values[: X.shape[-1]]) ** 2, axis=(0, 1)))
            text += f" with no simpler named form (largest term: {family_terms(fam, self._v.w is not None)[1][int(np.argmax(contrib))]})"
        if fam.has_gamma:
            text += f", eligibility time constant {float(c.sel(coefficient='tau')):.3g} steps"
        if fam.modulated:
            corr = self._gate_correlations()
            text += ", gated by a third factor"
            if corr:
                name = corr[0][0]
                what = self._gate_names.get(name, "")
                what = f" = {what}" if what and not what.startswith(name) else ""
                text += f" correlated with {name}{what} (r = {corr[0][1]:.2f})"
        if not fit.r2 > 0.2:
            text = f"weakly explained (R^2 = {fit.r2:.2f}): " + text
        return text

    def plot(self, ax: Any = None, kind: str = "ranking") -> Any:
        """Draw the family ranking (``kind="ranking"``) or observed vs predicted ``dW``
        (``kind="scatter"``); see :func:`plastinet.plotting.plot_rule_fit`."""
        from plastinet.plotting import plot_rule_fit

        return plot_rule_fit(self, ax=ax, kind=kind)

    def __repr__(self) -> str:
        return f"<RuleFit best={self.best!r} r2={self.r2:.3f}: {self.classification}>"


def _variable(data: xr.Dataset, name: str) -> np.ndarray | None:
    if name not in data.variables:
        return None
    da = data[name]
    want = _DIMS[name]
    if set(da.dims) != set(want) or da.ndim != len(want):
        raise ShapeError(_OBJ, f"data[{name!r}]", da, f"expected dims {want}, got {da.dims}")
    arr = np.asarray(da.transpose(*want).values, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise NonFiniteError(_OBJ, f"data[{name!r}]", arr, "all entries must be finite")
    return arr


def rule_variables(data: xr.Dataset, max_synapses: int, seed: int) -> tuple[Variables, dict[str, np.ndarray], set[str]]:
    """Validate a plasticity Dataset and sample synapses.

    Returns the sampled :class:`Variables`, the per-step signals that can gate plasticity
    (every ``(time,)`` variable), and the names of the optional variables present.
    """
    if not isinstance(data, xr.Dataset):
        raise ValidationError(_OBJ, "data", data, "expected an xarray.Dataset with " + _NEEDED)
    missing = [n for n in ("dW", "pre", "post") if n not in data.variables]
    if missing:
        raise ValidationError(_OBJ, "data", f"<Dataset with {sorted(map(str, data.data_vars))}>",
                              f"missing {', '.join(missing)}; a plasticity Dataset needs " + _NEEDED)
    arrs = {n: _variable(data, n) for n in _DIMS}
    T, n_post, n_pre = arrs["dW"].shape
    if T < MIN_STEPS:
        raise ValidationError(_OBJ, "data", f"<Dataset with time={T}>",
                              f"too few samples: needs at least {MIN_STEPS} time steps, got {T}")
    if not np.any(arrs["dW"]):
        raise ValidationError(_OBJ, "data['dW']", arrs["dW"], "dW is zero everywhere: nothing to fit")
    rng = np.random.default_rng(seed)
    n_syn = n_post * n_pre
    keep = min(max_synapses, max(16, _MAX_SAMPLES // T))      # bounds the design's memory
    flat = np.arange(n_syn) if n_syn <= keep else np.sort(rng.choice(n_syn, keep, replace=False))
    i, j = np.divmod(flat, n_pre)
    units = {"dW": data["dW"].attrs.get("units", "1"), "x": data["pre"].attrs.get("units", "1"),
             "y": data["post"].attrs.get("units", "1")}
    pick = lambda a: None if a is None else a[:, i, j]  # noqa: E731
    v = Variables(arrs["dW"][:, i, j], arrs["pre"][:, j], arrs["post"][:, i], pick(arrs["W"]),
                  None if arrs["error"] is None else arrs["error"][:, i],
                  None if arrs["modulator"] is None else arrs["modulator"][:, None], units)
    for sym, name in (("w", "W"), ("e", "error"), ("m", "modulator")):
        if name in data.variables:
            units[sym] = data[name].attrs.get("units", "1")
    gates = {str(n): np.asarray(data[n].values, dtype=float) for n in data.data_vars
             if data[n].dims == ("time",)}
    present = {n for n in ("W", "error", "modulator") if arrs[n] is not None}
    return v, gates, present


def fit_rule(data: xr.Dataset, families: Iterable[str] | None = None, seed: int = 0, *,
             n_boot: int = 200, max_synapses: int = 2000) -> RuleFit:
    """Fit the per-step weight changes of a run to rule families and select the best.

    Parameters
    ----------
    data : xarray.Dataset
        ``dW (time, post, pre)``: weight change at each step; ``pre (time, pre)``:
        presynaptic activity or trace; ``post (time, post)``: postsynaptic activity or
        target; optionally ``W (time, post, pre)`` (weight *before* the change),
        ``modulator (time)`` and ``error (time, post)``. Any further ``(time,)`` variable is a
        candidate for the gate named in the classification. Units are taken from the
        variables' ``units`` attrs (default ``"1"``). :func:`plasticity_trace` builds such
        a Dataset from a rate FWP run or a weight recording.
    families : iterable of str, optional
        Families to fit (keys of :data:`plastinet.analysis.FAMILIES`). Default: every family
        whose variables are present; families with a modulator are skipped when the
        modulator is constant (they would duplicate the unmodulated ones).
    seed : int
        Seed of the synapse subsample and the bootstrap.
    n_boot : int
        Bootstrap resamples (over time steps).
    max_synapses : int
        At most this many synapses (drawn at random) enter the fit; long runs keep at most
        ``max(16, 200000 // T)`` so that the design matrices stay small.

    Returns
    -------
    RuleFit
        ``.best``, ``.coefficients`` (DataArray with 95 % bounds), ``.r2``,
        ``.classification``, ``.table()``, ``.plot()``.

    Raises
    ------
    ValidationError
        If variables are missing (the message lists what is needed), have the wrong dims,
        are not finite, or there are fewer than :data:`MIN_STEPS` time steps; if a requested
        family needs a variable the Dataset lacks; for an unknown family.

    Examples
    --------
    >>> from plastinet.analysis import fit_rule, synthetic_trace, OJA
    >>> fit = fit_rule(synthetic_trace(OJA, seed=1), seed=0)
    >>> fit.best, fit.classification.startswith("Oja-like")
    ('oja', True)
    """
    for name, value, low in (("n_boot", n_boot, 20), ("max_synapses", max_synapses, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValidationError(_OBJ, name, value, f"expected an integer >= {low}")
    seed = check_seed(_OBJ, seed, allow_none=False)
    v, gates, present = rule_variables(data, int(max_synapses), seed)
    notes: list[str] = []
    if families is None:
        chosen = [f for f in FAMILIES.values() if set(f.requires) <= present]
        if v.m is not None and np.ptp(v.m) <= 1e-12 * max(1.0, float(np.abs(v.m).max())):
            notes.append("modulator is constant: modulated families skipped")
            chosen = [f for f in chosen if not f.modulated]
    else:
        names = [families] if isinstance(families, str) else list(families)
        if not names:
            raise ValidationError(_OBJ, "families", families, "expected at least one family name")
        chosen = []
        for name in names:
            if name not in FAMILIES:
                raise UnsupportedError(_OBJ, "families", name, "known families: " + ", ".join(FAMILIES))
            fam = FAMILIES[name]
            lacking = [r for r in fam.requires if r not in present]
            if lacking:
                raise ValidationError(_OBJ, "data", f"<Dataset without {', '.join(lacking)}>",
                                      f"family {name!r} needs " + ", ".join(
                                          f"{r} {_DIMS[r]}" for r in lacking))
            chosen.append(fam)
    T = v.dW.shape[0]
    counts = np.random.default_rng(seed + 1).multinomial(T, np.full(T, 1.0 / T), size=int(n_boot)).astype(float)
    fits = {}
    for fam in chosen:
        names, terms = family_terms(fam, v.w is not None)
        if v.dW.size < 5 * fam.n_params(len(names)):
            notes.append(f"{fam.name}: too few samples for {fam.n_params(len(names))} parameters")
            continue
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            fits[fam.name] = _fit_family(fam, v, counts, names, terms)
    if not fits:
        raise ValidationError(_OBJ, "data", f"<Dataset with {v.dW.size} samples>",
                              "too few samples for any family: needs at least 5 samples "
                              "(time steps x synapses) per parameter")
    gate_names = {n: str(data[n].attrs.get("long_name", "")) for n in gates}
    return RuleFit(fits, v, gates, notes, gate_names)
