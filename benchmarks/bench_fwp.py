"""Throughput of the rate engine's forms and chunkwise rules (run on demand, not a test).

    .venv/bin/python benchmarks/bench_fwp.py            # full tables, 8-12 minutes (load-dependent)
    .venv/bin/python benchmarks/bench_fwp.py --quick    # T <= 2048 only
    .venv/bin/python benchmarks/bench_fwp.py --rules-only # only the all-rules table
    .venv/bin/python benchmarks/bench_fwp.py --keep-blas-env # kernels as pinned by the environment
    PLASTINET_NATIVE=0 .venv/bin/python benchmarks/bench_fwp.py  # the numpy chunk loops instead of the compiled ones

All chunkwise rules (:func:`rules_table`): Delta, GatedDelta, Hebbian, DecayedHebbian with
scalar and with per-key gates (gates ~ U(0.9, 1)), same sizes and inputs, each at its best
chunk size of ``RULE_CHUNKS``: tokens/s, the fraction of the GEMM rate by the rule's own FLOP
model (:func:`rule_flops`; the Hebbian rules ``H (4 d^2 + 2 C d)``) and the ratio to the
delta rule, measured in interleaved rounds.

For the delta rule at B=1, H=4, d_k = d_v = d in {64, 128}, T in {512, 2048, 8192}, float32,
prints tokens/s (``B*T / seconds``: one token carries all H heads) of every form of
:func:`plastinet.fwp.apply`, the machine's float32 GEMM rate measured in the same run, and
the fraction of that rate each form reaches.

Useful FLOPs per token (the yardstick of the fraction), per head, ``d_k = d_v = d``, chunk
size ``C``, counting a multiply-add as 2 and triangular products at their triangular cost:

* chunkwise: ``6 d^2 + 4 C d + C^2 / 3`` --
  ``K S^T``, ``Q S^T``, ``K^T U`` (``2 C d^2`` each); strictly lower ``K K^T``, lower
  ``Q K^T``, ``T diag(beta) (V - K S^T)``, ``tril(Q K^T) U`` (``C^2 d`` each); inverse of
  the unit-lower-triangular ``C x C`` system (``C^3 / 3``); all per chunk of ``C`` tokens.
  (This is the engine's algorithm; the WY form with ``W_y = T diag(beta) K`` and
  ``U_y = T diag(beta) V`` costs one ``C^2 d`` more, ``6 d^2 + 5 C d + C^2 / 3``.)
* recurrent and parallel: ``6 d^2`` (read ``W k``, rank-1 update, read ``W q``), the work
  every form must do; the parallel form does more (``O(T d)`` per token), so its fraction
  is a lower bound of its arithmetic rate.

The GEMM rate is the best of several ``2048 x 2048`` float32 matrix products with numpy's
default BLAS threads, i.e. the whole machine. Where ``torch`` and ``fla-core``
(flash-linear-attention) are importable, the pure-torch reference
``fla.ops.delta_rule.naive.delta_rule_chunkwise`` runs on the same inputs (after checking
that its output agrees with ours); it is the best public CPU reference of this algorithm
and is NOT a dependency of plastinet. It runs in a child process (``--fla-child``), so that
torch never shares a process with our engine: after a torch call its OpenMP worker
threads keep spinning for a while and slow down whatever runs next in the process (measured:
our 2-thread chunkwise form 1.15-1.45x slower right after a torch call). Rounds of our
forms and of the fla child alternate, so both see the same load.

OpenBLAS kernels. The header prints the kernel family numpy's OpenBLAS runs (e.g.
``Haswell``, ``SkylakeX``). Some machines pin it with ``OPENBLAS_CORETYPE`` (and
``OPENBLAS_L2_SIZE``) in the environment, because older OpenBLAS builds misbehave on their
CPU; that slows a current numpy (on an AVX-512 CPU pinned to ``Haswell``, float32 GEMM runs
at half rate), while torch (MKL) is unaffected. So that the benchmark measures numpy as it
runs on the CPU, it re-runs itself in a child process with both variables removed from
that process alone (OpenBLAS then picks its kernels from the CPU) and prints the kernel
family before and after (in the re-run's header); ``--keep-blas-env`` measures with the environment as it is.
Tests and CI never change these variables.

Every time is the best of several repeats, interleaved round-robin over the forms (the
machine may be shared; the load average is printed); each timed call follows an untimed
call of the same runner (ours and fla's alike, see :func:`interleaved_best`). Columns: ``rec``, ``par``,
``chunk C=..`` tokens/s; ``%gemm`` fractions; ``fla C=..`` the fla reference's tokens/s
(best of torch threads 1 and default); ``ours/fla`` our best chunk size over fla's best.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np

from plastinet._blas import openblas_cores, single_threaded_blas
from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, apply
from plastinet.fwp.forms.native import native_status

B, H = 1, 4
DELTA = Delta()                  # one rule object, as in use (constructing one validates it)
DS = (64, 128)
TS = (512, 2048, 8192)
CHUNKS = (32, 64)
FLA_CHUNKS = (32, 64)
#: chunk sizes of the all-rules tables (C = 128 was slower for every rule at both d in the
#: runs of 2026-12-07 17:00 UTC, with the cache-resident chunk products, and was dropped)
RULE_CHUNKS = (32, 64)
FLA_THREADS = (1, None)          # torch threads for fla: 1 and torch's default; best is kept


def chunk_flops(d: int, C: int) -> float:
    """Useful FLOPs per token of the chunkwise delta rule (all H heads)."""
    return H * (6.0 * d * d + 4.0 * C * d + C * C / 3.0)


#: The rules of the all-rules table: name -> (rule, gates: None, "scalar" or "per_key").
RULES = {"Delta": (DELTA, None), "GatedDelta": (GatedDelta(), "scalar"), "Hebbian": (Hebbian(), None),
         "DecayedHebbian": (DecayedHebbian(), "scalar"),
         "DecayedHebbian/key": (DecayedHebbian(), "per_key")}
#: Range of the benchmark's decay gates, uniform per step (and per key unit)
GATES = (0.9, 1.0)
#: Tokens per runner and round of the all-rules tables: at least ``ROUND_TOKENS // T``
#: rounds per row (8 at T = 8192, 128 at T = 512), so that every call gets several chances
#: at a quiet moment of a shared machine, whose speed here changes by 10-40 % in phases of
#: seconds (the GEMM it is compared with takes its best of 7 + 3 per row); about 5 s per row
ROUND_TOKENS = 65536


def rule_rounds(T: int, repeats: int) -> int:
    """Rounds of the all-rules tables at length ``T``: ``repeats``, more for short calls."""
    return max(repeats, ROUND_TOKENS // T)


def rule_flops(name: str, d: int, C: int) -> float:
    """Useful FLOPs per token of the chunkwise form of rule ``name`` (all H heads).

    The (gated) delta rules: :func:`chunk_flops`. The Hebbian rules (linear attention, with
    or without decay): ``4 d^2 + 2 C d`` per head -- ``Q S^T`` and ``K^T V`` (``2 C d^2``
    each per chunk), lower ``Q K^T`` and ``tril(Q K^T) V`` (``C^2 d`` each). Gate factors
    (elementwise) are not counted.
    """
    if name in ("Delta", "GatedDelta"):
        return chunk_flops(d, C)
    return H * (4.0 * d * d + 2.0 * C * d)


def state_flops(d: int) -> float:
    """The ``6 d^2`` per head-token every form must do (all H heads)."""
    return H * 6.0 * d * d


def gemm_runner(n: int = 2048):
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    return lambda: a @ b, 2.0 * n ** 3


#: CPU seconds for which an idle OpenBLAS worker thread keeps spinning after a multi-threaded
#: call (measured here: 0.10 s after a 2048^3 GEMM), competing with whatever runs next.
OPENBLAS_SPIN = 0.15
#: GEMM repeats at the start of the wall-clock table and after each of its rows
GEMM_START, GEMM_PER_ROW = 7, 3


def gemm_time(gemm_fn, repeats: int) -> float:
    """Best seconds of ``repeats`` GEMMs with numpy's default threads; then waits out the spin.

    The GEMM is never interleaved with the forms: after it, an OpenBLAS worker spins on a
    core for about 0.1 s (:data:`OPENBLAS_SPIN`), which slowed the two-thread chunkwise form
    timed next by up to 2x at T = 512.
    """
    best = interleaved_best({"gemm": gemm_fn}, repeats, 10.0)["gemm"]
    time.sleep(OPENBLAS_SPIN)
    return best


def interleaved_best(runners: dict, rounds: int, budget: float, clock=time.perf_counter) -> dict:
    """Best time of each runner over ``rounds`` round-robin rounds.

    Interleaving makes every runner see the same load of a shared machine; a runner stops
    repeating once it has used ``budget`` seconds (it always runs at least once).
    ``clock``: :func:`time.perf_counter` (wall) or :func:`time.process_time` (CPU).
    Every timed call directly follows an untimed call of the same runner: a short call
    (a few ms) that follows a different kind of work, or idle time, runs up to 2x slower
    on this VM (measured: chunkwise d = 128, T = 512 after a two-thread GEMM, whose idle
    OpenBLAS threads keep spinning, or after a 0.2 s pause), which would measure the
    previous runner rather than this one.
    """
    best = {name: np.inf for name in runners}
    used = {name: 0.0 for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            if used[name] > budget:
                continue
            fn()
            t = clock()
            fn()
            dt = clock() - t
            used[name] += dt
            best[name] = min(best[name], dt)
    return best


def inputs(d: int, T: int):
    rng = np.random.default_rng(d * 100003 + T)
    k = rng.standard_normal((B, H, T, d), dtype=np.float32)
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    q = rng.standard_normal((B, H, T, d), dtype=np.float32) * np.float32(d ** -0.5)
    v = rng.standard_normal((B, H, T, d), dtype=np.float32)
    beta = rng.uniform(0.0, 1.0, (B, H, T)).astype(np.float32)
    return q, k, v, beta


def gate_inputs(d: int, T: int) -> dict:
    """Decay gates of the all-rules table: ``{"scalar": (B, H, T), "per_key": (B, H, T, d)}``."""
    rng = np.random.default_rng(d * 100019 + T)
    return {"scalar": rng.uniform(*GATES, (B, H, T)).astype(np.float32),
            "per_key": rng.uniform(*GATES, (B, H, T, d)).astype(np.float32)}


def rules_table(Ts, repeats: int, gemm_fn, gemm_best: float, gemm_flops: float) -> None:
    """Every chunkwise rule at chunk sizes :data:`RULE_CHUNKS` (wall clock, interleaved rounds).

    Prints, per size, each rule's best tokens/s over the chunk sizes, its fraction of the
    GEMM rate by its own FLOP model (:func:`rule_flops`), its ratio to the delta rule, and the
    targets: Hebbian rules >= Delta, GatedDelta >= 0.9 Delta, every rule >= 50 % of GEMM at
    d = 128. Every rule is first checked against its recurrent form (relative error < 1e-4).
    """
    names = list(RULES)
    print(f"\nall chunkwise rules (best of C in {RULE_CHUNKS}; gates ~ U{GATES}); useful FLOPs/token: "
          "Delta, GatedDelta H(6d^2 + 4Cd + C^2/3); Hebbian, DecayedHebbian (scalar and per key) "
          "H(4d^2 + 2Cd)")
    head = (f"{'d':>4} {'T':>5} | " + " ".join(f"{n:>18}" for n in names) + " | %gemm "
            + " ".join(f"{n[:8]:>8}" for n in names) + " | /Delta " + " ".join(f"{n[:8]:>8}" for n in names[1:]))
    print(head)
    print("-" * len(head))
    rows = []
    for d in DS:
        for T in Ts:
            best_t = interleaved_best(_rule_runners(d, T, check=True), rule_rounds(T, repeats), 10.0)
            gemm_best = min(gemm_best, gemm_time(gemm_fn, GEMM_PER_ROW))
            rate, chunk = _best_chunks(T, best_t)
            rows.append((d, T, rate, chunk))
            print(_rules_row(d, T, rate, chunk, gemm_flops / gemm_best), flush=True)
    gemm = gemm_flops / gemm_best
    print(f"\nfinal table with the best GEMM rate of the run ({gemm / 1e9:.1f} GFLOP/s):\n")
    print(head)
    print("-" * len(head))
    for d, T, rate, chunk in rows:
        print(_rules_row(d, T, rate, chunk, gemm))
    print("\ntargets (all rules, wall clock):")
    _print_rule_targets([(*row, gemm) for row in rows])


def _print_rule_targets(rows) -> None:
    """Issue 23's targets per size (rows ``(d, T, rate, chunk, gemm)``): Hebbian rules >=
    Delta, GatedDelta >= 0.9 Delta (tokens per second), every rule >= 50 % of ``gemm``
    (FLOP/s) by its own FLOP model at d = 128."""
    names = list(RULES)
    for d, T, rate, chunk, gemm in rows:
        notes = []
        for n in names[1:]:
            need = 0.9 if n == "GatedDelta" else 1.0
            r = rate[n] / rate["Delta"]
            notes.append(f"{n} {r:.2f} (>= {need}: {'met' if r >= need else 'NOT met'})")
        if d == 128:
            frac = {n: rate[n] * rule_flops(n, d, chunk[n]) / gemm for n in names}
            low = min(frac, key=frac.get)
            notes.append(f"lowest GEMM fraction {100 * frac[low]:.1f}% ({low}; >= 50%: "
                         f"{'met' if frac[low] >= 0.5 else 'NOT met'})")
        print(f"  d={d:<3} T={T:<5}: " + "; ".join(notes))


def cpu_rules_table(Ts, repeats: int) -> None:
    """Load-insensitive companion of :func:`rules_table`: tokens per CPU-second of one thread.

    All heads in one Python thread (``PLASTINET_NUM_THREADS=1``) with one BLAS thread; the
    yardstick is a single-threaded ``1024^3`` GEMM timed the same way, interleaved with the
    rules in every row's rounds (so that it sees the same load: on a shared machine a
    busy sibling core slows both), and before and after the table; each row's fractions
    use the best GEMM time of the whole run.
    """
    cpu = time.process_time
    names = list(RULES)
    saved_threads = os.environ.get("PLASTINET_NUM_THREADS")
    os.environ["PLASTINET_NUM_THREADS"] = "1"
    try:
        with single_threaded_blas():
            gemm_fn, gemm_flops = gemm_runner(1024)
            gemm_fn()
            gemm_t = interleaved_best({"gemm": gemm_fn}, 10, 2.0, cpu)["gemm"]
            rows = []
            for d in DS:
                for T in Ts:
                    runners = {**_rule_runners(d, T, check=False), "gemm": gemm_fn}
                    best_t = interleaved_best(runners, rule_rounds(T, repeats), 10.0, cpu)
                    gemm_t = min(gemm_t, best_t.pop("gemm"))
                    rows.append((d, T, *_best_chunks(T, best_t)))
            gemm_t = min(gemm_t, interleaved_best({"gemm": gemm_fn}, 10, 2.0, cpu)["gemm"])
    finally:
        if saved_threads is None:
            del os.environ["PLASTINET_NUM_THREADS"]
        else:
            os.environ["PLASTINET_NUM_THREADS"] = saved_threads
    gemm1 = gemm_flops / gemm_t
    print(f"\nall chunkwise rules, single thread, CPU time (tokens per CPU-second; % of a "
          f"single-threaded GEMM 1024^3, {gemm1 / 1e9:.1f} GFLOP/s):")
    head = (f"{'d':>4} {'T':>5} | " + " ".join(f"{n:>18}" for n in names) + " | %gemm1 "
            + " ".join(f"{n[:8]:>8}" for n in names) + " | /Delta " + " ".join(f"{n[:8]:>8}" for n in names[1:]))
    print(head)
    print("-" * len(head))
    for d, T, rate, chunk in rows:
        print(_rules_row(d, T, rate, chunk, gemm1))
    print("\ntargets (all rules, CPU time of one thread):")
    _print_rule_targets([(*row, gemm1) for row in rows])


def _rule_runners(d: int, T: int, *, check: bool) -> dict:
    """Chunkwise runs of every rule of :data:`RULES` at every chunk size, keyed ``(name, C)``;
    ``check``: each run is first compared with the recurrent form (relative error < 1e-4)."""
    q, k, v, beta = inputs(d, T)
    gates = gate_inputs(d, T)
    runners = {}
    for name, (rule, gate) in RULES.items():
        kw = {"beta": beta} if gate is None else {"beta": beta, "alpha": gates[gate]}
        ref, W_ref = apply(rule, q, k, v, form="recurrent", **kw) if check else (None, None)
        for C in RULE_CHUNKS:
            def fn(rule=rule, kw=kw, C=C):
                return apply(rule, q, k, v, form="chunkwise", chunk_size=C, **kw)

            if check:
                y, W = fn()
                err = max(np.abs(y - ref).max() / np.abs(ref).max(), np.abs(W - W_ref).max() / np.abs(W_ref).max())
                assert err < 1e-4, f"{name} C={C} disagrees with the recurrent form: {err:.2e}"
            runners[(name, C)] = fn
    return runners


def _best_chunks(T: int, best_t: dict) -> tuple[dict, dict]:
    """Each rule's best rate (tokens/s) over :data:`RULE_CHUNKS` and the chunk size giving it."""
    chunk = {n: min(RULE_CHUNKS, key=lambda C: best_t[(n, C)]) for n in RULES}
    return {n: B * T / best_t[(n, chunk[n])] for n in RULES}, chunk


