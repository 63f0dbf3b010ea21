"""The backend-compliance suite: checks any backend must pass to match the numpy reference.

Each ``check_*`` function takes a backend (a :class:`plastinet.backends.Backend` or its
name) and raises :class:`AssertionError` when the backend disagrees with the reference. A
backend that lacks the capability a check needs makes the check raise
:class:`CapabilityMissing` (reported by the pytest plugin as a skip with the reason, never as
a pass).

Run the suite against one backend::

    pytest --pyargs plastinet.testing --backend brian2
    pytest --pyargs plastinet.testing --backend numpy

Without ``--backend`` it runs against every registered backend that imports; ``NAME:TARGET``
selects a brian2 code-generation target (``--backend brian2:cython``). A third-party
backend registers itself under the ``plastinet.backends`` entry-point group and runs the
same command with its name.

What the checks hold a backend to: rate rules (:func:`rate_cases`: Hebbian, normalised
Hebbian, DecayedHebbian with a scalar and a per-key decay, Delta, GatedDelta, Oja,
ThreeFactor) agree with the float64 numpy recurrent form within ``RATE_ATOL`` (1e-10,
absolute); spiking networks (:func:`spiking_cases`: every spike rule of the engine on
injected spike trains and deterministic neurons, ``SPIKE_DURATION`` = 1 s of biological
time) give identical spike times and states and weights within ``SPIKE_RTOL`` (1e-9,
relative).
"""

from plastinet.testing.checks import (
                                      CHECKS,
                                      RATE_ATOL,
                                      SPIKE_DURATION,
                                      SPIKE_RTOL,
                                      CapabilityMissing,
                                      check_rate_fwp_matches_reference,
                                      check_rate_fwp_rejects_bad_input,
                                      check_rate_fwp_state_round_trip,
                                      check_spiking_matches_reference,
                                      check_spiking_seeded_poisson,
                                      compare_spiking,
                                      rate_cases,
                                      spiking_cases,
)

__all__ = ["CHECKS", "CapabilityMissing", "RATE_ATOL", "SPIKE_RTOL", "SPIKE_DURATION",
           "check_rate_fwp_matches_reference", "check_rate_fwp_state_round_trip",
           "check_rate_fwp_rejects_bad_input", "check_spiking_matches_reference",
           "check_spiking_seeded_poisson", "compare_spiking", "rate_cases", "spiking_cases"]
