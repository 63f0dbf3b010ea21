"""Song 2000 through plastinet's brian2 backend versus a plain Brian2 script (run on demand).

    .venv/bin/python benchmarks/bench_backends.py              # N = 1,000 and 10,000, 10 s, all targets
    .venv/bin/python benchmarks/bench_backends.py --quick      # N = 1,000, 2 s
    .venv/bin/python benchmarks/bench_backends.py --targets numpy cython --sizes 1000

The network is Song, Miller & Abbott 2000 as in Brian2's ``examples/synapses/STDP.py``
(:func:`plastinet.spiking.protocols.song2000`): ``N`` Poisson inputs at 15 Hz onto one
conductance LIF (Euler), additive all-to-all pair STDP, 10 s of biological time,
dt = 0.1 ms. For every target (numpy, cython, cpp_standalone) and size it runs

``plain``
    a hand-written Brian2 script of the same network (``PoissonGroup``, ``NeuronGroup``
    with ``method='euler'``, ``Synapses`` with event-driven traces), explicit ``Network``;
``plastinet``
    the same network built from plastinet's spec by the brian2 backend, with Brian2's own
    ``PoissonGroup`` (``poisson="brian2"``, like the plain script);
``replay``
    the backend's default, Poisson spikes replayed from the numpy engine's streams
    (``SpikeGeneratorGroup``; identical to the numpy engine);

each in a fresh process (``--repeats`` times, best kept). ``loop`` is the time-step loop
alone (Brian2's ``_last_run_time``); ``setup`` is everything else in the run call (spec
lowering, code generation, compilation, for cpp_standalone also the build), which is what
a warm Cython cache or a re-used standalone build would save. ``overhead`` is
``plastinet loop / plain loop - 1`` (the acceptance target is <= 10 %). The numpy
engine's time for the same network is printed for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

DT = 1e-4
RATE = 15.0
G_MAX = 0.01


def plain(target: str, n: int, duration: float, seed: int) -> dict:
    """The hand-written Brian2 script; returns wall, loop and setup times."""
    import brian2 as b2
    from brian2 import Hz, ms, mV, second

    t0 = time.perf_counter()
    build_dir = None
    if target == "cpp_standalone":
        build_dir = tempfile.mkdtemp(prefix="bench-plain-")
        b2.set_device("cpp_standalone", directory=build_dir, build_on_run=True)
    else:
        b2.prefs.codegen.target = target
    b2.seed(seed)
    dt = DT * second
    dA = 0.01 * G_MAX
    ns = {"taum": 10 * ms, "El": -74 * mV, "vt": -54 * mV, "vr": -60 * mV, "Ee": 0 * mV, "taue": 5 * ms,
          "taupre": 20 * ms, "taupost": 20 * ms, "gmax": G_MAX, "dApre": dA, "dApost": -1.05 * dA}
    eqs = """dv/dt = (ge * (Ee - v) + El - v) / taum : volt
             dge/dt = -ge / taue : 1"""
    inp = b2.PoissonGroup(n, rates=RATE * Hz, dt=dt)
    post = b2.NeuronGroup(1, eqs, threshold="v > vt", reset="v = vr", method="euler", dt=dt, namespace=ns)
    post.v = -74 * mV
    syn = b2.Synapses(inp, post, """w : 1
                      dApre/dt = -Apre / taupre : 1 (event-driven)
                      dApost/dt = -Apost / taupost : 1 (event-driven)""",
                      on_pre="""ge += w
                      Apre += dApre
                      w = clip(w + Apost, 0, gmax)""",
                      on_post="""Apost += dApost
                      w = clip(w + Apre, 0, gmax)""", dt=dt, namespace=ns)
    syn.connect()
    syn.w = "rand() * gmax"
    mon = b2.SpikeMonitor(post)
    net = b2.Network(inp, post, syn, mon)
    net.run(duration * second, namespace={})
    loop = float(b2.get_device()._last_run_time)
    w = syn.w[:]
    out = {"wall": time.perf_counter() - t0, "loop": loop, "post_rate": mon.num_spikes / duration,
           "frac_low": float((w / G_MAX < 0.1).mean()), "frac_high": float((w / G_MAX > 0.9).mean())}
    out["setup"] = out["wall"] - loop
    return out


def backend(target: str, n: int, duration: float, seed: int, poisson: str) -> dict:
    from unittest import mock

    import plastinet.spiking.protocols as P
    from plastinet.backends import get_backend

    be = get_backend("brian2", target=target, poisson=poisson)
    attrs = {}

    def b2_run(net, dur, dt=1e-4, seed=None, progress=False, chunk_steps=None):
        ds = be.simulate(net, dur, dt=dt, seed=seed)
        attrs.update(ds.attrs)
        return ds

    t0 = time.perf_counter()
    with mock.patch.object(P, "run", b2_run):
        ds = P.song2000(n_inputs=n, duration=duration, seed=seed)
    wall = time.perf_counter() - t0
    loop = float(attrs["run_loop_time"])
    return {"wall": wall, "loop": loop, "setup": wall - loop, "post_rate": ds.attrs["post_rate"],
            "frac_low": ds.attrs["frac_low"], "frac_high": ds.attrs["frac_high"]}


def engine(n: int, duration: float, seed: int) -> dict:
    import plastinet.spiking.protocols as P

    t0 = time.perf_counter()
    ds = P.song2000(n_inputs=n, duration=duration, seed=seed)
    wall = time.perf_counter() - t0
    return {"wall": wall, "loop": wall, "setup": 0.0, "post_rate": ds.attrs["post_rate"],
            "frac_low": ds.attrs["frac_low"], "frac_high": ds.attrs["frac_high"]}


def one(kind: str, target: str, n: int, duration: float, seed: int) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    if kind == "plain":
        return plain(target, n, duration, seed)
    if kind == "engine":
        return engine(n, duration, seed)
    return backend(target, n, duration, seed, "brian2" if kind == "plastinet" else "replay")


def measure(kind: str, target: str, n: int, duration: float, seed: int, repeats: int) -> dict:
    best = None
    for _ in range(repeats):
        cmd = [sys.executable, __file__, "--one", kind, target, str(n), str(duration), str(seed)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1][:200]}
        res = json.loads(lines[-1])
        if best is None or res["loop"] < best["loop"]:
            best = res
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="N = 1000, 2 s")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--targets", nargs="+", default=["numpy", "cython", "cpp_standalone"])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.one:
        kind, target, n, duration, seed = args.one
        print(json.dumps(one(kind, target, int(n), float(duration), int(seed))))
        return
    sizes = args.sizes or ([1000] if args.quick else [1000, 10000])
    duration = args.duration or (2.0 if args.quick else 10.0)
    import brian2

    print(f"Song 2000, {duration:g} s at dt = 0.1 ms; brian2 {brian2.__version__}; "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus; best of {args.repeats}")
    hdr = f"{'N':>6} {'target':>15} {'kind':>10} {'loop s':>8} {'setup s':>8} {'wall s':>8} {'overhead':>9} " \
          f"{'rate Hz':>8} {'low':>6} {'high':>6}"
    print(hdr)
    for n in sizes:
        r = measure("engine", "numpy", n, duration, args.seed, args.repeats)
        print(f"{n:>6} {'numpy engine':>15} {'':>10} {r['loop']:>8.2f} {0:>8.2f} {r['wall']:>8.2f} {'':>9} "
              f"{r['post_rate']:>8.1f} {r['frac_low']:>6.3f} {r['frac_high']:>6.3f}", flush=True)
        for target in args.targets:
            base = None
            for kind in ("plain", "plastinet", "replay"):
                r = measure(kind, target, n, duration, args.seed, args.repeats)
                if "error" in r:
                    print(f"{n:>6} {target:>15} {kind:>10} error: {r['error']}", flush=True)
                    continue
                if kind == "plain":
                    base = r["loop"]
                over = f"{100 * (r['loop'] / base - 1):+8.1f}%" if base and kind != "plain" else ""
                print(f"{n:>6} {target:>15} {kind:>10} {r['loop']:>8.2f} {r['setup']:>8.2f} {r['wall']:>8.2f} "
                      f"{over:>9} {r['post_rate']:>8.1f} {r['frac_low']:>6.3f} {r['frac_high']:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
