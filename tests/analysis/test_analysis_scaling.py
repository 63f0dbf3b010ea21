"""Power-law scaling fits recover planted exponents."""

import numpy as np
import pytest
import xarray as xr

from plastinet.analysis import fit_power_law
from plastinet.errors import ValidationError


def _planted(seed=0):
    rng = np.random.default_rng(seed)
    N, r, D = np.array([10, 20, 40, 80]), np.array([5.0, 10, 20]), np.array([0.5, 1, 2])
    e = 3 / (N[:, None, None, None] * r[None, :, None, None] ** 0.5 * D[None, None, :, None])
    e = e * np.exp(0.1 * rng.standard_normal((4, 3, 3, 5)))
    return xr.DataArray(e, dims=("neurons", "rate", "duration", "trial"),
                        coords={"neurons": N, "rate": r, "duration": D}, attrs={"units": "1"})


def test_exponents_are_recovered():
    fit = fit_power_law(_planted())
    assert list(fit.setting.values) == ["neurons", "rate", "duration"]
    for true, lo, hi in zip([-1.0, -0.5, -1.0], fit.ci_low.values, fit.ci_high.values):
        assert lo <= true <= hi
    assert float(fit.prefactor) == pytest.approx(3.0, rel=0.1)


def test_combined_exponent():
    da = _planted().sel(rate=10.0)
    fit = fit_power_law(da, combine=True)
    assert fit.setting.values[0] == "neurons*duration"
    assert float(fit.ci_low[0]) <= -1.0 <= float(fit.ci_high[0])


def test_bad_inputs():
    with pytest.raises(ValidationError, match="finite and positive"):
        fit_power_law(-_planted())
    with pytest.raises(ValidationError, match="needs numeric coordinates"):
        fit_power_law(xr.DataArray(np.ones(4), dims="neurons"))


def test_spiking_readout_error_falls_with_spike_count():
    pytest.importorskip("plastinet.experiments.fwp_bridge")
    from plastinet.experiments import rate_spike_scaling
    from plastinet.fwp import Hebbian

    rng = np.random.default_rng(0)
    k, v = rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    out = rate_spike_scaling(Hebbian(feature_map="elu+1"), k, k, v, neurons=(5, 40), rates=(25.0, 200.0),
                             phases=(0.2,), seeds=(0, 1))
    assert out.error.dims == ("neurons", "rate", "phase", "seed")
    assert out.setting.values[0] == "neurons*rate*phase"
    assert float(out.ci_high[0]) < 0       # more spikes, smaller error
