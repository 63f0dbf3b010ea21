"""Spike-based plasticity rules, as specification objects (parameters + equations only).

Every rule declares its parameters (SI units), the traces it needs and its update
equations in three symbolic attributes written in Brian2's syntax, so that the brian2
backend can lower them to ``Synapses(model=..., on_pre=..., on_post=...)``:

``model``
    Per-synapse / per-trace state and its (event-driven) dynamics.
``on_pre`` / ``on_post``
    Statements executed, in order, for each synapse of a spiking pre / post neuron.
``continuous``
    For rules that change weights in every step (PES, modulated Hebbian): the per-step
    update, lowered to ``run_regularly`` in the ``synapses`` slot (order 0).

``w`` is the weight, bounded to ``[w_min, w_max]`` of the projection; ``clip`` is applied
after every weight change. Traces are exact exponentials between events.
"""

from __future__ import annotations

from typing import Any, ClassVar

from plastinet.errors import UnsupportedError, ValidationError
from plastinet.params import Parameter, Spec

__all__ = ["SpikeRule", "PairSTDP", "TripletSTDP", "DopamineSTDP", "InhibitorySTDP", "PES",
           "ModulatedHebbian", "TsodyksMarkram", "RULES"]


def _mod_name(value: Any) -> str:
    if not isinstance(value, str) or not value.isidentifier():
        raise ValidationError("SpikeRule", "modulator", value, "expected the name of a modulator")
    return value


class SpikeRule(Spec):
    """Base class of long-term spike-based plasticity rules."""

    model: ClassVar[str] = ""
    on_pre: ClassVar[str] = ""
    on_post: ClassVar[str] = ""
    continuous: ClassVar[str] = ""
    source: ClassVar[str] = ""

    def check_projection(self, projection: Any) -> None:
        """Raise if the rule cannot be used on ``projection`` (called by Projection)."""

    def equations(self) -> dict[str, str]:
        """The symbolic description: ``{"model", "on_pre", "on_post", "continuous"}``."""
        return {"model": self.model, "on_pre": self.on_pre, "on_post": self.on_post,
                "continuous": self.continuous}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description including the equations."""
        return {**super().to_dict(), "equations": self.equations()}


class PairSTDP(SpikeRule):
    """Pair-based STDP (Song, Miller & Abbott 2000; Bi & Poo 1998).

    Presynaptic trace ``x`` (time constant ``tau_plus``) and postsynaptic trace ``y``
    (``tau_minus``) jump by 1 (``pairing="all"``: all-to-all interaction) or are reset to 1
    (``pairing="nearest"``: symmetric nearest-spike interaction, Morrison et al. 2008).
    On a presynaptic spike ``w -= A_minus * f_-(w) * y``; on a postsynaptic spike
    ``w += A_plus * f_+(w) * x``; with ``bound="additive"``: ``f_+ = f_- = 1`` and hard
    clipping to ``[w_min, w_max]``; ``bound="soft"`` (multiplicative):
    ``f_+ = w_max - w``, ``f_- = w - w_min``.

    For one pair at ``dt_s = t_post - t_pre``: ``dw = A_plus exp(-dt_s / tau_plus)`` for
    ``dt_s >= 0`` (a pair in the same time step counts as causal, because the pre pathway
    runs before the post pathway), ``dw = -A_minus exp(dt_s / tau_minus)`` for
    ``dt_s < 0``. Poisson drift (Kempter et al. 1999):
    ``<dw/dt> = r_pre r_post (A_plus tau_plus - A_minus tau_minus)``.

    Parameters
    ----------
    A_plus, A_minus : float
        Potentiation / depression amplitudes (weight units; ``A_minus > 0`` depresses).
    tau_plus, tau_minus : float
        Trace time constants (s).
    pairing : {"all", "nearest"}
    bound : {"additive", "soft"}
    """

    source = "Song, Miller & Abbott 2000; Morrison, Diesmann & Gerstner 2008"
    A_plus = Parameter(0.01, low=0.0, doc="potentiation amplitude")
    A_minus = Parameter(0.0105, low=0.0, doc="depression amplitude (positive)")
    tau_plus = Parameter(0.02, unit="s", low=0.0, low_open=True, doc="pre trace time constant (s)")
    tau_minus = Parameter(0.02, unit="s", low=0.0, low_open=True, doc="post trace time constant (s)")
    pairing = Parameter("all", choices=("all", "nearest"), doc="spike interaction")
    bound = Parameter("additive", choices=("additive", "soft"), doc="weight dependence")

    model = ("dx/dt = -x / tau_plus : 1 (event-driven)\n"
             "dy/dt = -y / tau_minus : 1 (event-driven)")

    def check_projection(self, projection: Any) -> None:
        import math
        if self.bound == "soft" and not (math.isfinite(projection.w_min) and math.isfinite(projection.w_max)):
            raise ValidationError("PairSTDP", "bound", self.bound,
                                  f"projection {projection.name!r}: soft bounds scale the updates with "
                                  f"w_max - w and w - w_min, so they need finite w_min and w_max "
                                  f"(got [{projection.w_min:g}, {projection.w_max:g}])")

    def equations(self) -> dict[str, str]:
        """Update statements for this rule's ``pairing`` and ``bound``."""
        jump_x = "x = 1" if self.pairing == "nearest" else "x += 1"
        jump_y = "y = 1" if self.pairing == "nearest" else "y += 1"
        if self.bound == "additive":
            dep, pot = "w = clip(w - A_minus * y, w_min, w_max)", "w = clip(w + A_plus * x, w_min, w_max)"
        else:
            dep = "w = clip(w - A_minus * (w - w_min) * y, w_min, w_max)"
            pot = "w = clip(w + A_plus * (w_max - w) * x, w_min, w_max)"
        return {"model": self.model, "on_pre": f"{{target}} += w\n{jump_x}\n{dep}",
                "on_post": f"{jump_y}\n{pot}", "continuous": ""}


