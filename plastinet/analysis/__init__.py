"""Analysis of plastic networks: rule fitting, rule inference from activity alone, biological rule library, STDP protocols,
memory capacity and interference, the dual (attention) form, and scaling fits.

Every function takes and returns xarray objects; plotting companions live in
:mod:`plastinet.plotting` (``plot_<name>``, each with an ``ax=`` argument).
"""

from plastinet.analysis.biological import (BCM, BI_POO, BI_POO_PAIRINGS, BTSP, COVARIANCE, DOPAMINE_STDP,
                                           LIBRARY, OJA, PES, SONG_ABBOTT, TRIPLET_VISUAL, BCMRule, BTSPRule,
                                           CovarianceRule, DopamineSTDP, LibraryRule, OjaRule, PairSTDP, PESRule, TripletSTDP,
                                           synthetic_trace)
from plastinet.analysis.dual import attention_weights
from plastinet.analysis.families import FAMILIES, Family
from plastinet.analysis.fitting import FamilyFit, RuleFit, fit_rule
from plastinet.analysis.inference import LIBRARY_PATTERNS, RuleInference, infer_rule
from plastinet.analysis.memory import capacity_curves, forgetting_curve, transition_spectrum
from plastinet.analysis.scaling import fit_power_law, rate_spike_scaling
from plastinet.analysis.stdp import (fit_frequency_dependence, fit_rate_dependence, fit_stdp_window,
                                     measure_frequency_dependence, measure_rate_dependence,
                                     measure_stdp_window)
from plastinet.analysis.trace import plasticity_trace

__all__ = ["fit_rule", "infer_rule", "RuleInference", "LIBRARY_PATTERNS", "plasticity_trace", "fit_stdp_window", "fit_rate_dependence",
           "fit_frequency_dependence", "measure_stdp_window", "measure_rate_dependence",
           "measure_frequency_dependence", "capacity_curves", "forgetting_curve", "transition_spectrum",
           "attention_weights", "fit_power_law", "rate_spike_scaling", "RuleFit", "FamilyFit", "FAMILIES", "Family", "LIBRARY", "LibraryRule", "PairSTDP",
           "TripletSTDP", "BCMRule", "OjaRule", "CovarianceRule", "PESRule", "DopamineSTDP", "BTSPRule",
           "BI_POO", "BI_POO_PAIRINGS", "SONG_ABBOTT", "TRIPLET_VISUAL", "BCM", "OJA", "COVARIANCE", "PES",
           "DOPAMINE_STDP", "BTSP", "synthetic_trace"]
