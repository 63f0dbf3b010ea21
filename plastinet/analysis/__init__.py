"""Analysis of plastic networks: rule fitting, rule inference from activity alone, biological rule library, STDP fits
and theory, transition spectra, the dual (attention) form, and scaling fits.

Every function takes and returns xarray objects (or arrays) and runs no simulation: the
experiments that produce the data (STDP measurements, capacity and forgetting curves,
plasticity traces of rules and layers, rate/spike scaling) live in
:mod:`plastinet.experiments`. Plotting companions live in :mod:`plastinet.plotting`
(``plot_<name>``, each with an ``ax=`` argument).
"""

from plastinet.analysis.biological import (
                                           BCM,
                                           BI_POO,
                                           BI_POO_PAIRINGS,
                                           BTSP,
                                           COVARIANCE,
                                           DOPAMINE_STDP,
                                           LIBRARY,
                                           OJA,
                                           PES,
                                           SONG_ABBOTT,
                                           TRIPLET_VISUAL,
                                           BCMRule,
                                           BTSPRule,
                                           CovarianceRule,
                                           DopamineSTDPRule,
                                           LibraryRule,
                                           OjaRule,
                                           PairSTDPRule,
                                           PESRule,
                                           TripletSTDPRule,
                                           synthetic_trace,
)
from plastinet.analysis.dual import attention_weights
from plastinet.analysis.families import FAMILIES, Family
from plastinet.analysis.fitting import FamilyFit, RuleFit, fit_rule
from plastinet.analysis.inference import LIBRARY_PATTERNS, RuleInference, infer_rule
from plastinet.analysis.memory import transition_spectrum
from plastinet.analysis.scaling import fit_power_law
from plastinet.analysis.stdp import fit_frequency_dependence, fit_rate_dependence, fit_stdp_window
from plastinet.analysis.stdp_theory import mean_field_drift, pair_integral
from plastinet.analysis.trace import recording_trace

__all__ = ["fit_rule", "infer_rule", "RuleInference", "LIBRARY_PATTERNS", "recording_trace", "fit_stdp_window",
           "fit_rate_dependence", "fit_frequency_dependence", "mean_field_drift", "pair_integral",
           "transition_spectrum", "attention_weights", "fit_power_law", "RuleFit", "FamilyFit", "FAMILIES", "Family", "LIBRARY", "LibraryRule", "PairSTDPRule",
           "TripletSTDPRule", "BCMRule", "OjaRule", "CovarianceRule", "PESRule", "DopamineSTDPRule", "BTSPRule",
           "BI_POO", "BI_POO_PAIRINGS", "SONG_ABBOTT", "TRIPLET_VISUAL", "BCM", "OJA", "COVARIANCE", "PES",
           "DOPAMINE_STDP", "BTSP", "synthetic_trace"]
