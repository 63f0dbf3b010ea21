"""Figures of results: spiking plots show the recorded data; every kind's sweep is drawn per grid point."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from plastinet.errors import ValidationError  # noqa: E402
from plastinet.experiments import load_model, plot_result  # noqa: E402
from plastinet.io import save_result  # noqa: E402
from plastinet.plotting import (  # noqa: E402
    plot_population_rates,
    plot_raster,
    plot_spiking_overview,
    plot_traces,
    plot_weight_histogram,
    plot_weight_trajectories,
)
from plastinet.sweep import _combine  # noqa: E402


@pytest.fixture(scope="module")
def song():
    return load_model("song2000_network", ['run.duration="0.5 s"'], quick=True).run(progress=False)


def test_raster_draws_every_spike_of_each_population_at_its_time(song):
    ax = plot_raster(song, max_neurons=1000)
    names = song["spike_population"].values
    for collection, pop in zip(ax.collections, ("inputs", "post")):
        xy = collection.get_offsets()
        sel = names == pop
        np.testing.assert_array_equal(np.asarray(xy[:, 0]), song["spike_time"].values[sel])
    plt.close("all")


def test_population_rates_integrate_to_the_spike_counts(song):
    ax = plot_population_rates(song, bin_width=0.05)
    for stairs, pop, n in zip(ax.patches, ("inputs", "post"), (1000, 1)):
        rate = stairs.get_data().values
        count = int(np.sum(song["spike_population"].values == pop))
        assert np.sum(rate) * n * 0.05 == pytest.approx(count)          # Hz x neurons x s = spikes
    assert 10 < np.mean(ax.patches[0].get_data().values) < 20            # 15 Hz Poisson inputs
    plt.close("all")


def test_weight_plots_show_the_sampled_and_final_weights(song):
    ax = plot_weight_trajectories(song)
    np.testing.assert_allclose(ax.lines[-1].get_ydata(), song["W"].values.reshape(song.sizes["time"], -1).mean(1))
    ax = plot_weight_histogram(song)
    assert sum(p.get_height() for p in ax.patches) == song["w_syn"].size
    fig = plot_spiking_overview(song)
    assert len(fig.axes) == 4
    with pytest.raises(ValidationError, match="post, inputs|inputs, post"):
        plot_raster(song, population="pots")
    plt.close("all")


#: One cheap model per kind, the key swept over two values and the overrides that make it quick.
KIND_SWEEPS = {
    "rate_fwp": ("delta_fwp", "experiment.beta", [1.0, 0.5]),
    "spiking_protocol": ("stdp_pairing", "rule.tau_plus", ["20 ms", "10 ms"]),
    "network": ("song2000_network", "populations.inputs.rate", ["20 Hz", "5 Hz"]),
    "training": ("assoc_retrieval", "training.lr", [1e-3, 2e-3]),
    "rule_inference": ("rule_inference", "inference.l1", [1e-3, 1e-2]),
}
SHORTER = {"network": ['run.duration="0.2 s"'], "training": ["training.max_steps=4", "training.eval_every=2"],
           "spiking_protocol": []}


@pytest.mark.parametrize("kind", sorted(KIND_SWEEPS))
def test_a_sweep_of_every_kind_is_drawn_one_panel_per_grid_point(tmp_path, kind):
    """Point files combined as plastinet.sweep combines them; `plot` draws each point, none averaged."""
    from plastinet.cli import main

    name, key, values = KIND_SWEEPS[kind]
    files, points = [], []
    for i, value in enumerate(values):
        ds = load_model(name, SHORTER.get(kind, []) + [f"{key}={value!r}".replace("'", '"')], quick=True
                        ).run(progress=False)
        save_result(ds, tmp_path / f"p{i}.nc")
        files.append(tmp_path / f"p{i}.nc")
        points.append({key: value})
    combined = _combine(points, files, {key: values}, [None, None])
    dim = key.split(".")[-1]
    assert list(combined[dim].values) == [combined[dim].values[0], combined[dim].values[1]]
    fig = plot_result(combined)
    assert len(fig.subfigs) == 2 and all(sub.axes for sub in fig.subfigs)
    for sub, value in zip(fig.subfigs, combined[dim].values):
        assert sub._suptitle.get_text().startswith(f"{dim} = ")
    if kind == "spiking_protocol":              # the STDP window of each point, not their mean
        for sub, i in zip(fig.subfigs, range(2)):
            ydata = np.concatenate([line.get_ydata() for line in sub.axes[0].lines if len(line.get_ydata()) > 2])
            np.testing.assert_allclose(np.sort(ydata), np.sort(combined["dw"].isel({dim: i}).values.ravel()))
    plt.close("all")
    save_result(combined, tmp_path / "sweep.nc")
    assert main(["plot", str(tmp_path / "sweep.nc"), "--out", str(tmp_path / "sweep.png")]) == 0
    assert (tmp_path / "sweep.png").stat().st_size > 0


def test_sampled_states_and_modulators_are_drawn_as_recorded():
    from plastinet import simulate
    from plastinet.spiking import LIF, ModulatorProbe, Network, ProgrammedSignal, StateProbe

    net = Network()
    net.add(LIF(name="cells", n=3, i_ext=0.1e-9))
    net.add(ProgrammedSignal(name="beta", values=[0.5, 1.0, 0.0], interval=0.01))
    net.add(StateProbe(name="v", population="cells", variable="v", sample_every=1e-3))
    net.add(ModulatorProbe(name="beta_level", modulator="beta", sample_every=1e-3))
    ds = simulate(net, 0.03, dt=1e-4)
    ax = plot_traces(ds, "v", max_lines=2)
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), ds["v"].values[:, 1])
    ax = plot_traces(ds, "beta_level")
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), ds["beta_level"].values)
    assert set(np.unique(ds["beta_level"].values)) == {0.0, 0.5, 1.0}
    assert len(plot_spiking_overview(ds).axes) == 2                 # no spikes, no weights: the two traces
    plt.close("all")


def test_plot_draws_a_spiking_run_saved_from_python(tmp_path):
    """A user's own simulate() result has no model kind; `plastinet plot` draws its spiking overview."""
    from plastinet import simulate
    from plastinet.cli import main
    from plastinet.spiking import LIF, Network, PoissonGroup, Projection, SpikeProbe

    net = Network()
    inp = net.add(PoissonGroup(name="inp", n=20, rate="50 Hz"))
    post = net.add(LIF(name="post", n=2))
    net.add(Projection(name="syn", pre=inp, post=post, target="I_e", weight=2e-10))
    net.add(SpikeProbe(name="spikes", population="inp"))
    save_result(simulate(net, 0.2, seed=0), tmp_path / "mine.nc")
    assert main(["plot", str(tmp_path / "mine.nc")]) == 0
    assert (tmp_path / "mine.png").stat().st_size > 5_000


def test_a_large_grid_is_drawn_in_part_and_the_title_says_so():
    import xarray as xr

    from plastinet.plotting import plot_sweep

    ds = xr.Dataset({"y": (("a", "b", "x"), np.arange(5 * 4 * 3, dtype=float).reshape(5, 4, 3))},
                    coords={"a": ("a", [0.001, 0.002, 0.003, 0.004, 0.005], {"units": "s"}), "b": list("pqrs")},
                    attrs={"sweep_dims": "a,b", "model_name": "m", "point_attrs": '{"score": ' + str(list(range(20))) + "}"})
    seen = []

    def draw(point, fig):
        seen.append((float(point["y"][0]), point.attrs["score"]))
        fig.subplots().plot(point["y"])
        return fig

    fig = plot_sweep(ds, draw, max_panels=6)
    assert seen == [(3.0 * i, i) for i in range(6)]              # grid order (a slowest), per-point attrs back
    assert "20 grid point(s), the first 6 shown" in fig._suptitle.get_text()
    assert [sub._suptitle.get_text() for sub in fig.subfigs[:2]] == ["a = 1 ms, b = p", "a = 1 ms, b = q"]
    plt.close("all")
