"""Fast-weight update rules (rate form), as specification objects.

Each rule holds only its parameters (validated, dimensionless) and a description of the
maths; the engines in :mod:`plastinet.fwp.forms` compute. Notation (docs/fwp.md):
fast weights ``W_t`` of shape ``(d_v, d_phi)`` (rows: post/value neurons, columns:
pre/key features), keys ``k_t`` and queries ``q_t`` after the feature map ``phi``, values
``v_t``, learning rate ``beta_t``, decay ``alpha_t`` (``lambda_t``), neuromodulator ``m_t``.
Every rule reads out ``y_t = W_t q_t``: the read-out *includes* step ``t``'s write.

All quantities are dimensionless (rates in arbitrary units); time is the step index.
"""

from __future__ import annotations

from typing import Any, ClassVar

from plastinet.errors import UnsupportedError
from plastinet.fwp.feature_maps import FeatureMap, as_feature_map
from plastinet.params import Parameter, Spec

__all__ = ["Rule", "Hebbian", "DecayedHebbian", "Delta", "GatedDelta", "Oja", "ThreeFactor",
           "RULES", "get_rule"]


def _feature_map_parameter() -> Parameter:
    return Parameter("identity", convert=as_feature_map,
                     doc="feature map phi for keys and queries: a FeatureMap or a name "
                         "('identity', 'elu+1', 'relu', 'softmax', 'dpfp-<nu>')")