class TripletSTDP(SpikeRule):
    """Triplet STDP (Pfister & Gerstner 2006), all-to-all or nearest-spike.

    Pre traces ``r1`` (``tau_plus``), ``r2`` (``tau_x``); post traces ``o1``
    (``tau_minus``), ``o2`` (``tau_y``). On a pre spike
    ``w -= o1 * (A2_minus + A3_minus * r2)`` (``r2`` before its own jump), then
    ``r1, r2`` jump; on a post spike ``w += r1 * (A2_plus + A3_plus * o2)`` (``o2``
    before its jump), then ``o1, o2`` jump. Jumps are ``+= 1`` (``pairing="all"``) or
    ``= 1`` (``"nearest"``).

    The defaults and the presets :meth:`visual_cortex_minimal`, :meth:`visual_cortex_full`
    (Table 3 of the paper, visual cortex data) and :meth:`hippocampal_full`,
    :meth:`hippocampal_minimal` (Table 4, hippocampal culture data) are the paper's
    **all-to-all** fits. The paper fitted separate parameter sets for nearest-spike
    pairing (the nearest-spike rows of Tables 3 and 4); they are not shipped (not verified
    against the paper), so ``pairing="nearest"`` requires every fitted parameter
    (:attr:`FITTED`: ``A2_plus, A3_plus, A2_minus, A3_minus, tau_x, tau_y``) to be given
    explicitly and the presets refuse it (:class:`~plastinet.errors.ValidationError`).

    Parameters
    ----------
    A2_plus, A3_plus, A2_minus, A3_minus : float
        Amplitudes (weight units).
    tau_plus, tau_minus, tau_x, tau_y : float
        Trace time constants (s).
    pairing : {"all", "nearest"}
    """

    source = "Pfister & Gerstner 2006, J Neurosci 26:9673 (Table 3: visual cortex; Table 4: hippocampal culture)"
    #: Parameters fitted separately for each pairing scheme (nearest-spike needs them given).
    FITTED: ClassVar[tuple[str, ...]] = ("A2_plus", "A3_plus", "A2_minus", "A3_minus", "tau_x", "tau_y")
    A2_plus = Parameter(5e-10, low=0.0, doc="pair potentiation amplitude")
    A3_plus = Parameter(6.2e-3, low=0.0, doc="triplet potentiation amplitude")
    A2_minus = Parameter(7e-3, low=0.0, doc="pair depression amplitude")
    A3_minus = Parameter(2.3e-4, low=0.0, doc="triplet depression amplitude")
    tau_plus = Parameter(0.0168, unit="s", low=0.0, low_open=True, doc="r1 time constant (s)")
    tau_minus = Parameter(0.0337, unit="s", low=0.0, low_open=True, doc="o1 time constant (s)")
    tau_x = Parameter(0.101, unit="s", low=0.0, low_open=True, doc="r2 time constant (s)")
    tau_y = Parameter(0.125, unit="s", low=0.0, low_open=True, doc="o2 time constant (s)")
    pairing = Parameter("all", choices=("all", "nearest"), doc="spike interaction")

    model = ("dr1/dt = -r1 / tau_plus : 1 (event-driven)\ndr2/dt = -r2 / tau_x : 1 (event-driven)\n"
             "do1/dt = -o1 / tau_minus : 1 (event-driven)\ndo2/dt = -o2 / tau_y : 1 (event-driven)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given = set(kwargs) | set(list(self.parameters())[:len(args)])
        super().__init__(*args, **kwargs)
        missing = [name for name in self.FITTED if name not in given]
        if self.pairing == "nearest" and missing:
            raise ValidationError("TripletSTDP", "pairing", "nearest",
                                  f"nearest-spike pairing needs explicit {', '.join(missing)}: the defaults "
                                  "are Pfister & Gerstner's (2006) all-to-all fit, and the paper fitted "
                                  "separate nearest-spike parameters (Tables 3 and 4), which plastinet does "
                                  "not ship")

    def replace(self, **changes: Any) -> "TripletSTDP":
        """A copy with some parameters changed; switching to ``pairing="nearest"`` needs the
        :attr:`FITTED` parameters among ``changes`` (they do not carry over)."""
        params = self.get_params()
        if changes.get("pairing") == "nearest" and self.pairing != "nearest":
            params = {k: v for k, v in params.items() if k not in self.FITTED}
        return type(self)(**{**params, **changes})

    def equations(self) -> dict[str, str]:
        """Update statements for this rule's ``pairing``."""
        op = "=" if self.pairing == "nearest" else "+="
        return {"model": self.model,
                "on_pre": f"{{target}} += w\nw = clip(w - o1 * (A2_minus + A3_minus * r2), w_min, w_max)\n"
                          f"r1 {op} 1\nr2 {op} 1",
                "on_post": f"w = clip(w + r1 * (A2_plus + A3_plus * o2), w_min, w_max)\no1 {op} 1\no2 {op} 1",
                "continuous": ""}

    @classmethod
    def _preset(cls, preset: str, row: dict[str, float], kw: dict[str, Any]) -> "TripletSTDP":
        if kw.get("pairing", "all") != "all":
            raise ValidationError(f"TripletSTDP.{preset}", "pairing", kw["pairing"],
                                  "this preset is an all-to-all fit of Pfister & Gerstner (2006); "
                                  "allowed: 'all' (for nearest-spike pairing build TripletSTDP(pairing="
                                  f"'nearest', ...) with explicit {', '.join(cls.FITTED)})")
        return cls(**{**row, **kw})

    @classmethod
    def visual_cortex_minimal(cls, **kw: Any) -> "TripletSTDP":
        """Visual cortex, all-to-all, minimal model (Table 3: A2+ = 0, A3- = 0, tau_y = 114 ms)."""
        return cls._preset("visual_cortex_minimal", {"A2_plus": 0.0, "A3_plus": 6.5e-3, "A2_minus": 7.1e-3,
                                                     "A3_minus": 0.0, "tau_x": 0.101, "tau_y": 0.114}, kw)

    @classmethod
    def visual_cortex_full(cls, **kw: Any) -> "TripletSTDP":
        """Visual cortex, all-to-all, full model (Table 3; = NEST 3.10 ``stdp_triplet_synapse``)."""
        return cls._preset("visual_cortex_full", {"A2_plus": 5e-10, "A3_plus": 6.2e-3, "A2_minus": 7e-3,
                                                  "A3_minus": 2.3e-4, "tau_x": 0.101, "tau_y": 0.125}, kw)

    @classmethod
    def hippocampal_full(cls, **kw: Any) -> "TripletSTDP":
        """Hippocampal culture, all-to-all, full model (Table 4)."""
        return cls._preset("hippocampal_full", {"A2_plus": 6.1e-3, "A3_plus": 6.7e-3, "A2_minus": 1.6e-3,
                                                "A3_minus": 1.4e-3, "tau_x": 0.946, "tau_y": 0.027}, kw)

    @classmethod
    def hippocampal_minimal(cls, **kw: Any) -> "TripletSTDP":
        """Hippocampal culture, all-to-all, minimal model (Table 4; ``tau_x`` is unused, A3- = 0)."""
        return cls._preset("hippocampal_minimal", {"A2_plus": 5.3e-3, "A3_plus": 8e-3, "A2_minus": 3.5e-3,
                                                   "A3_minus": 0.0, "tau_x": 0.946, "tau_y": 0.040}, kw)


class DopamineSTDP(SpikeRule):
    """Dopamine-modulated STDP with an eligibility trace (NEST ``stdp_dopamine_synapse``).

    ``dc/dt = -c / tau_c + A_plus K_plus delta(t - t_post) - A_minus K_minus delta(t - t_pre)``,
    ``dw/dt = c (n - b)``, with ``K_plus`` (``tau_plus``) / ``K_minus`` (``tau_minus``)
    the pre / post traces (+1 per spike) and ``n(t)`` the :class:`SpikeSignal`
    ``modulator`` (decay ``tau_n``). Between events ``w`` is integrated exactly::

        w += c n tau_s (1 - exp(-D/tau_s)) - b c tau_c (1 - exp(-D/tau_c)),  1/tau_s = 1/tau_c + 1/tau_n

    then clipped to ``[w_min, w_max]``; events are the synapse's pre and post spikes and
    every modulator event (Izhikevich 2007; NEST's closed form: one eligibility ``c0`` and
    one dopamine jump ``n0`` at the same time give ``dw = c0 n0 tau_c tau_n / (tau_c + tau_n)``).
    The final weights of a run are integrated to its end, not to the synapse's last spike.

    Parameters
    ----------
    A_plus, A_minus : float
        Eligibility increments (NEST defaults 1.0 and 1.5).
    tau_plus, tau_minus : float
        Pre / post trace time constants (s).
    tau_c : float
        Eligibility time constant (s).
    b : float
        Dopamine baseline (units of ``n``, per second: ``1000 x`` NEST's per-ms ``b``; a
        negative ``b`` is a tonic dopamine level).
    modulator : str
        Name of the SpikeSignal carrying ``n``.
    convention : {"all_to_all", "nearest"}
        Trace convention (see Notes).

    Notes
    -----
    *Trace convention.* ``convention="all_to_all"`` (the default, NEST's): all-to-all traces jump
    by 1 per spike, so every earlier spike counts. ``convention="nearest"``: Izhikevich's
    reference code ``daspnet.m`` resets a neuron's STDP trace to its amplitude at each spike
    (``K = 1`` instead of ``K += 1``), so only the nearest earlier spike of the partner
    counts. Example: pre spikes at 0 and 10 ms and a post spike at 20 ms
    (``tau_plus = 20 ms``) add ``A_plus (e^-1 + e^-0.5) = 0.974 A_plus`` to ``c`` with
    ``"all_to_all"`` and ``A_plus e^-0.5 = 0.607 A_plus`` with ``"nearest"``.

    *NEST correspondence* (``stdp_dopamine_synapse``). NEST works in ms: its dopamine
    concentration ``n`` (a volume-transmitter spike adds ``1/tau_n``) and baseline ``b``
    are per millisecond, and ``dw/dt = c (n - b)`` per ms. Here time is in s, so ``n`` and
    ``b`` are per second: ``b = 1000 b_NEST`` (and ``n = 1000 n_NEST``) gives the same
    weight change; ``A_plus``, ``A_minus`` and ``c`` are the same numbers. NEST integrates
    the weight to the end of the simulation, as the final weights here are; compare at the
    end of the run, not at the synapse's last spike.
    """

    source = "Izhikevich 2007, Cereb Cortex 17:2443; NEST stdp_dopamine_synapse (Potjans et al. 2010)"
    needs_spike_signal: ClassVar[bool] = True   #: its modulator must be a SpikeSignal
    A_plus = Parameter(1.0, low=0.0, doc="eligibility potentiation amplitude")
    A_minus = Parameter(1.5, low=0.0, doc="eligibility depression amplitude (positive)")
    tau_plus = Parameter(0.02, unit="s", low=0.0, low_open=True, doc="pre trace time constant (s)")
    tau_minus = Parameter(0.02, unit="s", low=0.0, low_open=True, doc="post trace time constant (s)")
    tau_c = Parameter(1.0, unit="s", low=0.0, low_open=True, doc="eligibility time constant (s)")
    b = Parameter(0.0, doc="dopamine baseline")
    modulator = Parameter("dopamine", convert=_mod_name, doc="SpikeSignal name")
    convention = Parameter("all_to_all", choices=("all_to_all", "nearest"), doc="trace convention")

    model = ("dKp/dt = -Kp / tau_plus : 1 (event-driven)\ndKm/dt = -Km / tau_minus : 1 (event-driven)\n"
             "c, w integrated exactly between events: dc/dt = -c/tau_c, dw/dt = c (n - b)")

    def equations(self) -> dict[str, str]:
        """Update statements for this rule's trace ``convention``."""
        op = "=" if self.convention == "nearest" else "+="
        return {"model": self.model,
                "on_pre": f"(integrate w, c to t)\n{{target}} += w\nc -= A_minus * Km\nKp {op} 1",
                "on_post": f"(integrate w, c to t)\nc += A_plus * Kp\nKm {op} 1", "continuous": ""}


class InhibitorySTDP(SpikeRule):
    """Inhibitory STDP (Vogels, Sprekeler, Zenke, Clopath & Gerstner 2011).

    Pre and post traces ``x_pre``, ``x_post`` (time constant ``tau``) jump by 1 per spike.
    On a presynaptic spike ``w += eta (x_post - alpha)``; on a postsynaptic spike
    ``w += eta x_pre``; ``alpha = 2 rho0 tau`` and ``w`` is clipped to
    ``[w_min, w_max]`` after every change. The window is symmetric: one pair at any
    ``|t_post - t_pre| = s`` adds ``eta exp(-s / tau)``, and every pre spike subtracts
    ``eta alpha``, so for Poisson pre firing at ``r_pre`` the drift is
    ``eta r_pre (2 tau r_post - alpha) = 2 eta tau r_pre (r_post - rho0)``: inhibition grows
    while the post rate exceeds ``rho0`` and shrinks below it. A same-step pair counts once
    (the pre pathway runs first and sees ``x_post`` before the post spike's jump; the post
    update sees the pre jump), as in Brian2's ``examples/frompapers/Vogels_et_al_2011.py``.
    NEST's peer is ``vogels_sprekeler_synapse`` (``eta``, ``alpha``, ``tau``, ``Wmax``).

    ``w`` is the magnitude of the inhibition (growing ``w`` strengthens it), so the
    projection needs ``w_min >= 0`` and a target on which positive weights inhibit (e.g.
    :class:`~plastinet.spiking.network.ConductanceLIF` ``"g_i"``).

    Parameters
    ----------
    eta : float
        Learning rate (weight units).
    tau : float
        Trace time constant (s).
    rho0 : float
        Target post rate (Hz).
    """

    source = "Vogels, Sprekeler, Zenke, Clopath & Gerstner 2011, Science 334:1569"
    eta = Parameter(0.01, low=0.0, doc="learning rate (weight units)")
    tau = Parameter(0.02, unit="s", low=0.0, low_open=True, doc="trace time constant (s)")
    rho0 = Parameter(3.0, unit="Hz", low=0.0, doc="target post rate (Hz)")

    model = ("dx_pre/dt = -x_pre / tau : 1 (event-driven)\n"
             "dx_post/dt = -x_post / tau : 1 (event-driven)")
    on_pre = "{target} += w\nx_pre += 1\nw = clip(w + eta * (x_post - alpha), w_min, w_max)"
    on_post = "x_post += 1\nw = clip(w + eta * x_pre, w_min, w_max)"

    @property
    def alpha(self) -> float:
        """The depression per pre spike, ``2 rho0 tau`` (dimensionless)."""
        return 2.0 * self.rho0 * self.tau

    def check_projection(self, projection: Any) -> None:
        if projection.w_min < 0:
            raise ValidationError("InhibitorySTDP", "w_min", projection.w_min,
                                  f"projection {projection.name!r}: iSTDP weights are inhibition magnitudes "
                                  "(growing w strengthens inhibition), so w_min must be >= 0; use a target on "
                                  "which positive weights inhibit, such as ConductanceLIF 'g_i'")


class ModulatedHebbian(SpikeRule):
    """Modulator-gated Hebbian rule (a programmed three-factor rule).

    ``dw_ij/dt = eta * m(t) * a_i(t) * x_j(t)`` applied every step
    (``w += eta * m * a_post * x_pre * dt``), where ``x_j`` is the presynaptic rate trace
    (``dx/dt = -x/tau_pre``, ``x += 1/tau_pre`` per spike; Hz) and ``a_i`` is the post
    variable ``post_variable`` of a :class:`RateUnits` population, or, for a spiking post
    population, its rate trace with the same filter. ``m`` is the modulator (a
    ProgrammedSignal carrying beta_t, or a SpikeSignal).

    Parameters
    ----------
    eta : float
        Learning rate (weight units / (post units * Hz * s)).
    tau_pre : float
        Rate-trace time constant (s).
    post_variable : str or None
        Variable of RateUnits used as post activity (ignored for spiking post).
    modulator : str
    """

    source = "Gerstner et al. 2018 (neoHebbian three-factor rules)"
    eta = Parameter(1.0, doc="learning rate")
    tau_pre = Parameter(0.01, unit="s", low=0.0, low_open=True, doc="rate trace time constant (s)")
    post_variable = Parameter("soma", convert=_mod_name, doc="post variable used as activity")
    modulator = Parameter("beta", convert=_mod_name, doc="modulator name")

    model = "dx/dt = -x / tau_pre : Hz (clock-driven, per pre neuron)"
    on_pre = "{target} += w (/tau for RateUnits)\nx += 1 / tau_pre"
    continuous = "w = clip(w + eta * m * a_post * x_pre * dt, w_min, w_max)"

    def check_projection(self, projection: Any) -> None:
        post = projection.post
        if not post.spiking and self.post_variable not in post.inputs:        # RateUnits
            raise ValidationError("ModulatedHebbian", "post_variable", self.post_variable,
                                  f"projection {projection.name!r}: RateUnits {post.name!r} has inputs "
                                  f"{list(post.inputs)}")


class PES(SpikeRule):
    """Error-modulated plasticity: the spiking delta rule (Nengo's PES, sign flipped).

    ``dw_ij/dt = eta * m(t) * e_i(t) * x_j(t)`` applied every step, with the error
    ``e_i = a_i[target_variable] - a_i[prediction_variable]`` read from a
    :class:`RateUnits` post population (teacher minus prediction: Nengo's
    ``e = actual - target`` with the sign folded in) and ``x_j`` the presynaptic rate trace
    as in :class:`ModulatedHebbian`. Nengo's PES is the case ``m = 1``,
    ``eta = kappa / n_pre``.

    Parameters
    ----------
    eta : float
        Learning rate.
    tau_pre : float
        Rate-trace time constant (s).
    target_variable, prediction_variable : str
        RateUnits variables forming the error.
    modulator : str
    """

    source = "MacNeil & Eliasmith 2011 (PES); Nengo 4.1 nengo/learning_rules.py"
    eta = Parameter(1.0, doc="learning rate")
    tau_pre = Parameter(0.01, unit="s", low=0.0, low_open=True, doc="rate trace time constant (s)")
    target_variable = Parameter("soma", convert=_mod_name, doc="teacher variable")
    prediction_variable = Parameter("dend", convert=_mod_name, doc="prediction variable")
    modulator = Parameter("beta", convert=_mod_name, doc="modulator name")

    model = "dx/dt = -x / tau_pre : Hz (clock-driven, per pre neuron)"
    on_pre = "{target} += w (/tau for RateUnits)\nx += 1 / tau_pre"
    continuous = ("e = a_post[target_variable] - a_post[prediction_variable]\n"
                  "w = clip(w + eta * m * e * x_pre * dt, w_min, w_max)")

    def check_projection(self, projection: Any) -> None:
        post = projection.post
        if post.spiking:                                                      # not RateUnits
            raise UnsupportedError("PES", "post", post.name, "PES needs a RateUnits post population")
        for name in ("target_variable", "prediction_variable"):
            if getattr(self, name) not in post.inputs:
                raise ValidationError("PES", name, getattr(self, name),
                                      f"RateUnits {post.name!r} has inputs {list(post.inputs)}")


class TsodyksMarkram(Spec):
    """Tsodyks-Markram short-term plasticity of the transmitted efficacy.

    Per presynaptic neuron: utilisation ``u`` relaxes to 0 with ``tau_facil`` (``u = U``
    always when ``tau_facil = 0``), resources ``R`` relax to 1 with ``tau_rec``. On a
    spike: ``u += U (1 - u)``, the target receives ``w * u * R``, then ``R -= u R``
    (Tsodyks, Pawelzik & Markram 1998; Brian2's ``examples/synapses/short_term_plasticity``).
    For a regular train of period ``T`` with ``tau_facil = 0`` the steady state is
    ``R* = (1 - exp(-T/tau_rec)) / (1 - (1 - U) exp(-T/tau_rec))``.

    Parameters
    ----------
    U : float
        Utilisation increment in (0, 1].
    tau_rec : float
        Recovery time constant (s).
    tau_facil : float
        Facilitation time constant (s); 0 disables facilitation.
    """

    source = "Tsodyks, Pawelzik & Markram 1998, Neural Comput 10:821"
    U = Parameter(0.5, low=0.0, high=1.0, low_open=True, doc="utilisation increment")
    tau_rec = Parameter(0.8, unit="s", low=0.0, low_open=True, doc="recovery time constant (s)")
    tau_facil = Parameter(0.0, unit="s", low=0.0, doc="facilitation time constant (s)")

    on_pre = ("u = u * exp(-(t - lastspike) / tau_facil)   (u = 0 if tau_facil == 0)\n"
              "R = 1 + (R - 1) * exp(-(t - lastspike) / tau_rec)\n"
              "u += U * (1 - u)\n{target} += w * u * R\nR -= u * R")


RULES: dict[str, type[SpikeRule]] = {"pair_stdp": PairSTDP, "triplet_stdp": TripletSTDP,
                                     "dopamine_stdp": DopamineSTDP, "inhibitory_stdp": InhibitorySTDP,
                                     "pes": PES,
                                     "modulated_hebbian": ModulatedHebbian}
