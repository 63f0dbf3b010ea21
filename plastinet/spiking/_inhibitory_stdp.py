"""Numpy-engine state of :class:`~plastinet.spiking.rules.InhibitorySTDP` (Vogels et al. 2011).

Pre and post traces (``x_pre`` per presynaptic, ``x_post`` per postsynaptic neuron, time
constant ``tau``, +1 per spike, exact lazy decay). The pre pathway transmits ``w``, jumps
``x_pre`` and then applies ``w += eta (x_post - alpha)``; the post pathway jumps ``x_post``
and applies ``w += eta x_pre``; every change is clipped to ``[w_min, w_max]`` (the rule's
``on_pre`` / ``on_post`` statements, in that order).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plastinet.spiking._plasticity import RuleState, Trace
from plastinet.spiking.registry import RULES
from plastinet.spiking.rules import InhibitorySTDP


@RULES.register(InhibitorySTDP)
class InhibitorySTDPState(RuleState):
    """Symmetric iSTDP window with the depression ``eta alpha`` per pre spike."""

    def __init__(self, rule: InhibitorySTDP, p: Any, modulators: dict[str, Any]) -> None:
        super().__init__(rule, p, modulators)
        self.check_taus("tau")
        self.x_pre = Trace(p.n_pre, rule.tau, p.dt)
        self.x_post = Trace(p.n_post, rule.tau, p.dt)
        self.traces = {"x_pre": self.x_pre, "x_post": self.x_post}
        self.pre_traces, self.has_post_pathway = ("x_pre",), True
        self.eta, self.alpha = rule.eta, rule.alpha

    def pre(self, syn: np.ndarray, rep: np.ndarray, js: np.ndarray, steps: Any, ss: Any) -> np.ndarray:
        p = self.p
        delivered = p.w[syn]
        self.x_pre.bump(js, steps)
        p.clip(syn, delivered + self.eta * (self.x_post.at(p.post[syn], ss) - self.alpha))
        return delivered

    def post(self, step: int, idx: np.ndarray) -> None:
        p = self.p
        self.x_post.bump(idx, step)
        syn, _ = p.fan_in(idx)
        p.clip(syn, p.w[syn] + self.eta * self.x_pre.at(p.pre[syn], step))