class Rule(Spec):
    """Base class of rate fast-weight rules.

    Class attributes describe what the engines may do with the rule:

    ``forms``
        The computational forms that implement it (``"recurrent"`` always).
    ``beta_range``
        Closed interval allowed for the learning rate ``beta_t``.
    ``uses_alpha``, ``uses_modulator``
        Whether the rule reads the decay gate ``alpha`` / the neuromodulator.
    ``equation``
        The update in plain text.
    """

    forms: ClassVar[tuple[str, ...]] = ("recurrent",)
    beta_range: ClassVar[tuple[float, float]] = (float("-inf"), float("inf"))
    uses_alpha: ClassVar[bool] = False
    uses_modulator: ClassVar[bool] = False
    equation: ClassVar[str] = ""

    feature_map = _feature_map_parameter()

    @property
    def phi(self) -> FeatureMap:
        """The rule's feature map."""
        return self.feature_map

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description, including the equation."""
        return {**super().to_dict(), "equation": self.equation}


class Hebbian(Rule):
    """Additive Hebbian outer-product rule (linear attention).

    ``W_t = W_{t-1} + beta_t v_t k_t^T``, ``y_t = W_t q_t``. Dual (attention) form:
    ``y_t = sum_{tau <= t} beta_tau v_tau <k_tau, q_t>``.

    With ``normalize=True`` the read-out is divided by the attention normaliser
    ``z_t . q_t + eps``, where ``z_t = z_{t-1} + k_t`` (Katharopoulos et al. 2020); ``z`` is
    then part of the state (see :func:`plastinet.fwp.apply`).

    Parameters
    ----------
    feature_map : FeatureMap or str
        Feature map ``phi`` for keys and queries.
    normalize : bool
        Divide the read-out by the attention normaliser.
    eps : float
        Added to the normaliser (``>= 0``), dimensionless.

    Notes
    -----
    ``beta`` may be any finite number (negative: anti-Hebbian). Forms: recurrent,
    parallel, chunkwise.
    """

    key = "hebbian"
    forms = ("recurrent", "parallel", "chunkwise")
    equation = "W_t = W_{t-1} + beta_t v_t k_t^T;  y_t = W_t q_t [/ (z_t . q_t + eps)]"
    normalize = Parameter(False, choices=(False, True), doc="attention normaliser")
    eps = Parameter(1e-6, low=0.0, doc="normaliser offset")


class DecayedHebbian(Rule):
    """Decayed (gated) Hebbian rule: RetNet, Mamba-2 as an FWP, Ba et al. 2016, GLA.

    Scalar decay: ``W_t = alpha_t W_{t-1} + beta_t v_t k_t^T``.
    Per-key-dimension decay (GLA): ``W_t = W_{t-1} diag(alpha_t) + beta_t v_t k_t^T``.
    The decay ``alpha_t`` (``lambda_t``) lies in ``[0, 1]``; it is given per step to
    :func:`~plastinet.fwp.apply` (shape ``(B, H, T)`` or ``(B, H, T, d_phi)``), or fixed by
    ``decay`` when no ``alpha`` is given. ``alpha_t = 0`` erases all earlier memory.

    Parameters
    ----------
    feature_map : FeatureMap or str
        Feature map ``phi`` for keys and queries.
    decay : float or None
        Constant decay in ``[0, 1]`` used when ``alpha`` is not passed.
    """

    key = "decayed_hebbian"
    forms = ("recurrent", "parallel", "chunkwise")
    uses_alpha = True
    equation = "W_t = alpha_t W_{t-1} (or W_{t-1} diag(alpha_t)) + beta_t v_t k_t^T"
    decay = Parameter(None, low=0.0, high=1.0, allow_none=True, doc="constant decay")


class Delta(Rule):
    """Delta rule (DeltaNet; Widrow-Hoff; Schlag et al. 2021).

    ``W_t = W_{t-1} + beta_t (v_t - W_{t-1} k_t) k_t^T``: one SGD step of size ``beta_t``
    on ``1/2 ||v_t - W k_t||^2``. With unit keys the transition ``I - beta k k^T`` has
    eigenvalues ``{1, 1 - beta}``: ``beta`` in ``[0, 2]`` is allowed (``beta > 1`` gives
    negative eigenvalues, needed for e.g. parity). ``beta ||k||^2 > 2`` expands and warns.

    Parameters
    ----------
    feature_map : FeatureMap or str
        Feature map ``phi`` for keys and queries.
    """

    key = "delta"
    forms = ("recurrent", "parallel", "chunkwise")
    beta_range = (0.0, 2.0)
    equation = "W_t = W_{t-1} + beta_t (v_t - W_{t-1} k_t) k_t^T"


class GatedDelta(Rule):
    """Gated delta rule (Gated DeltaNet, Yang et al. 2025): decay before the error.

    ``W_t = alpha_t W_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T``, with scalar
    ``alpha_t`` in ``[0, 1]`` and ``beta_t`` in ``[0, 2]``.

    Parameters
    ----------
    feature_map : FeatureMap or str
        Feature map ``phi`` for keys and queries.
    decay : float or None
        Constant decay in ``[0, 1]`` used when ``alpha`` is not passed.
    """

    key = "gated_delta"
    forms = ("recurrent", "chunkwise")
    beta_range = (0.0, 2.0)
    uses_alpha = True
    equation = "W_t = alpha_t W_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T"
    decay = Parameter(None, low=0.0, high=1.0, allow_none=True, doc="constant decay")


class Oja(Rule):
    """Subspace Oja rule (Oja 1989; rediscovered by meta-learning, Confavreux et al. 2020).

    ``W_t = W_{t-1} + beta_t (u_t k_t^T - u_t u_t^T W_{t-1})`` with ``u_t = W_{t-1} k_t``:
    unsupervised, the rows of ``W`` converge to an orthonormal basis of the principal
    subspace of the keys (for small ``beta``). The values ``v`` only fix ``d_v``.

    Parameters
    ----------
    feature_map : FeatureMap or str
        Feature map ``phi`` for keys and queries.
    """

    key = "oja"
    equation = "u_t = W_{t-1} k_t;  W_t = W_{t-1} + beta_t (u_t k_t^T - u_t u_t^T W_{t-1})"


class ThreeFactor(Rule):
    """Three-factor rule: eligibility trace times neuromodulator.

    ``E_t = gamma E_{t-1} + beta_t v_t k_t^T`` (post = value, pre = key features) and
    ``W_t = W_{t-1} + m_t E_t``. ``m_t`` is the neuromodulator (``modulator``; default 1),
    ``beta_t`` scales the Hebbian coincidence (default 1). With ``gamma = 0`` and
    ``m_t = beta_t`` this is the Hebbian rule with learning rate ``beta_t``. The
    eligibility ``E`` is part of the state (see :func:`plastinet.fwp.apply`).

    Parameters
    ----------
    feature_map : FeatureMap or str
        Feature map ``phi`` for keys and queries.
    gamma : float
        Per-step decay factor of the eligibility trace, in ``[0, 1]``.
    """

    key = "three_factor"
    uses_modulator = True
    equation = "E_t = gamma E_{t-1} + beta_t v_t k_t^T;  W_t = W_{t-1} + m_t E_t"
    gamma = Parameter(0.0, low=0.0, high=1.0, doc="eligibility decay per step")


#: Registry of rate rules by key (model files name rules by these keys).
RULES: dict[str, type[Rule]] = {cls.key: cls for cls in
                                 (Hebbian, DecayedHebbian, Delta, GatedDelta, Oja, ThreeFactor)}


def get_rule(name: str, **params: Any) -> Rule:
    """Build a rule from its registry key, e.g. ``get_rule("delta", feature_map="elu+1")``."""
    try:
        cls = RULES[name]
    except KeyError:
        raise UnsupportedError("fwp", "rule", name, "known rules: " + ", ".join(RULES)) from None
    return cls(**params)
