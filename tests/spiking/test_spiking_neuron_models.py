"""Izhikevich, AdEx, conductance LIF with background current and noise currents: each against
an independent reference (Izhikevich's own loop, fine-step RK4, closed forms, moments)."""

import numpy as np
import pytest
from spiking_references import (
    adex_euler,
    adex_fine,
    background_lif_spike_steps,
    izhikevich_fine,
    izhikevich_loop,
    spike_steps,
    uniform_noise_moments,
)

from plastinet.errors import RangeError, ValidationError
from plastinet.spiking import (
    LIF,
    AdEx,
    ConductanceLIF,
    Izhikevich,
    Network,
    NoiseCurrent,
    PoissonGroup,
    Projection,
    Simulator,
    SpikeGenerator,
    SpikeProbe,
    StateProbe,
    run,
)

#: Izhikevich (2003) Fig. 2 cell types (a, b, c, d) in his units (1/ms, 1/ms, mV, mV/ms).
CELL_TYPES = {"RS": (0.02, 0.2, -65.0, 8.0), "IB": (0.02, 0.2, -55.0, 4.0), "CH": (0.02, 0.2, -50.0, 2.0),
              "FS": (0.1, 0.2, -65.0, 2.0), "LTS": (0.02, 0.25, -65.0, 2.0)}


def _izhikevich_net(kind, method, drive_steps, drive_w, pulse_steps, pulse_w, n_steps, dt):
    """One Izhikevich neuron driven by a generator: a spike of weight w (V) in step n adds w/dt to I of step n+1."""
    a, b, c, d = CELL_TYPES[kind]
    net = Network()
    post = net.add(Izhikevich(name="n", n=1, a=a * 1e3, b=b * 1e3, c=c * 1e-3, d=d, method=method))
    times = np.r_[drive_steps, pulse_steps] * dt
    idx = np.r_[np.zeros(len(drive_steps), int), np.ones(len(pulse_steps), int)]
    gen = net.add(SpikeGenerator(name="g", n=2, indices=idx, times=times))
    w = np.array([drive_w, pulse_w])
    net.add(Projection(name="drive", pre=gen, post=post, target="I", weight=w,
                       connectivity=(np.array([0, 1]), np.array([0, 0]))))
    net.add(SpikeProbe(name="s", population="n"))
    net.add(StateProbe(name="v", population="n", variable="v", sample_every=dt))
    net.add(StateProbe(name="u", population="n", variable="u", sample_every=dt))
    return net


@pytest.mark.parametrize("method", ["half_steps", "euler"])
@pytest.mark.parametrize("kind", list(CELL_TYPES))
def test_izhikevich_reproduces_his_loop_step_by_step(kind, method):
    dt, n_steps = 1e-3, 600
    rng = np.random.default_rng(7)
    drive_steps = np.arange(n_steps)
    pulse_steps = np.sort(rng.choice(n_steps, 60, replace=False))
    drive_w, pulse_w = 9.0 * dt, 4e-3           # V: a constant 9 mV/ms (9 V/s) and 4 mV jumps
    ds = run(_izhikevich_net(kind, method, drive_steps, drive_w, pulse_steps, pulse_w, n_steps, dt), n_steps * dt,
             dt=dt, seed=0)
    # his units: input of step n (mV/ms) = weights (mV) of the spikes of step n - 1 / dt (ms)
    current = np.zeros(n_steps)
    current[1:] += drive_w * 1e3
    current[pulse_steps[pulse_steps < n_steps - 1] + 1] += pulse_w * 1e3
    a, b, c, d = CELL_TYPES[kind]
    scheme = "izhikevich" if method == "half_steps" else "euler"
    spikes, v, u = izhikevich_loop(a, b, c, d, current, 1.0, v0=c, scheme=scheme)    # v_init defaults to c
    got = spike_steps(ds, "n", dt)
    assert len(spikes) >= 5
    # every step is his update (and reset) of the previous state, to rounding: SI and mV/ms round
    # differently, so over hundreds of steps the bursting cells' trajectories drift apart
    v_got, u_got = ds["v"].values[:, 0] * 1e3, ds["u"].values[:, 0]
    for n in range(1, n_steps):
        sp1, v1, u1 = izhikevich_loop(a, b, c, d, current[n:n + 1], 1.0, v0=v_got[n - 1], u0=u_got[n - 1], scheme=scheme)
        assert (n in got) == bool(sp1)
        assert v_got[n] == pytest.approx(v1[0], rel=1e-12, abs=1e-11) and u_got[n] == pytest.approx(u1[0], rel=1e-12, abs=1e-11)
    early = 150
    np.testing.assert_array_equal(got[got < early], [k for k in spikes if k < early])


