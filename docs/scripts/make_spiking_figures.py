"""Figures and numbers of docs/spiking.md: ``python docs/scripts/make_spiking_figures.py``."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from plastinet.experiments import protocols as P  # noqa: E402
from plastinet.experiments.fwp_bridge import run_fwp  # noqa: E402
from plastinet.fwp import Delta, Hebbian  # noqa: E402
from plastinet.spiking import PairSTDP, TripletSTDP  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parents[1] / "figures"
OUT.mkdir(exist_ok=True)


def save(fig, name):
    fig.tight_layout()
    fig.savefig(OUT / name, dpi=80)
    plt.close(fig)


def windows():
    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    dts = np.linspace(-0.1, 0.1, 81)
    ds = P.pairing_window(PairSTDP(A_plus=0.01, A_minus=0.0105), dts)
    ax[0].plot(dts * 1e3, ds.dw, ".-")
    ax[0].set(xlabel="t_post - t_pre (ms)", ylabel="weight change dw (1)", title="pair STDP (Song 2000)")
    sj = P.sjostrom(TripletSTDP.visual_cortex_minimal())
    for d, c in ((0.01, "C0"), (-0.01, "C1")):
        ax[1].plot(sj.frequency, sj.dw_rel.sel(delta_t=d), "o-", color=c, label=f"model {d * 1e3:+.0f} ms")
        ax[1].errorbar(sj.frequency, sj.data_mean.sel(delta_t=d), sj.data_sem.sel(delta_t=d), fmt="s",
                       color=c, alpha=0.5, label=f"Sjostrom 2001 {d * 1e3:+.0f} ms")
    ax[1].set(xlabel="pairing frequency (Hz)", ylabel="relative weight change (1)",
              title="triplet STDP (visual cortex, minimal)")
    ax[1].legend(fontsize=7)
    save(fig, "spiking_stdp_windows.png")
    print("sjostrom +10:", np.round(sj.dw_rel.sel(delta_t=0.01).values, 3))
    print("sjostrom -10:", np.round(sj.dw_rel.sel(delta_t=-0.01).values, 3))


def song():
    ds = P.song2000(n_inputs=1000, duration=100.0, seed=0, sample_every=10.0)
    w = ds.w_syn.values / 0.01
    t = ds.spike_time.values
    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    ax[0].hist(w, bins=20)
    ax[0].set(xlabel="w / g_max (1)", ylabel="synapses (1)", title="Song 2000, N=1000, after 100 s")
    counts, edges = np.histogram(t, bins=np.arange(0, 101, 5))
    ax[1].plot(edges[:-1] + 2.5, counts / 5.0, ".-")
    ax[1].set(xlabel="time (s)", ylabel="post rate (Hz)", title="output rate")
    save(fig, "spiking_song2000.png")
    print(f"song2000: frac_low={ds.attrs['frac_low']:.3f} frac_high={ds.attrs['frac_high']:.3f} "
          f"post_rate_initial={ds.attrs['post_rate_initial']:.1f} Hz (first 5 s), "
          f"post_rate_regulated={ds.attrs['post_rate_regulated']:.1f} Hz (last 20 s), "
          f"post_rate={ds.attrs['post_rate']:.1f} Hz (whole run)")


def izhikevich():
    ds = P.izhikevich2007(seed=0)
    W = ds.W.values[:, 0, :]
    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    ax[0].plot(ds.time, W[:, 1:], color="0.8", lw=0.5)
    ax[0].plot(ds.time, W[:, 1:].mean(1), color="k", label="others (mean)")
    ax[0].plot(ds.time, W[:, 0], color="C3", lw=2, label="rewarded")
    ax[0].set(xlabel="time (s)", ylabel="synaptic strength s (1)", title="Izhikevich 2007 (reduced)")
    ax[0].legend(fontsize=7)
    ax[1].hist(W[-1, 1:], bins=20, color="0.6")
    ax[1].axvline(W[-1, 0], color="C3")
    ax[1].set(xlabel="final s (1)", ylabel="synapses (1)", title="final strengths")
    save(fig, "spiking_izhikevich2007.png")
    print(f"izhikevich: rewarded={ds.attrs['rewarded_final']:.2f} others mean={ds.attrs['others_mean']:.2f} "
          f"max={ds.attrs['others_max']:.2f} post rate={ds.attrs['post_rate']:.2f} Hz; rewarded >= 3.8 at "
          f"{ds.attrs['t_rewarded_max']:.0f} s, others' mean then {ds.attrs['others_mean_at_max']:.2f}")


def fwp():
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(8, 4)), rng.normal(size=(8, 4)), rng.normal(size=(8, 3))
    settings = [(5, 50.0, 0.12), (10, 75.0, 0.16), (20, 100.0, 0.24), (50, 200.0, 0.48)]
    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    for rule, beta, c in ((Hebbian(feature_map="relu"), 0.5, "C0"), (Delta(feature_map="softmax"), 0.8, "C1")):
        errs, xs, last = [], [], None
        for n, r, ph in settings:
            ds = run_fwp(rule, q, k, v, np.full(8, beta), neurons_per_feature=n, rate=r, phase=ph, seed=1)
            errs.append(ds.attrs["relative_error"])
            xs.append(n * r * ph)
            last = ds
            print(f"fwp {type(rule).__name__}: n={n} rate={r} phase={ph} corr={ds.attrs['correlation']:.4f} "
                  f"rel_err={ds.attrs['relative_error']:.4f}")
        ax[0].loglog(xs, errs, "o-", color=c, label=type(rule).__name__)
        ax[1].plot(last.y_rate.values.ravel(), last.y_spiking.values.ravel(), "o", color=c, ms=3,
                   label=type(rule).__name__)
    ax[0].set(xlabel="neurons (1) x rate (Hz) x phase (s)", ylabel="relative error (1)",
              title="spiking vs rate read-out")
    ax[0].legend(fontsize=7)
    lim = ax[1].get_xlim()
    ax[1].plot(lim, lim, "k--", lw=0.5)
    ax[1].set(xlabel="rate read-out y (1)", ylabel="spiking read-out y (1)", title="largest setting")
    save(fig, "spiking_fwp.png")


def kempter():
    rule = PairSTDP(A_plus=1.0, A_minus=0.5, tau_plus=0.02, tau_minus=0.02)
    d = P.poisson_drift(rule, r_pre=20.0, r_post=20.0, n_pre=200, n_post=10, duration=10.0, seed=0)
    print(f"kempter: drift={float(d.drift):.3f} /s predicted={float(d.predicted):.3f} /s "
          f"({float(d.drift / d.predicted - 1):+.1%}; realised rates {float(d.drift / d.predicted_realised - 1):+.1%})")


if __name__ == "__main__":
    kempter()
    windows()
    song()
    izhikevich()
    fwp()
