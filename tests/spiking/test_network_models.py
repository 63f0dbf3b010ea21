"""The recurrent network models: izhikevich2007_network (Izhikevich 2007, Fig. 1) and vogels2011
(Vogels et al. 2011). Quick variants in the default suite, the papers' full runs in the slow suite."""

import numpy as np
import pytest
from spiking_references import daspnet_rates

from plastinet.errors import ModelFileError
from plastinet.experiments import load_model


@pytest.fixture(scope="module")
def izhikevich_quick():
    return load_model("izhikevich2007_network", quick=True).run(progress=False)


def test_izhikevich_network_fires_as_his_daspnet_loop(izhikevich_quick):
    """Same cells, connectivity law, thalamic noise and step order as daspnet.m: the mean rates of
    an independent transcription of his loop (frozen weights) agree within 15 %."""
    ds = izhikevich_quick
    duration = float(ds["time"].values[-1]) + 1.0
    ref_exc, ref_inh = daspnet_rates(int(duration * 1e3), seed=1)
    assert ds.attrs["rate_exc"] == pytest.approx(ref_exc, rel=0.15)
    assert ds.attrs["rate_inh"] == pytest.approx(ref_inh, rel=0.15)


def test_izhikevich_network_quick_plasticity_acts_within_bounds(izhikevich_quick):
    ds = izhikevich_quick
    W = ds["W"].values
    assert W.shape[1] == ds.sizes["ee_synapse"] > 60_000
    assert W.min() >= 0.0 and W.max() <= 4.0
    # tonic dopamine gates the eligibility into the weights: they leave their start (1) both ways
    assert ds.attrs["others_p99"] > 1.01 and np.percentile(ds["w_ee"].values / 1e-3, 1) < 0.99
    assert ds.attrs["n2"] == int(ds["ee_post"].values[ds.attrs["rewarded_synapse"]])
    assert W[0, ds.attrs["rewarded_synapse"]] < 0.01             # it starts at 0


def test_izhikevich_network_rejects_an_empty_population():
    with pytest.raises(ModelFileError, match="n_exc"):
        load_model("izhikevich2007_network", ["protocol.n_exc=1"], quick=True).run(progress=False)


@pytest.mark.slow
def test_izhikevich_network_rewarded_synapse_reaches_the_bound_within_an_hour(izhikevich_fig1_outcome):
    izhikevich_fig1_outcome(load_model("izhikevich2007_network").run(progress=False))


@pytest.mark.slow
def test_izhikevich_network_on_brian2_rewarded_synapse_reaches_the_bound_within_an_hour(izhikevich_fig1_outcome):
    """The hour on the brian2 backend: target cpp_standalone (the coincidence reward is generated
    code) and Brian2's own thalamic noise draws (replaying numpy's per-step draws for an hour would
    hold 3.6 M x 1,000 values), so the outcome, not the spikes, is compared with the paper."""
    pytest.importorskip("brian2")
    from plastinet.backends import get_backend

    backend = get_backend("brian2", target="cpp_standalone", poisson="brian2")
    izhikevich_fig1_outcome(load_model("izhikevich2007_network").run(backend, progress=False))


@pytest.fixture(scope="module")
def vogels_quick():
    return load_model("vogels2011", quick=True).run(progress=False)


def test_vogels_quick_istdp_lowers_the_rate_and_correlates_e_and_i(vogels_quick):
    a = vogels_quick.attrs
    assert a["rate_exc_after"] < a["rate_exc_before"] / 3
    assert a["ei_correlation_after"] > a["ei_correlation_before"] + 0.3
    # detailed balance: neurons with more excitation learn more inhibition (measured 0.03 -> 0.42)
    assert a["ei_neuron_correlation_after"] > a["ei_neuron_correlation_before"] + 0.25
    assert a["w_ie_mean"] > 0.1                                      # nS: inhibition was learned
    rate = vogels_quick["rate_exc"].values
    assert rate[-3:].mean() < rate[:3].mean() / 2


def test_vogels_without_plasticity_keeps_its_rate():
    """The control: the same network with eta = 0 does not slow down (the decrease is iSTDP's)."""
    ds = load_model("vogels2011", ["protocol.eta=0", "protocol.warmup=0.2 s"], quick=True).run(progress=False)
    a = ds.attrs
    assert a["rate_exc_after"] > 0.7 * a["rate_exc_before"]
    assert ds["w_ie"].values.max() == pytest.approx(1e-11)


def _vogels_paper_outcome(ds):
    """Vogels et al. (2011) as Brian2's example, run 200 s: iSTDP takes the excitatory rate from far
    above rho0 = 3 Hz to within 1.5 Hz of it, where it levels off; the learned inhibitory current
    outweighs the excitatory synaptic current (it cancels the background's excess drive), and
    E and I become balanced neuron by neuron (their mean currents correlate across neurons).
    Measured on numpy (seed 0): 162 Hz -> 5.9 Hz (20-40 s) -> 4.2 Hz (100-150 s) -> 4.0 Hz (last
    50 s), per-neuron E/I correlation 0.01 -> 0.63; Brian2's own example gives 8.1 Hz at 10 s and
    5.4 Hz at 30 s."""
    a = ds.attrs
    assert a["rate_exc_before"] > 10 * a["rho0"]
    rate = ds["rate_exc"].values                                   # 100 ms bins
    assert abs(rate[-500:].mean() - a["rho0"]) < 1.5
    assert rate[-500:].mean() < rate[200:400].mean() - 1.0           # it was still approaching at 20-40 s
    assert abs(a["i_inh_before"]) < 1e-15 and -a["i_inh_after"] > a["i_exc_after"] > 0
    assert a["ei_neuron_correlation_after"] > 0.5
    assert a["ei_neuron_correlation_after"] > a["ei_neuron_correlation_before"] + 0.3


@pytest.mark.slow
def test_vogels_full_network_approaches_rho0_and_balances_e_and_i():
    _vogels_paper_outcome(load_model("vogels2011").run(progress=False))


@pytest.mark.slow
def test_vogels_full_network_on_brian2_cpp_standalone():
    """The same run lowered to Brian2 (cpp_standalone): the same outcome. Measured: the 3.6 M spikes
    of the first 40 s are numpy's, spike for spike."""
    pytest.importorskip("brian2")
    from plastinet.backends import get_backend

    _vogels_paper_outcome(load_model("vogels2011").run(get_backend("brian2", target="cpp_standalone"),
                                                       progress=False))