def test_izhikevich_euler_converges_to_the_continuous_model():
    """Spike times under a constant 10 mV/ms input approach a fine RK4 integration as dt shrinks."""
    a, b, c, d = CELL_TYPES["RS"]
    t_end = 150.0
    ref = np.array(izhikevich_fine(a, b, c, d, 10.0, t_end, h=1e-3))
    errors = []
    for dt in (1e-4, 1e-5):
        n = int(round(t_end * 1e-3 / dt))
        net = _izhikevich_net("RS", "euler", np.arange(n), 10.0 * dt, np.zeros(0, int), 0.0, n, dt)
        ds = run(net, n * dt, dt=dt, seed=0)
        # a spike in step k crossed v_peak during (k dt, (k + 1) dt]; the input starts one step late
        got = spike_steps(ds, "n", dt) * dt * 1e3
        assert got.size == ref.size >= 4
        errors.append(np.abs(got - ref).max())
    assert errors[1] < errors[0] / 5 and errors[1] < 0.3            # ms: first-order convergence


ADEX = dict(C=281.0, g_L=30.0, E_L=-70.6, V_T=-50.4, Delta_T=2.0, tau_w=144.0, a=4.0, b=80.5,
            V_reset=-70.6, V_peak=20.0)                              # pF, nS, mV, ms, nS, pA


def _adex_pop(**kw):
    p = ADEX
    si = dict(C=p["C"] * 1e-12, g_L=p["g_L"] * 1e-9, E_L=p["E_L"] * 1e-3, V_T=p["V_T"] * 1e-3,
              Delta_T=p["Delta_T"] * 1e-3, tau_w=p["tau_w"] * 1e-3, a=p["a"] * 1e-9, b=p["b"] * 1e-12,
              V_reset=p["V_reset"] * 1e-3, V_peak=p["V_peak"] * 1e-3)
    return AdEx(name="n", n=1, **{**si, **kw})


@pytest.mark.parametrize("t_ref", [0.0, 2e-3])
def test_adex_is_forward_euler_of_brette_gerstner(t_ref):
    dt, n_steps, i_ext = 1e-4, 4000, 1e-9
    net = Network(_adex_pop(i_ext=i_ext, t_ref=t_ref), SpikeProbe(name="s", population="n"),
                  StateProbe(name="v", population="n", variable="v", sample_every=dt),
                  StateProbe(name="w", population="n", variable="w", sample_every=dt))
    ds = run(net, n_steps * dt, dt=dt, seed=0)
    spikes, V, w = adex_euler({**ADEX, "t_ref": t_ref * 1e3}, i_ext * 1e12, dt * 1e3, n_steps)
    assert len(spikes) >= 5
    np.testing.assert_array_equal(spike_steps(ds, "n", dt), spikes)
    np.testing.assert_allclose(ds["v"].values[:, 0] * 1e3, V[: ds.sizes["time"]], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ds["w"].values[:, 0] * 1e12, w[: ds.sizes["time"]], rtol=1e-9, atol=1e-9)


def test_adex_converges_to_the_continuous_model():
    """Adapting spike train under 1 nA: spike times approach RK4 (h = 1 us) as dt shrinks."""
    t_end = 200.0
    ref = np.array(adex_fine(ADEX, 1000.0, t_end, h=1e-3))
    errors = []
    for dt in (1e-4, 1e-5):
        n = int(round(t_end * 1e-3 / dt))
        ds = run(Network(_adex_pop(i_ext=1e-9), SpikeProbe(name="s", population="n")), n * dt, dt=dt, seed=0)
        got = (spike_steps(ds, "n", dt) + 1) * dt * 1e3
        assert got.size == ref.size >= 4
        errors.append(np.abs(got - ref).max())
    assert errors[1] < errors[0] / 5 and errors[1] < 0.5            # ms: first-order convergence
    isi = np.diff(ref)
    assert isi[-1] > 1.5 * isi[0]                                     # adaptation


