"""Feature maps ``phi`` applied to keys and queries before they reach the fast weights.

A feature map is a small, exactly differentiable function from ``R^d`` to ``R^{d_phi}``
applied along the last axis. Positive maps (ELU+1, ReLU, softmax, DPFP) give non-negative
keys and queries: the firing rates of a spiking realisation, and the kernel view of linear
attention. Optional normalisation divides by the sum (positive maps only) or the L2 norm.

=============  ===========================================  ==========  ==============
kind           phi(x)                                       d_phi       positive
=============  ===========================================  ==========  ==============
``identity``   ``x``                                        ``d``       no
``elu+1``      ``elu(x) + 1`` (Katharopoulos et al. 2020)   ``d``       yes
``relu``       ``max(x, 0)``                                ``d``       yes (>= 0)
``softmax``    ``exp(x) / sum(exp(x))`` over the key axis   ``d``       yes
``dpfp``       DPFP-nu (Schlag et al. 2021), see below      ``2 nu d``  yes (>= 0)
=============  ===========================================  ==========  ==============

DPFP-nu: with ``r = [relu(x), relu(-x)]`` (length ``2d``), the features are the products
``r_i * r_{i-j}`` (indices modulo ``2d``) for ``j = 1..nu``, concatenated over ``j``.

Normalisation (after the map): ``"sum"``: ``phi / (sum(phi) + eps)``; ``"l2"``:
``phi / sqrt(||phi||^2 + eps)``. Both are smooth, so gradients are exact.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from plastinet.errors import RangeError, UnsupportedError, ValidationError
from plastinet.params import Parameter, Spec

__all__ = ["FeatureMap", "as_feature_map"]

_KINDS = ("identity", "elu+1", "relu", "softmax", "dpfp")
_POSITIVE = {"elu+1", "relu", "softmax", "dpfp"}


class FeatureMap(Spec):
    """A feature map ``phi`` for keys and queries (dimensionless).

    Parameters
    ----------
    kind : {"identity", "elu+1", "relu", "softmax", "dpfp"}
        The map; see the module docstring for the equations.
    nu : int
        DPFP order (``>= 1``); the output has ``2 * nu * d`` features. Ignored by other kinds.
    normalize : {None, "sum", "l2"}
        Normalisation applied after the map. ``"sum"`` needs a positive map.
    eps : float
        Smoothing constant of the normalisation (``>= 0``, dimensionless).

    Examples
    --------
    >>> phi = FeatureMap("dpfp", nu=2, normalize="sum")
    >>> phi.out_dim(64)
    256
    """

    key = "feature_map"
    kind = Parameter("identity", choices=_KINDS, doc="the map")
    nu = Parameter(1, low=1, integer=True, doc="DPFP order")
    normalize = Parameter(None, choices=(None, "sum", "l2"), doc="normalisation after the map")
    eps = Parameter(1e-12, low=0.0, doc="normalisation smoothing constant")

    def _check(self) -> None:
        if self.normalize == "sum" and self.kind not in _POSITIVE:
            raise UnsupportedError("FeatureMap", "normalize", "sum",
                                   f"sum-normalisation needs a positive map ({sorted(_POSITIVE)}), "
                                   f"not kind={self.kind!r}; use normalize='l2'")

    def __setattr__(self, name: str, value: Any) -> None:
        """Validate on set, including the cross-parameter check (restored on failure)."""
        params = self.__dict__["_params"]
        complete = len(params) == len(self.parameters())   # False while __init__ runs
        old = params.get(name)
        super().__setattr__(name, value)
        if complete:
            try:
                self._check()
            except Exception:
                params[name] = old
                raise

    @property
    def positive(self) -> bool:
        """Whether the map's outputs are non-negative (usable as firing rates)."""
        return self.kind in _POSITIVE

    def out_dim(self, d: int) -> int:
        """Number of features ``d_phi`` for inputs of size ``d``."""
        return 2 * self.nu * d if self.kind == "dpfp" else d

    # -- maths -----------------------------------------------------------------------------
    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply the map along the last axis (same dtype out)."""
        return self.forward(x)[0]

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, tuple]:
        """``phi(x)`` and the values the backward pass needs."""
        kind = self.kind
        if kind == "identity":
            raw = x
        elif kind == "elu+1":
            raw = np.where(x > 0, x + 1, np.exp(np.minimum(x, 0)))
        elif kind == "relu":
            raw = np.maximum(x, 0)
        elif kind == "softmax":
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            raw = e / e.sum(axis=-1, keepdims=True)
        else:
            r = np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], axis=-1)
            raw = np.concatenate([r * np.roll(r, j, axis=-1) for j in range(1, self.nu + 1)], axis=-1)
        if self.normalize is None:
            return raw, (x, raw, None)
        if self.normalize == "sum":
            denom = raw.sum(axis=-1, keepdims=True) + self.eps
        else:
            denom = np.sqrt((raw * raw).sum(axis=-1, keepdims=True) + self.eps)
        return raw / denom, (x, raw, denom)

    def vjp(self, cache: tuple, g: np.ndarray, overwrite: bool = False) -> np.ndarray:
        """Pull the cotangent ``g`` of ``phi(x)`` back to ``x`` (exact).

        ``overwrite``: ``g`` may be overwritten (the normalisation's backward then writes
        into it rather than into a new array of its size).
        """
        x, raw, denom = cache
        if self.normalize is not None:
            g = self._normalize_vjp(raw, denom, g, overwrite)
        kind = self.kind
        if kind == "identity":
            return g
        if kind == "elu+1":
            return g * np.where(x > 0, 1.0, raw).astype(x.dtype, copy=False)
        if kind == "relu":
            return g * (x > 0)
        if kind == "softmax":
            return raw * (g - (g * raw).sum(axis=-1, keepdims=True))
        d2 = 2 * x.shape[-1]
        r = np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], axis=-1)
        gr = np.zeros_like(r)
        for j in range(1, self.nu + 1):
            gj = g[..., (j - 1) * d2: j * d2]
            gr += gj * np.roll(r, j, axis=-1) + np.roll(gj * r, -j, axis=-1)
        d = x.shape[-1]
        return gr[..., :d] * (x > 0) - gr[..., d:] * (x < 0)


    def _normalize_vjp(self, raw: np.ndarray, denom: np.ndarray, g: np.ndarray,
                       overwrite: bool) -> np.ndarray:
        """Backward of ``raw / denom`` for the cotangent ``g``, by blocks of
        :data:`VJP_ROWS` rows (their temporaries stay in cache; into ``g`` with
        ``overwrite`` where ``g`` is C-contiguous, else into a new array).

        With ``r = 1 / denom`` and ``s = g . raw`` per row: ``g r - raw (s r^3)`` (``l2``),
        ``g r - s r^2`` (``sum``): one product pass and two elementwise passes over the
        block, no division of its entries."""
        d = g.shape[-1]
        # C order: the row view of ``out`` below must be a view (it is written through)
        out = (g if overwrite and g.flags.c_contiguous and g.dtype == raw.dtype
               else np.empty(raw.shape, dtype=raw.dtype))
        rows_g, rows_raw, rows_out = (np.reshape(a, (-1, d)) for a in (g, raw, out))
        rows_r = 1.0 / np.reshape(denom, (-1, 1))
        tmp = np.empty((min(VJP_ROWS, rows_out.shape[0]), d), dtype=raw.dtype)
        for start in range(0, rows_out.shape[0], VJP_ROWS):
            blk = slice(start, start + VJP_ROWS)
            gb, rb, ob, r = rows_g[blk], rows_raw[blk], rows_out[blk], rows_r[blk]
            s = np.einsum("rd,rd->r", gb, rb)[:, None]                       # g . raw
            if self.normalize == "sum":
                s *= r * r
                np.multiply(gb, r, out=ob)
                ob -= s
            else:
                s *= r * r * r
                t = tmp[: len(rb)]
                np.multiply(rb, s, out=t)
                np.multiply(gb, r, out=ob)
                ob -= t
        return out


#: Rows per block of the normalisation's backward (:meth:`FeatureMap.vjp`): 1024 rows of
#: d = 64 float32 numbers are 256 KB, in cache between the block's passes.
VJP_ROWS = 1024

_STRING_RE = re.compile(r"^(identity|elu\+1|relu|softmax|dpfp)(?:-(\d+))?$")


def as_feature_map(value: Any) -> FeatureMap:
    """Coerce a :class:`FeatureMap` or a string (``"elu+1"``, ``"dpfp-2"``) to a FeatureMap.

    Raises
    ------
    ValidationError
        For an unknown name.
    """
    if isinstance(value, FeatureMap):
        return value
    if isinstance(value, str):
        match = _STRING_RE.match(value.strip().lower())
        if match and (match.group(2) is None or match.group(1) == "dpfp"):
            try:
                return FeatureMap(match.group(1), nu=int(match.group(2) or 1))
            except (ValidationError, ValueError) as err:     # nu < 1 or too large; over 4300 digits
                allowed = f"{err.parameter} {err.allowed}" if isinstance(err, ValidationError) else str(err)
                raise RangeError("rule", "feature_map", value, f"'dpfp-<nu>' with {allowed}") from None
    raise ValidationError("rule", "feature_map", value,
                          "expected a FeatureMap or one of 'identity', 'elu+1', 'relu', "
                          "'softmax', 'dpfp', 'dpfp-<nu>'")