def _rules_row(d: int, T: int, rate: dict, chunk: dict, gemm: float) -> str:
    names = list(RULES)
    return (f"{d:>4} {T:>5} | " + " ".join(f"{rate[n]:>11.3g} (C={chunk[n]:<2})" for n in names)
            + " |       " + " ".join(f"{100 * rate[n] * rule_flops(n, d, chunk[n]) / gemm:>8.1f}" for n in names)
            + " |        " + " ".join(f"{rate[n] / rate['Delta']:>8.2f}" for n in names[1:]))


def load_fla():
    """fla's pure-torch chunkwise delta rule, or None (with the reason).

    ``fla/__init__`` imports triton kernels; the reference ``ops/delta_rule/naive.py`` needs
    only torch and einops, so it is loaded from its file without importing the package.
    """
    try:
        import importlib.util

        import torch
        spec = importlib.util.find_spec("fla")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("fla-core is not installed")
        path = os.path.join(list(spec.submodule_search_locations)[0], "ops", "delta_rule", "naive.py")
        mod_spec = importlib.util.spec_from_file_location("_fla_delta_naive", path)
        mod = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(mod)
        from importlib.metadata import version
        fla_version = version("fla-core")
    except Exception as err:  # noqa: BLE001 - optional comparison only
        return None, f"fla reference not available ({type(err).__name__}: {err})"
    return ((torch, mod.delta_rule_chunkwise),
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), fla-core {fla_version} "
            "ops/delta_rule/naive.py:delta_rule_chunkwise")


