"""Figures and numbers of the recurrent network models (docs/models.md, docs/spiking.md).

``python docs/scripts/make_network_figures.py [vogels2011] [izhikevich2007_network] [--duration S]``
runs the bundled models (the papers' full runs by default; ``--duration`` shortens the
Izhikevich run, whose full hour takes hours on the numpy engine), saves
``docs/figures/network_<model>.png`` and prints the numbers the docs quote with the wall time.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from plastinet.experiments import get_kind, load_model  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parents[1] / "figures"
KEYS = {"vogels2011": ("rate_exc_before", "rate_exc_after", "rate_inh_before", "rate_inh_after", "i_exc_before",
                       "i_inh_before", "i_exc_after", "i_inh_after", "ei_correlation_before", "ei_correlation_after",
                       "ei_neuron_correlation_before", "ei_neuron_correlation_after", "w_ie_mean"),
        "izhikevich2007_network": ("rewarded_final", "others_mean", "others_p99", "others_max", "t_rewarded_max",
                                   "n1", "n2")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(KEYS), choices=list(KEYS))
    parser.add_argument("--duration", type=float, default=None,
                        help="biological time of the izhikevich2007_network run (s); default: the model's hour")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    for name in args.models:
        overrides = [f'protocol.duration="{args.duration} s"'] if args.duration and name.startswith("izhikevich") else []
        model = load_model(name, overrides)
        start = time.perf_counter()
        ds = model.run(progress=False)
        wall = time.perf_counter() - start
        fig = get_kind(model.kind).plot(ds, plt.figure(figsize=(7, 4.2), layout="constrained"))
        fig.savefig(OUT / f"network_{name}.png", dpi=80)
        plt.close(fig)
        numbers = ", ".join(f"{k}={ds.attrs[k]:.4g}" for k in KEYS[name])
        print(f"{name}: {numbers}; wall time {wall:.0f} s")


if __name__ == "__main__":
    main()
