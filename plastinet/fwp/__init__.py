"""Rate-based fast weight programmers: rules, feature maps, the functional core and layers.

The functional core is :func:`apply` (and, for gradients, :func:`vjp`); the rules are
specification objects; :class:`FastWeightLayer` owns slow weights and programs the fast
weights from an input sequence.
"""

from plastinet.fwp.feature_maps import FeatureMap, as_feature_map
from plastinet.fwp.functional import FORMS, State, apply
from plastinet.fwp.gradients import vjp
from plastinet.fwp.layer import FastWeightLayer
from plastinet.fwp.rules import RULES, DecayedHebbian, Delta, GatedDelta, Hebbian, Oja, Rule, ThreeFactor, get_rule

__all__ = ["apply", "vjp", "State", "FORMS", "FeatureMap", "as_feature_map", "Rule", "Hebbian",
           "DecayedHebbian", "Delta", "GatedDelta", "Oja", "ThreeFactor", "RULES", "get_rule",
           "FastWeightLayer"]
