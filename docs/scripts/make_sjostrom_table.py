"""Write the Sjöström table of docs/spiking.md from the model file ``triplet_sjostrom2001``.

Runs the bundled model (full size, numpy engine) and replaces the block between the markers
``<!-- sjostrom-table:start -->`` and ``<!-- sjostrom-table:end -->`` of docs/spiking.md with
the model's relative weight changes beside the data and the largest deviation from the data
in units of the data's s.e.m. ``tests/spiking/test_documented_tables.py`` checks that the page
still holds what the model computes. Usage::

    python docs/scripts/make_sjostrom_table.py            # rewrite the block
    python docs/scripts/make_sjostrom_table.py --print    # only print it
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np

from plastinet.experiments import load_model

PAGE = pathlib.Path(__file__).resolve().parents[1] / "spiking.md"
START, END = "<!-- sjostrom-table:start -->", "<!-- sjostrom-table:end -->"


def _signed(x: float) -> str:
    return f"{x:.3f}".replace("-", "−")


def table() -> str:
    """The markdown block: header line, table and the deviation sentence."""
    model = load_model("triplet_sjostrom2001")
    ds = model.run(progress=False)
    rule = model.spec[2]
    freqs = ds["frequency"].values
    lines = [f"**Triplet / Sjöström** (model file `{model.name}`: visual cortex, all-to-all, full "
             f"model of Pfister & Gerstner 2006, Table 3 — A2+ = {rule.A2_plus:g}, A3+ = {rule.A3_plus:g}, "
             f"A2− = {rule.A2_minus:g}, A3− = {rule.A3_minus:g}, τx = {rule.tau_x * 1e3:g} ms, "
             f"τy = {rule.tau_y * 1e3:g} ms; relative change after {ds.attrs['n_pairings']} pairings):", "",
             "| ρ (Hz) | " + " | ".join(f"{f:g}" for f in freqs) + " |",
             "| --- |" + " --- |" * freqs.size]
    for d in ds["delta_t"].values:
        label = f"{d * 1e3:+.0f} ms".replace("-", "−")
        model_row = ds["dw_rel"].sel(delta_t=d).values
        mean, sem = ds["data_mean"].sel(delta_t=d).values, ds["data_sem"].sel(delta_t=d).values
        lines.append(f"| model {label} | " + " | ".join(_signed(v) for v in model_row) + " |")
        lines.append(f"| data {label} | " + " | ".join(f"{m:.2f} ± {s:.2f}".replace("-", "−") for m, s in zip(mean, sem))
                     + " |")
    dev = np.abs(ds["dw_rel"] - ds["data_mean"]) / ds["data_sem"]
    where = dev.where(dev == dev.max(), drop=True)
    d_max, f_max = float(where["delta_t"].values[0]), float(where["frequency"].values[0])
    lines += ["", f"Every model point lies within {float(dev.max()):.2f} s.e.m. of the data (largest deviation: "
              f"{d_max * 1e3:+.0f} ms at {f_max:g} Hz).".replace("-", "−")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the block instead of writing the page")
    args = parser.parse_args()
    block = table()
    if args.print:
        print(block)
        return
    text = PAGE.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    PAGE.write_text(f"{head}{START}\n{block}\n{END}{tail}", encoding="utf-8")
    print(f"wrote the Sjöström table of {PAGE}")


if __name__ == "__main__":
    main()
