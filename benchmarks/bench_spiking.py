"""Benchmark: Song 2000 network, numpy engine vs Brian2 (numpy and cython targets).

Run on demand: ``python benchmarks/bench_spiking.py [--duration 10] [--inputs 1000 10000]``.
For N inputs g_max is scaled as 0.01 * 1000 / N (same total input conductance as the
N = 1000 original; with the unscaled g_max the neuron fires at ~5 kHz for N = 10,000).
Brian2's cython compile time is measured separately by a warm-up run of 1 ms of the same
network with a fresh cache directory; wall times are of the following 10 s runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def run_plastinet(n: int, duration: float, seed: int = 0) -> tuple[float, int]:
    from plastinet.experiments import protocols
    t = time.perf_counter()
    ds = protocols.song2000(n_inputs=n, duration=duration, g_max=0.01 * 1000 / n, seed=seed)
    return time.perf_counter() - t, int(ds.sizes["spike"])


def run_brian2(n: int, duration: float, target: str, seed: int = 0) -> tuple[float, float, int]:
    import brian2 as b2
    b2.prefs.codegen.target = target
    if target == "cython":
        b2.prefs.codegen.runtime.cython.cache_dir = tempfile.mkdtemp(prefix="b2cache_")
    b2.seed(seed)
    gmax = 0.01 * 1000 / n
    ns = dict(taum=10 * b2.ms, Ee=0 * b2.mV, vt=-54 * b2.mV, vr=-60 * b2.mV, El=-74 * b2.mV,
              taue=5 * b2.ms, taupre=20 * b2.ms, taupost=20 * b2.ms, gmax=gmax,
              dApre=0.01 * gmax, dApost=-0.01 * gmax * 1.05)

    def build():
        inp = b2.PoissonGroup(n, rates=15 * b2.Hz, dt=0.1 * b2.ms, name="inp")
        neurons = b2.NeuronGroup(1, "dv/dt = (ge * (Ee-v) + El - v) / taum : volt\ndge/dt = -ge / taue : 1",
                                 threshold="v>vt", reset="v = vr", method="euler", dt=0.1 * b2.ms,
                                 name="neurons")
        neurons.v = ns["El"]
        S = b2.Synapses(inp, neurons,
                        "w : 1\ndApre/dt = -Apre / taupre : 1 (event-driven)\n"
                        "dApost/dt = -Apost / taupost : 1 (event-driven)",
                        on_pre="ge += w\nApre += dApre\nw = clip(w + Apost, 0, gmax)",
                        on_post="Apost += dApost\nw = clip(w + Apre, 0, gmax)", dt=0.1 * b2.ms,
                        name="syn")
        S.connect()
        S.w = np.random.default_rng(seed).uniform(0, gmax, n)
        mon = b2.SpikeMonitor(neurons, name="mon")
        return b2.Network(inp, neurons, S, mon, name="net"), mon

    net, mon = build()
    compile_time = 0.0
    if target == "cython":  # compile (and cache) every code object with a 1 ms run of the same network
        t = time.perf_counter()
        net.run(1 * b2.ms, namespace=ns)
        compile_time = time.perf_counter() - t
    t = time.perf_counter()
    net.run(duration * b2.second, namespace=ns)
    return time.perf_counter() - t, compile_time, int(mon.num_spikes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--inputs", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--targets", nargs="+", default=["numpy", "cython"])
    args = ap.parse_args()
    print(f"Song 2000 network, {args.duration:g} s biological time, dt = 0.1 ms")
    for n in args.inputs:
        t_pn, spk = run_plastinet(n, args.duration)
        print(f"N={n:6d} plastinet numpy engine: {t_pn:8.2f} s  (post spikes {spk})")
        for target in args.targets:
            t_b, t_c, spk_b = run_brian2(n, args.duration, target)
            extra = f", compile+1 ms run {t_c:.1f} s" if target == "cython" else ""
            print(f"N={n:6d} brian2 {target:6s}:           {t_b:8.2f} s  (post spikes {spk_b}{extra})"
                  f"  ratio plastinet/brian2 = {t_pn / t_b:.2f}")


if __name__ == "__main__":
    main()