def fla_runner(fla, q, k, v, beta, C, threads=None):
    """A closure running fla's reference on our inputs; fla scales q by d^-1/2 itself.

    ``threads``: torch intra-op threads for the call (None: torch's default).
    """
    torch, fn = fla
    default_threads = torch.get_num_threads()
    d = q.shape[-1]
    tq = torch.from_numpy(np.ascontiguousarray(q * np.float32(d ** 0.5)))
    tk, tv, tb = (torch.from_numpy(np.ascontiguousarray(x)) for x in (k, v, beta))

    def run():
        torch.set_num_threads(threads or default_threads)
        try:
            with torch.no_grad():
                return fn(tq, tk, tv, tb, chunk_size=C)
        finally:
            torch.set_num_threads(default_threads)
    return run


def fla_best_of_threads(rate: dict) -> dict:
    """Merge the fla runs of one chunk size over thread settings (keep the fastest)."""
    out = {name: r for name, r in rate.items() if not str(name).startswith("fla")}
    for C in FLA_CHUNKS:
        runs = [r for name, r in rate.items() if str(name).startswith(f"fla{C}t")]
        if runs:
            out[f"fla{C}"] = max(runs)
    return out


def fla_installed() -> bool:
    """Whether torch and fla-core can be found (without importing them here)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "fla"))


def fla_child(job: dict) -> dict:
    """In the child process: fla's best time per configuration on the inputs of ``job``.

    ``job``: ``d``, ``T``, ``rounds``, ``clock`` (``"wall"``: torch threads 1 and torch's
    default, keys ``fla{C}t{threads}``; ``"cpu"``: process time with one torch thread, keys
    ``fla{C}``). The output is first checked against our recurrent form.
    """
    fla, note = load_fla()
    if fla is None:
        return {"error": note}
    q, k, v, beta = inputs(job["d"], job["T"])
    ref, W_ref = apply(DELTA, q, k, v, beta=beta, form="recurrent")
    runners = {}
    for C in FLA_CHUNKS:
        o, S = fla_runner(fla, q, k, v, beta, C)()
        err = max(np.abs(o.numpy() - ref).max() / np.abs(ref).max(),
                  np.abs(S.numpy().swapaxes(-1, -2) - W_ref).max() / np.abs(W_ref).max())
        if err >= 1e-4:
            return {"error": f"fla C={C} disagrees with our recurrent form: {err:.2e}"}
        if job["clock"] == "wall":
            for th in FLA_THREADS:
                runners[f"fla{C}t{th}"] = fla_runner(fla, q, k, v, beta, C, th)
        else:
            runners[f"fla{C}"] = fla_runner(fla, q, k, v, beta, C, 1)
    for fn in runners.values():
        fn()
    clock = time.perf_counter if job["clock"] == "wall" else time.process_time
    return {"times": interleaved_best(runners, job["rounds"], 2.0, clock), "note": note}


def fla_times(d: int, T: int, rounds: int, clock: str) -> dict:
    """Run :func:`fla_child` in a fresh process; name -> best seconds (or raise)."""
    job = json.dumps({"d": d, "T": T, "rounds": rounds, "clock": clock})
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--fla-child", job],
                          capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"fla child failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
    out = json.loads(lines[-1])
    if "error" in out:
        raise RuntimeError(out["error"])
    return out


def alternate(runners: dict, d: int, T: int, rounds: int, clock: str, with_fla: bool) -> dict:
    """Best times of our ``runners`` and (if ``with_fla``) of the fla child, in alternating rounds."""
    timer = time.perf_counter if clock == "wall" else time.process_time
    best: dict = {}
    for _ in range(rounds):
        for source in [interleaved_best(runners, 1, 2.0, timer)] + \
                ([fla_times(d, T, 1, clock)["times"]] if with_fla else []):
            for name, t in source.items():
                best[name] = min(best.get(name, np.inf), t)
    return best


def fractions(d: int, rate: dict, gemm: float) -> dict:
    frac = {"rec": rate["rec"] * state_flops(d) / gemm, "par": rate["par"] * state_flops(d) / gemm}
    for C in CHUNKS:
        frac[C] = rate[C] * chunk_flops(d, C) / gemm
    return frac


def format_row(d: int, T: int, rate: dict, gemm: float) -> str:
    frac = fractions(d, rate, gemm)
    best = max(rate[C] for C in CHUNKS)
    fla = [rate.get(f"fla{C}", np.nan) for C in FLA_CHUNKS]
    fla_best = np.nanmax(fla) if not np.all(np.isnan(fla)) else np.nan
    return (f"{d:>4} {T:>5} | {rate['rec']:>8.3g} {rate['par']:>8.3g} "
            + " ".join(f"{rate[C]:>11.3g}" for C in CHUNKS)
            + f" | {100 * frac['rec']:>8.1f} {100 * frac['par']:>4.1f} "
            + " ".join(f"{100 * frac[C]:>5.1f}" for C in CHUNKS)
            + f" | {best / rate['rec']:>8.2f} | "
            + " ".join(f"{x:>9.3g}" for x in fla)
            + f" {best / fla_best:>8.2f}")


def cpu_table(with_fla: bool, Ts, repeats: int) -> None:
    """Load-insensitive companion: CPU seconds of one thread (process time, one BLAS thread).

    On a shared machine wall times depend on the other processes; the CPU time of a single
    thread much less. Compares our chunkwise engine (all heads in one thread:
    ``PLASTINET_NUM_THREADS=1``), the recurrent form and fla (torch with one thread, in the
    child process) per CPU-second, and the chunkwise rate with a single-threaded GEMM.
    """
    cpu = time.process_time
    saved_threads = os.environ.get("PLASTINET_NUM_THREADS")
    os.environ["PLASTINET_NUM_THREADS"] = "1"           # heads in one thread, not two
    with single_threaded_blas():
        gemm_fn, gemm_flops = gemm_runner(1024)
        gemm_fn()
        gemm_t = interleaved_best({"gemm": gemm_fn}, 10, 2.0, cpu)["gemm"]
        gemm1 = gemm_flops / gemm_t
        print(f"\nsingle thread, CPU time (process_time; one BLAS / torch thread): GEMM 1024^3 "
              f"{gemm1 / 1e9:.1f} GFLOP/s")
        head = (f"{'d':>4} {'T':>5} | {'rec':>8} " + " ".join(f"{'chunk C=' + str(C):>11}" for C in CHUNKS)
                + " | %gemm1 " + " ".join(f" C={C:<3}" for C in CHUNKS) + " | best/rec | "
                + " ".join(f"{'fla C=' + str(C):>9}" for C in FLA_CHUNKS) + " ours/fla   (tokens per CPU-second)")
        print(head)
        print("-" * len(head))
        rows = []
        try:
            for d in DS:
                for T in Ts:
                    q, k, v, beta = inputs(d, T)
                    runners = {}
                    for C in CHUNKS:
                        runners[C] = (lambda C=C: apply(DELTA, q, k, v, beta=beta, form="chunkwise", chunk_size=C))
                    for fn in runners.values():
                        fn()
                    t_best = alternate(runners, d, T, repeats, "cpu", with_fla)
                    t_rec = interleaved_best({"rec": lambda: apply(DELTA, q, k, v, beta=beta)}, 1, 2.0, cpu)["rec"]
                    rate = {"rec": B * T / t_rec, **{C: B * T / t_best[C] for C in CHUNKS}}
                    fla_rate = {C: B * T / t_best[f"fla{C}"] for C in FLA_CHUNKS if f"fla{C}" in t_best}
                    best = max(rate[C] for C in CHUNKS)
                    fla_best = max(fla_rate.values()) if fla_rate else np.nan
                    rows.append((d, T, rate, fla_rate))
                    print(f"{d:>4} {T:>5} | {rate['rec']:>8.3g} " + " ".join(f"{rate[C]:>11.3g}" for C in CHUNKS)
                          + " | " + " ".join(f"{100 * rate[C] * chunk_flops(d, C) / gemm1:>5.1f}" for C in CHUNKS)
                          + f"       | {best / rate['rec']:>8.2f} | "
                          + " ".join(f"{fla_rate.get(C, np.nan):>9.3g}" for C in FLA_CHUNKS)
                          + f" {best / fla_best:>8.2f}", flush=True)
        finally:
            if saved_threads is None:
                del os.environ["PLASTINET_NUM_THREADS"]
            else:
                os.environ["PLASTINET_NUM_THREADS"] = saved_threads
        gemm_t = min(gemm_t, interleaved_best({"gemm": gemm_fn}, 10, 2.0, cpu)["gemm"])
    if gemm_flops / gemm_t > 1.02 * gemm1:
        gemm1 = gemm_flops / gemm_t
        print(f"\nsingle-thread GEMM 1024^3 measured again after the table: {gemm1 / 1e9:.1f} GFLOP/s "
              "(the targets below use this better rate)")
    print("\ntargets (CPU time):")
    for d, T, rate, fla_rate in rows:
        best = max(rate[C] for C in CHUNKS)
        notes = []
        if d == 64:
            notes.append(f"chunkwise/recurrent {best / rate['rec']:.2f} (>= 2.5: {'met' if best >= 2.5 * rate['rec'] else 'NOT met'})")
        if d == 128:
            f = max(rate[C] * chunk_flops(d, C) / gemm1 for C in CHUNKS)
            notes.append(f"GEMM1 fraction {100 * f:.1f}% (>= 40%: {'met' if f >= 0.4 else 'NOT met'})")
        if fla_rate:
            r = best / max(fla_rate.values())
            notes.append(f"ours/fla {r:.2f} (>= 1.5: {'met' if r >= 1.5 else 'NOT met'})")
        print(f"  d={d:<3} T={T:<5}: " + "; ".join(notes))


PINNING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def blas_env_note() -> str:
    pinned = [f"{name}={os.environ[name]}" for name in PINNING if name in os.environ]
    return "pinned by " + ", ".join(pinned) if pinned else "chosen by OpenBLAS from the CPU"


def run_native_blas() -> int:
    """Re-run this script without the kernel-pinning variables; returns its exit code.

    The re-run's header prints the kernels it then uses, to compare with those printed here.
    """
    env = {name: value for name, value in os.environ.items() if name not in PINNING}
    print(f"OpenBLAS kernels in this environment: {'/'.join(openblas_cores())} ({blas_env_note()}); "
          f"re-running with {' and '.join(PINNING)} unset", flush=True)
    return subprocess.run([sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env=env).returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="T <= 2048 only")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-cpu", action="store_true", help="skip the single-thread CPU-time table")
    ap.add_argument("--rules-only", action="store_true",
                    help="only the all-rules table (no forms table, fla or CPU-time table)")
    ap.add_argument("--keep-blas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as the environment sets them "
                         "(default: re-run without them, so that OpenBLAS picks its kernels from the CPU)")
    ap.add_argument("--fla-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if not args.keep_blas_env and not args.fla_child and any(name in os.environ for name in PINNING):
        raise SystemExit(run_native_blas())
    if args.fla_child:
        print(json.dumps(fla_child(json.loads(args.fla_child))))
        return
    Ts = tuple(t for t in TS if not args.quick or t <= 2048)
    with_fla = fla_installed() and not args.rules_only
    fla_note = fla_times(DS[0], 64, 1, "wall")["note"] + " (in a child process)" if with_fla else \
        "fla reference not available (torch or fla-core not installed)"
    print(f"plastinet fwp benchmark: forms of the delta rule, all chunkwise rules, B={B}, H={H}, float32; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (machine may be shared)")
    print(f"numpy {np.__version__}, OpenBLAS kernels {'/'.join(openblas_cores()) or 'none (another BLAS)'} "
          f"({blas_env_note()}); {fla_note}")
    print(f"compiled chunk loops: {native_status()} (PLASTINET_NATIVE=0: the numpy engines)")
    gemm_fn, gemm_flops = gemm_runner()
    gemm_fn()
    gemm_best = gemm_time(gemm_fn, GEMM_START)
    if args.rules_only:
        rules_table(Ts, args.repeats, gemm_fn, gemm_best, gemm_flops)
        if not args.no_cpu:
            cpu_rules_table(Ts, args.repeats)
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
        return
    print("useful FLOPs/token: chunkwise H(6d^2 + 4Cd + C^2/3); recurrent/parallel H*6d^2\n")
    head = (f"{'d':>4} {'T':>5} | {'rec':>8} {'par':>8} " + " ".join(f"{'chunk C=' + str(C):>11}" for C in CHUNKS)
            + " | %gemm rec  par " + " ".join(f" C={C:<3}" for C in CHUNKS)
            + " | best/rec | " + " ".join(f"{'fla C=' + str(C):>9}" for C in FLA_CHUNKS) + " ours/fla")
    print(head)
    print("-" * len(head))
    measured = []
    for d in DS:
        for T in Ts:
            q, k, v, beta = inputs(d, T)
            ref, W_ref = apply(DELTA, q, k, v, beta=beta, form="recurrent")
            scale = np.abs(ref).max()
            runners = {"rec": lambda: apply(DELTA, q, k, v, beta=beta, form="recurrent"),
                       "par": lambda: apply(DELTA, q, k, v, beta=beta, form="parallel")}
            for C in CHUNKS:
                runners[C] = (lambda C=C: apply(DELTA, q, k, v, beta=beta, form="chunkwise", chunk_size=C))
            for name in ["par", *CHUNKS]:
                y, W = runners[name]()
                err = max(np.abs(y - ref).max() / scale, np.abs(W - W_ref).max() / np.abs(W_ref).max())
                assert err < 1e-4, f"{name} disagrees with the recurrent form: {err:.2e}"
            best_t = alternate(runners, d, T, args.repeats, "wall", with_fla)
            gemm_best = min(gemm_best, gemm_time(gemm_fn, GEMM_PER_ROW))
            measured.append((d, T, best_t))
            tok = B * T
            rate = fla_best_of_threads({name: tok / t for name, t in best_t.items()})
            gemm = gemm_flops / gemm_best                  # best GEMM so far
            line = format_row(d, T, rate, gemm)
            print(line, flush=True)
    gemm = gemm_flops / gemm_best
    print(f"\nfloat32 GEMM (2048^3, numpy default threads, best of {GEMM_START + GEMM_PER_ROW * len(measured)} runs "
          f"at the start and after each row): {gemm / 1e9:.1f} GFLOP/s; final table with this rate:\n")
    print(head)
    print("-" * len(head))
    rows = []
    for d, T, best_t in measured:
        rate = fla_best_of_threads({name: B * T / t for name, t in best_t.items()})
        print(format_row(d, T, rate, gemm))
        rows.append((d, T, rate, fractions(d, rate, gemm),
                     {C: rate[f"fla{C}"] for C in FLA_CHUNKS if f"fla{C}" in rate}))
    print("\ntargets:")
    for d, T, rate, frac, fla_rate in rows:
        best = max(rate[C] for C in CHUNKS)
        cbest = max(CHUNKS, key=lambda C: rate[C])
        notes = []
        if d == 64:
            notes.append(f"chunkwise/recurrent {best / rate['rec']:.2f} (>= 2.5: {'met' if best >= 2.5 * rate['rec'] else 'NOT met'})")
        if d == 128:
            f = max(frac[C] for C in CHUNKS)
            notes.append("GEMM fraction " + ", ".join(f"C={C} {100 * frac[C]:.1f}%" for C in CHUNKS)
                         + f" (>= 40%: {'met' if f >= 0.4 else 'NOT met'})")
        if fla_rate:
            r = best / max(fla_rate.values())
            notes.append(f"ours/fla {r:.2f} (>= 1.5: {'met' if r >= 1.5 else 'NOT met'})")
        print(f"  d={d:<3} T={T:<5} best chunk C={cbest}: " + "; ".join(notes))
    rules_table(Ts, args.repeats, gemm_fn, gemm_best, gemm_flops)
    if not args.no_cpu:
        cpu_table(with_fla, Ts, args.repeats)
        cpu_rules_table(Ts, args.repeats)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
