"""The backend-compliance suite: checks any backend must pass to match the numpy reference.

Each ``check_*`` function takes a backend (a :class:`plastinet.backends.Backend` or its
name) and raises :class:`AssertionError` when the backend disagrees with the reference. A
backend that lacks the capability a check needs makes the check raise
:class:`CapabilityMissing` (reported by the pytest plugin as a skip with the reason, never as
a pass).

Run the suite against one backend::

    pytest --pyargs plastinet.testing --backend brian2
    pytest --pyargs plastinet.testing --backend numpy

Without ``--backend`` it runs against every registered backend that imports. A third-party
backend registers itself under the ``plastinet.backends`` entry-point group and runs the
same command with its name.
"""

from plastinet.testing.checks import (CHECKS, CapabilityMissing, check_rate_fwp_matches_reference,
                                      check_rate_fwp_state_round_trip, check_rate_fwp_rejects_bad_input,
                                      rate_cases)

__all__ = ["CHECKS", "CapabilityMissing", "check_rate_fwp_matches_reference",
           "check_rate_fwp_state_round_trip", "check_rate_fwp_rejects_bad_input", "rate_cases"]
