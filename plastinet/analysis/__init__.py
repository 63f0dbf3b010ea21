"""Analysis of plastic networks: rule fitting, biological rule library, STDP protocols,
memory capacity and interference, the dual (attention) form, and scaling fits.

Every function takes and returns xarray objects; plotting companions live in
:mod:`plastinet.plotting` (``plot_<name>``, each with an ``ax=`` argument).
"""

from plastinet.analysis.biological import (BCM, BI_POO, BTSP, COVARIANCE, DOPAMINE_STDP, LIBRARY, OJA, PES,
                                           SONG_ABBOTT, TRIPLET_VISUAL, BCMRule, BTSPRule, CovarianceRule,
                                           DopamineSTDP, LibraryRule, OjaRule, PairSTDP, PESRule, TripletSTDP,
                                           synthetic_trace)
from plastinet.analysis.families import FAMILIES, Family
from plastinet.analysis.fitting import FamilyFit, RuleFit, fit_rule
from plastinet.analysis.trace import plasticity_trace

__all__ = ["fit_rule", "plasticity_trace", "RuleFit", "FamilyFit", "FAMILIES", "Family", "LIBRARY", "LibraryRule", "PairSTDP",
           "TripletSTDP", "BCMRule", "OjaRule", "CovarianceRule", "PESRule", "DopamineSTDP", "BTSPRule",
           "BI_POO", "SONG_ABBOTT", "TRIPLET_VISUAL", "BCM", "OJA", "COVARIANCE", "PES", "DOPAMINE_STDP",
           "BTSP", "synthetic_trace"]