@pytest.mark.parametrize("method", ["euler", "exponential_euler"])
def test_conductance_lif_background_current_matches_the_closed_form(method):
    """Vogels et al. (2011) cell with its 200 pA background current and no synaptic input."""
    dt, n_steps = 1e-4, 5000
    pop = ConductanceLIF(name="n", n=1, tau_m=0.02, g_l=10e-9, E_l=-0.060, v_thresh=-0.050, v_reset=-0.060,
                         t_ref=0.005, i_ext=200e-12, method=method)
    ds = run(Network(pop, SpikeProbe(name="s", population="n")), n_steps * dt, dt=dt, seed=0)
    expected = background_lif_spike_steps(-0.060, -0.050, -0.060, 10e-9, 200e-12, 200e-12, 0.005, dt, n_steps, method)
    assert len(expected) >= 20
    np.testing.assert_array_equal(spike_steps(ds, "n", dt), expected)


def test_conductance_lif_background_current_is_inert_at_zero():
    """i_ext = 0 (the default) leaves the equation, and the spikes, exactly as before."""
    dt = 1e-4
    gen = SpikeGenerator(name="g", n=1, indices=np.zeros(200, int), times=np.arange(200) * 2e-3)

    def spikes(**kw):
        post = ConductanceLIF(name="n", n=1, method="euler", **kw)
        net = Network(gen, post, Projection(name="p", pre=gen, post=post, target="g_e", weight=0.4),
                      StateProbe(name="v", population="n", variable="v", sample_every=dt))
        return run(net, 0.4, dt=dt, seed=0)["v"].values

    np.testing.assert_array_equal(spikes(), spikes(i_ext=0.0, g_l=3e-9))
    assert not np.array_equal(spikes(), spikes(i_ext=1e-12))


def _noise_net(seed_pop_n=400, **noise):
    pop = LIF(name="n", n=seed_pop_n, tau_e=0.005, r_m=1.0, v_thresh=1e3, v_reset=-1.0)
    return Network(pop, NoiseCurrent(name="noise", population="n", target="I_e", **noise),
                   StateProbe(name="ie", population="n", variable="I_e", sample_every=1e-4))


def _draws(ds, dt=1e-4, tau=0.005):
    """Recover the draws x_n of the noise from I_e(n) = I_e(n - 1) exp(-dt/tau) + x_n."""
    ie = ds["ie"].values
    return ie[1:] - ie[:-1] * np.exp(-dt / tau)


def test_uniform_noise_current_has_the_stated_distribution_per_step():
    ds = run(_noise_net(distribution="uniform", low=-6.5e-12, high=6.5e-12), 0.05, seed=3)
    x = _draws(ds)
    mean, var = uniform_noise_moments(13e-12)
    assert x.min() >= -6.5e-12 * (1 + 1e-9) and x.max() <= 6.5e-12 * (1 + 1e-9)
    assert abs(x.mean() - mean) < 4 * np.sqrt(var / x.size)
    assert x.var() == pytest.approx(var, rel=0.02)
    # independent across neurons and steps
    assert abs(np.corrcoef(x[:, 0], x[:, 1])[0, 1]) < 0.1
    assert abs(np.corrcoef(x[1:, 0], x[:-1, 0])[0, 1]) < 0.1


def test_normal_noise_current_moments_and_seeding():
    a = run(_noise_net(distribution="normal", mean=2e-12, std=1e-12), 0.05, seed=5)
    x = _draws(a)
    assert x.mean() == pytest.approx(2e-12, rel=0.01)
    assert x.std() == pytest.approx(1e-12, rel=0.02)
    b = run(_noise_net(distribution="normal", mean=2e-12, std=1e-12), 0.05, seed=5)
    c = run(_noise_net(distribution="normal", mean=2e-12, std=1e-12), 0.05, seed=6)
    np.testing.assert_array_equal(a["ie"].values, b["ie"].values)
    assert not np.array_equal(a["ie"].values, c["ie"].values)


