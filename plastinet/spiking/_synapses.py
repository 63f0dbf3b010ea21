"""Projection state of the numpy engine: connectivity, weights, short-term plasticity.

Synapses are stored sorted by presynaptic neuron (CSR, ``indptr_pre``) with a
permutation by postsynaptic neuron (``by_post``, ``indptr_post``), so a pre spike touches
its fan-out and a post spike its fan-in: the cost of a step grows with spikes x fan-out.
Long-term plasticity is delegated to the rule's state, built through the registry
(:data:`plastinet.spiking.registry.RULES`, implementations in
:mod:`plastinet.spiking._plasticity`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from plastinet.spiking._plasticity import NEVER
from plastinet.spiking.draws import connectivity, delay_steps
from plastinet.spiking.guards import check_tau
from plastinet.spiking.network import Projection
from plastinet.spiking.registry import RULES


def gather(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated index ranges ``indptr[r]:indptr[r+1]`` and the row position of each."""
    starts = indptr[rows]
    counts = indptr[rows + 1] - starts
    if rows.size == 1:
        return np.arange(starts[0], starts[0] + counts[0]), np.zeros(counts[0], dtype=np.int64)
    rep = np.repeat(np.arange(rows.size), counts)
    offs = np.arange(rep.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return starts[rep] + offs, rep


class ProjectionState:
    """Connectivity, weights, short-term and long-term plasticity state of a projection."""

    def __init__(self, proj: Projection, dt: float, rng: np.random.Generator, modulators: dict) -> None:
        self.proj, self.name, self.dt = proj, proj.name, dt
        n_pre, n_post = proj.pre.n, proj.post.n
        self.n_pre, self.n_post = n_pre, n_post
        self.dense = proj.connectivity == "all"
        drawn = connectivity(proj, rng)
        self.pre, self.post, self.w = drawn.pre, drawn.post, drawn.w
        self.w_min, self.w_max = proj.w_min, proj.w_max
        self.bounded = math.isfinite(self.w_min) or math.isfinite(self.w_max)
        self.indptr_pre = np.searchsorted(self.pre, np.arange(n_pre + 1))
        self._delays(proj, dt, drawn.delay)
        self.by_post = np.argsort(self.post, kind="stable")
        self.indptr_post = np.searchsorted(self.post[self.by_post], np.arange(n_post + 1))
        self.target = proj.target
        self.scale = 1.0 / proj.post.tau if not proj.post.spiking else 1.0   # RateUnits: x += w / tau
        self.transmits = proj.target != "none"
        # short-term plasticity (per presynaptic neuron)
        self.stp = proj.stp
        if self.stp is not None:
            check_tau(f"TsodyksMarkram ({proj.name!r})", "tau_rec", self.stp.tau_rec, dt)
            if self.stp.tau_facil > 0:
                check_tau(f"TsodyksMarkram ({proj.name!r})", "tau_facil", self.stp.tau_facil, dt)
            self.u = np.zeros(self.n_rows)
            self.R = np.ones(self.n_rows)
            self.stp_last = np.full(self.n_rows, NEVER, dtype=np.int64)
        # long-term plasticity: the rule's own state, from the registry
        self.rule = proj.rule
        self.rule_name = None if self.rule is None else type(self.rule).__name__
        self.plasticity = None if self.rule is None else RULES.build(self.rule, self, modulators)
        self.has_post_pathway = self.plasticity is not None and self.plasticity.has_post_pathway
        self.continuous = self.plasticity is not None and self.plasticity.continuous

    def _delays(self, proj: Projection, dt: float, seconds: np.ndarray) -> None:
        """Per-synapse delays in whole steps and the presynaptic rows (see ``_plasticity``).

        ``delay_steps`` is None when the projection has no delay parameter (0). Otherwise a
        row is a (pre neuron, delay) pair, numbered in that order; without delays (or all
        rounding to one value) rows are the pre neurons themselves.
        """
        d = proj.delay
        self.delay_steps: np.ndarray | None = None
        self.max_delay = 0
        self.n_rows, self.pre_row = self.n_pre, self.pre        # rows = pre neurons
        self.row_delay: np.ndarray | None = None
        self.by_row: np.ndarray | None = None
        self.indptr_row = self.indptr_pre
        if isinstance(d, float) and d == 0.0:
            return
        steps = delay_steps(seconds, dt)
        self.delay_steps = steps
        self.max_delay = int(steps.max()) if steps.size else 0
        if self.max_delay == 0:
            return
        stride = self.max_delay + 1
        keys = self.pre * stride + steps
        row_keys, self.pre_row = np.unique(keys, return_inverse=True)
        self.pre_row = self.pre_row.astype(np.int64).reshape(-1)
        self.n_rows = row_keys.size
        self.row_key, self.row_stride = row_keys, stride
        self.row_delay = row_keys % stride
        self.by_row = np.argsort(self.pre_row, kind="stable")
        self.indptr_row = np.searchsorted(self.pre_row[self.by_row], np.arange(self.n_rows + 1))

    def arrivals(self, steps: np.ndarray, neurons: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows reached in steps ``[a, b)`` by pre spikes ``(steps, neurons)``.

        Returns ``(arrival steps, rows)`` sorted by step, then row. A spike of neuron ``j``
        at step ``t`` reaches row ``(j, d)`` at ``t + d``; spikes older than
        ``a - max_delay`` reach nothing in the window.
        """
        stride = self.row_stride
        lo_d = np.clip(a - steps, 0, stride)
        hi_d = np.clip(b - steps, 0, stride)
        base = neurons * stride
        lo = np.searchsorted(self.row_key, base + lo_d)
        hi = np.searchsorted(self.row_key, base + hi_d)
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            empty = np.zeros(0, np.int64)
            return empty, empty
        rep = np.repeat(np.arange(lo.size), counts)
        rows = lo[rep] + (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts))
        at = steps[rep] + self.row_delay[rows]
        order = np.lexsort((rows, at))
        return at[order], rows[order]

    # -- helpers --------------------------------------------------------------------------
    def clip(self, syn: np.ndarray, values: np.ndarray) -> None:
        if self.bounded:
            np.clip(values, self.w_min, self.w_max, out=values)
        self.w[syn] = values

    def fan_out(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Synapses of presynaptic ``rows`` and the position of each synapse's row."""
        pos, rep = gather(self.indptr_row, rows)
        return (pos if self.by_row is None else self.by_row[pos]), rep

    def fan_in(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, rep = gather(self.indptr_post, rows)
        return self.by_post[pos], rep

    def snapshot(self) -> dict:
        """What a pre pathway changes (weights, STP, the rule's pre-side state)."""
        snap: dict[str, Any] = {"w": self.w.copy()}
        if self.stp is not None:
            snap["stp"] = (self.u.copy(), self.R.copy(), self.stp_last.copy())
        if self.plasticity is not None:
            snap["rule"] = self.plasticity.snapshot()
        return snap

    def restore(self, snap: dict) -> None:
        self.w = snap["w"]
        if "stp" in snap:
            self.u, self.R, self.stp_last = snap["stp"]
        if "rule" in snap:
            self.plasticity.restore(snap["rule"])

    def weights_at(self, step: int) -> np.ndarray:
        """Current weights (as the rule sees them at ``step``, without changing state)."""
        if self.plasticity is not None:
            return self.plasticity.weights_at(step)
        return self.w.copy()

    # -- pathways -------------------------------------------------------------------------
    def pre_round(self, steps: Any, js: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Pre pathway for distinct neurons ``js`` spiking at ``steps`` (array or scalar).

        Returns ``(event position of each synapse, post index, delivered value)`` (or None
        when the projection transmits nothing).
        """
        factor = None
        if self.stp is not None:
            stp = self.stp
            gap = (steps - self.stp_last[js]) * self.dt
            if stp.tau_facil > 0:
                u = self.u[js] * np.exp(-gap / stp.tau_facil)
                u = u + stp.U * (1.0 - u)
            else:
                u = np.full(js.size, stp.U)
            R = 1.0 + (self.R[js] - 1.0) * np.exp(-gap / stp.tau_rec)
            factor = u * R
            self.u[js], self.R[js], self.stp_last[js] = u, R - u * R, steps
        syn, rep = self.fan_out(js)
        if self.plasticity is None:
            delivered = self.w[syn]
        else:
            ss = steps[rep] if isinstance(steps, np.ndarray) else steps
            delivered = self.plasticity.pre(syn, rep, js, steps, ss)
        if not self.transmits:
            return None
        if factor is not None:
            delivered = delivered * factor[rep]
        if self.scale != 1.0:
            delivered = delivered * self.scale
        return rep, self.post[syn], delivered

    def post_pathway(self, step: int, idx: np.ndarray) -> None:
        """Post pathway for post neurons ``idx`` spiking at ``step``."""
        self.plasticity.post(step, idx)

    def continuous_update(self, step: int, m: float, post_state: Any) -> None:
        """Per-step update of continuous rules (``synapses`` slot, order 0)."""
        self.plasticity.continuous_update(step, m, post_state)
