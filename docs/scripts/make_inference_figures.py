"""Generate the rule-inference figures of docs/analysis.md (PNG, < 200 kB each) into docs/figures/.

Run: ``.venv/bin/python docs/scripts/make_inference_figures.py [rules] [bandit] [recovery]``
(all three by default; a few minutes).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from plastinet.analysis import infer_rule  # noqa: E402
from plastinet.experiments.rule_inference import planted_activity, planted_bandit, recovery_grid  # noqa: E402
from plastinet.plotting import plot_rule_inference  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "figures"
TERMS = ["1", "x", "y", "W", "x*y", "y*W", "x*y^2", "y^2*W"]


def save(fig, name: str) -> None:
    path = OUT / name
    fig.savefig(path, dpi=90)
    plt.close(fig)
    size = path.stat().st_size
    assert size < 200_000, f"{name} is {size} bytes"
    print(f"{path.name}: {size / 1000:.0f} kB")


def with_planted(fit, planted: dict[str, float]):
    ds = fit.to_dataset()
    names = [str(n) for n in ds.coefficient.values]
    ds["planted"] = (("coefficient",), np.array([planted.get(n, np.nan) for n in names]),
                     {"units": "1", "long_name": "planted coefficient"})
    return ds


def rules_figure() -> None:
    fig, axes = plt.subplots(2, 4, figsize=(15, 6.5), layout="constrained")
    for col, rule in enumerate(("oja", "hebbian_decay", "bcm", "modulated_hebbian")):
        ds = planted_activity(rule, trials=8, steps=60, noise=0.02, seed=5)
        terms = TERMS + (["r*x*y", "r*W", "r*x", "r*y"] if "reward" in ds else [])
        fit = infer_rule(ds, terms=terms, n_boot=16)
        planted = {k.replace("x*y*r", "x*y*r"): v for k, v in json.loads(ds.attrs["planted"]).items()}
        res = with_planted(fit, planted)
        plot_rule_inference(res, ax=axes[0, col])
        axes[0, col].set_title(f"planted {rule}:\nbest match {fit.best}", fontsize=9)
        plot_rule_inference(res, ax=axes[1, col], kind="prediction")
    save(fig, "inference_rules.png")


def recovery_figure() -> None:
    grid = recovery_grid("oja", noises=(0.01, 0.03, 0.1, 0.3), steps=(20, 40, 80, 160), seeds=(0, 1, 2))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    steps = grid.steps.values
    for noise in grid.noise.values:
        e = grid.error.sel(noise=noise)
        ax1.errorbar(steps, e.mean("seed"), yerr=e.std("seed"), marker="o", capsize=3, label=f"noise {noise:g}")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xticks(steps, [str(s) for s in steps])
    ax1.minorticks_off()
    ax1.set_xlabel("steps per trial (1)")
    ax1.set_ylabel("relative coefficient error (1)")
    ax1.set_title("planted Oja rule, 6 trials, 8 candidate terms", fontsize=9)
    ax1.legend(fontsize=7)
    im = ax2.imshow(grid.identified.mean("seed").values, origin="lower", cmap="Greens", vmin=0, vmax=1,
                    aspect="auto")
    ax2.set_xticks(range(steps.size), [str(s) for s in steps])
    ax2.set_yticks(range(grid.noise.size), [f"{n:g}" for n in grid.noise.values])
    ax2.set_xlabel("steps per trial (1)")
    ax2.set_ylabel("relative observation noise (1)")
    ax2.set_title("fraction of fits whose best match is Oja", fontsize=9)
    fig.colorbar(im, ax=ax2, label="fraction (1)")
    save(fig, "inference_recovery.png")


def bandit_figure() -> None:
    ds = planted_bandit(sessions=16, steps=150, seed=5)
    fit = infer_rule(ds, terms=["r*x*y", "x*y", "W", "r*W"], initial_weights="zero", n_boot=16)
    res = with_planted(fit, json.loads(ds.attrs["planted"]))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    plot_rule_inference(res, ax=ax1)
    plot_rule_inference(res, ax=ax2, kind="prediction")
    save(fig, "inference_bandit.png")


if __name__ == "__main__":
    import sys

    figures = {"rules": rules_figure, "bandit": bandit_figure, "recovery": recovery_figure}
    for name in sys.argv[1:] or list(figures):      # e.g. `... make_inference_figures.py bandit`
        figures[name]()