def test_noise_driven_izhikevich_network_chunked_equals_stepped():
    def net():
        n = Network()
        exc = n.add(Izhikevich(name="e", n=50, method="half_steps"))
        gen = n.add(SpikeGenerator(name="g", n=3, indices=[0, 1, 2, 0], times=[0.0105, 0.02, 0.031, 0.2]))
        n.add(NoiseCurrent(name="th", population="e", target="I", low=-6.5e-3, high=6.5e-3))
        n.add(Projection(name="ee", pre=exc, post=exc, target="I", connectivity=0.2, weight=("uniform", 0, 2e-3)))
        n.add(Projection(name="ge", pre=gen, post=exc, target="I", weight=5e-3))
        n.add(SpikeProbe(name="s", population="e"))
        n.add(StateProbe(name="v", population="e", variable="v", sample_every=1e-3))
        return n

    a = run(net(), 2.0, dt=1e-3, seed=1, chunk_steps=1)
    b = run(net(), 2.0, dt=1e-3, seed=1, chunk_steps=512)
    assert a.sizes["spike"] > 20
    np.testing.assert_array_equal(a["spike_time"].values, b["spike_time"].values)
    np.testing.assert_array_equal(a["v"].values, b["v"].values)


def _noisy_izhikevich():
    n = Network()
    exc = n.add(Izhikevich(name="e", n=50, method="half_steps"))
    n.add(NoiseCurrent(name="th", population="e", target="I", low=-6.5e-3, high=6.5e-3))
    n.add(Projection(name="ee", pre=exc, post=exc, target="I", connectivity=0.2, weight=("uniform", 0, 2e-3)))
    n.add(SpikeProbe(name="s", population="e"))
    return n


def test_noisy_izhikevich_network_resumes_bit_identically(tmp_path):
    """The noise is a function of (seed, step), so a run resumed from a checkpoint draws the same."""
    whole = run(_noisy_izhikevich(), 1.0, dt=1e-3, seed=4)
    path = tmp_path / "run.npz"
    run(_noisy_izhikevich(), 0.437, dt=1e-3, seed=4, checkpoint_path=path)
    resumed = Simulator(_noisy_izhikevich(), dt=1e-3, seed=4).run(1.0, checkpoint_path=path)
    assert whole.sizes["spike"] > 20
    np.testing.assert_array_equal(resumed["spike_time"].values, whole["spike_time"].values)
    np.testing.assert_array_equal(resumed["spike_neuron"].values, whole["spike_neuron"].values)


def test_adex_and_background_lif_chunked_equal_stepped():
    def net():
        n = Network()
        src = n.add(PoissonGroup(name="src", n=30, rate=40.0))
        ad = n.add(_adex_pop(t_ref=1e-3, i_ext=0.5e-9).replace(n=3))
        cl = n.add(ConductanceLIF(name="c", n=3, g_l=10e-9, i_ext=150e-12, t_ref=0.002, method="euler"))
        n.add(Projection(name="pa", pre=src, post=ad, target="I_e", weight=100e-12))
        n.add(Projection(name="pc", pre=src, post=cl, target="g_e", weight=0.02))
        n.add(SpikeProbe(name="sa", population="n"))
        n.add(SpikeProbe(name="sc", population="c"))
        n.add(StateProbe(name="w", population="n", variable="w", sample_every=1e-3))
        return n

    a = run(net(), 1.0, seed=3, chunk_steps=1)
    b = run(net(), 1.0, seed=3, chunk_steps=400)
    assert (a["spike_population"].values == "n").sum() > 5 and (a["spike_population"].values == "c").sum() > 5
    np.testing.assert_array_equal(a["spike_time"].values, b["spike_time"].values)
    np.testing.assert_array_equal(a["w"].values, b["w"].values)


def test_invalid_parameters_raise_named_errors():
    with pytest.raises(RangeError, match="a"):
        run(Network(Izhikevich(name="n", n=1, a=2000.0)), 0.01, dt=1e-3)
    with pytest.raises(RangeError, match="tau_w"):
        run(Network(_adex_pop(tau_w=1e-4)), 0.01, dt=1e-4)
    with pytest.raises(ValidationError, match="target"):
        Network(Izhikevich(name="n", n=1), NoiseCurrent(name="x", population="n", target="g_e")).validate()
