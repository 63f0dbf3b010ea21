"""Training-step benchmark of the chunkwise rules: forward vs forward+backward (run on demand).

Measures, for every chunkwise rule (``--rule`` picks some: Delta, GatedDelta and
DecayedHebbian with constant decay 0.99, DecayedHebbian with per-key gates ~ U(0.9, 1),
Hebbian) in float32 (B=1, H=4, d_k=d_v=64, chunk 64, L2-normalised keys and queries):

* tokens/s (sequence positions per second, all 4 heads processed) of the forward pass
  (:func:`plastinet.fwp.apply`) and of a training step (:func:`plastinet.fwp.vjp`, which
  recomputes the forward internally: forward+backward);
* the ratio ``backward / forward``, where ``backward = step - forward`` (seconds), from wall
  time and from CPU time (``process_time`` of all threads, the better basis on a shared
  machine);
* peak traced memory (``tracemalloc``: every numpy buffer allocated during the call, minus
  the memory already allocated before it; inputs excluded) of ``apply`` and of ``vjp``.

Usage: ``python benchmarks/bench_train.py [--T 2048 8192] [--repeat 10] [--rule delta hebbian ...] [--chunk 64]``.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np

from plastinet._blas import n_workers, openblas_cores
from plastinet.fwp import DecayedHebbian, Delta, FeatureMap, GatedDelta, Hebbian, apply, vjp
from plastinet.fwp.forms.native import native_status

_KEYS = FeatureMap("identity", normalize="l2")
#: name -> (rule, per-key gates passed as ``alpha``)
RULES = {"delta": (Delta(feature_map=_KEYS), False),
         "gated_delta": (GatedDelta(feature_map=_KEYS, decay=0.99), False),
         "decayed_hebbian": (DecayedHebbian(feature_map=_KEYS, decay=0.99), False),
         "decayed_hebbian_per_key": (DecayedHebbian(feature_map=_KEYS), True),
         "hebbian": (Hebbian(feature_map=_KEYS), False)}


#: sequence length of the targets (backward/forward and memory ratios)
TARGET_T = 8192


def _inputs(T: int, H: int = 4, d: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return {"q": rng.normal(size=(1, H, T, d)).astype(f32),
            "k": rng.normal(size=(1, H, T, d)).astype(f32),
            "v": rng.normal(size=(1, H, T, d)).astype(f32),
            "beta": rng.uniform(0.1, 0.9, size=(1, H, T)).astype(f32),
            "alpha": rng.uniform(0.9, 1.0, size=(1, H, T, d)).astype(f32),
            "dy": rng.normal(size=(1, H, T, d)).astype(f32)}


def _best_times(fns, repeat: int) -> tuple[list[float], list[float]]:
    """Best wall and best CPU time of each function; runs are interleaved so that load
    changes hit all. CPU time (``process_time``, all threads) is much less sensitive to other
    processes on a shared machine."""
    wall = [np.inf] * len(fns)
    cpu = [np.inf] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[i] = min(wall[i], time.perf_counter() - t0)
            cpu[i] = min(cpu[i], time.process_time() - c0)
    return wall, cpu


def _peak(fn) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rule", choices=sorted(RULES), nargs="+", default=list(RULES))
    parser.add_argument("--chunk", type=int, default=64, help="chunk size (default 64, as apply)")
    args = parser.parse_args()
    print(f"chunkwise, float32, B=1, H=4, d_k=d_v=64, chunk {args.chunk}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"numpy {np.__version__}, OpenBLAS kernels {'/'.join(openblas_cores()) or 'none (another BLAS)'}, "
          f"{n_workers()} head thread(s) (PLASTINET_NUM_THREADS), compiled chunk loops: {native_status()}")
    head = (f"{'rule':>24} {'T':>6} {'fwd tok/s':>11} {'fwd+bwd tok/s':>14} {'bwd/fwd':>8} {'bwd/fwd CPU':>12} "
            f"{'fwd peak MB':>12} {'step peak MB':>13} {'mem ratio':>10}")
    print(head)
    print("-" * len(head))
    rows = []
    for name in args.rule:
        rule, per_key = RULES[name]
        for T in args.T:
            x = _inputs(T)
            kw = {"beta": x["beta"], "form": "chunkwise", "chunk_size": args.chunk}
            if per_key:
                kw["alpha"] = x["alpha"]

            def fwd():
                return apply(rule, x["q"], x["k"], x["v"], **kw)

            def step():
                return vjp(rule, x["q"], x["k"], x["v"], x["dy"], **kw)

            fwd()
            step()
            (t_f, t_s), (c_f, c_s) = _best_times([fwd, step], args.repeat)
            m_f, m_s = _peak(fwd), _peak(step)
            print(f"{name:>24} {T:>6} {T / t_f:>11.0f} {T / t_s:>14.0f} {(t_s - t_f) / t_f:>8.2f} "
                  f"{(c_s - c_f) / c_f:>12.2f} {m_f / 2**20:>12.1f} {m_s / 2**20:>13.1f} {m_s / m_f:>10.2f}",
                  flush=True)
            rows.append((name, T, (c_s - c_f) / c_f, m_s / m_f))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(f"\ntargets at T = {TARGET_T} (issue 23: backward/forward <= 2 by CPU time, step peak memory "
          "<= 2x the forward's):")
    for name, T, ratio, mem in rows:
        if T == TARGET_T:
            print(f"  {name:>24}: bwd/fwd CPU {ratio:.2f} ({'met' if ratio <= 2 else 'NOT met'}), "
                  f"memory {mem:.2f} ({'met' if mem <= 2 else 'NOT met'})")


if __name__ == "__main__":
    main()
