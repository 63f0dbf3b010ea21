"""Bad input across the public API and model files: the intended error class, naming the parameter.

Each case is ``(id, call, error class, text the message must contain)``. The text is the
parameter (or key) name, so a message that does not say *what* was wrong fails.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from plastinet import errors as E
from plastinet import simulate
from plastinet.backends import get_backend
from plastinet.backends.numpy_backend import NumpyBackend
from plastinet.experiments import load_model, protocols
from plastinet.fwp import (
    DecayedHebbian,
    Delta,
    FastWeightLayer,
    FeatureMap,
    GatedDelta,
    Hebbian,
    Oja,
    State,
    ThreeFactor,
    apply,
    get_rule,
    vjp,
)
from plastinet.params import Parameter, Spec
from plastinet.spiking import (
    LIF,
    ConductanceLIF,
    Network,
    PoissonGroup,
    ProgrammedSignal,
    Projection,
    Simulator,
    SpikeGenerator,
    StateProbe,
    run,
)
from plastinet.spiking.rules import PairSTDP, TripletSTDP
from plastinet.sweep import parse_grid
from plastinet.units import parse_quantity, to_si

rng = np.random.default_rng(0)
Q = rng.normal(size=(1, 2, 5, 3))
K = Q / np.linalg.norm(Q, axis=-1, keepdims=True)
V = rng.normal(size=(1, 2, 5, 4))
B3 = np.full((1, 2, 5), 0.5)


def _nan(x):
    x = x.copy()
    x[0, 0, 2, 0] = np.nan
    return x


def _model(tmp_path, body: str):
    path = tmp_path / f"bad_{len(list(tmp_path.glob('bad_*.toml')))}.toml"
    path.write_text(textwrap.dedent(body))
    return lambda: load_model(path)


HEAD = 'schema_version = 1\nname = "m"\nkind = "rate_fwp"\ndescription = "d"\nsource = "s"\n'
RATE = HEAD + '[rule]\ntype = "delta"\n[experiment]\ntype = "kv_memory"\n'
SPIKE = HEAD.replace("rate_fwp", "spiking_protocol")


def _pop(**kw):
    return PoissonGroup(**{"name": "p", "n": 3, "rate": 5.0, **kw})


def _net_with(*objs):
    net = Network()
    for o in objs:
        net.add(o)
    return net


def _foreign_checkpoint(tmp_path):
    path = tmp_path / "foreign.npz"

    def call():
        run(_net_with(_pop(n=4)), 0.01, checkpoint_path=path)          # a checkpoint of a 4-neuron network
        run(_net_with(_pop(n=5)), 0.01, checkpoint_path=path)          # refused by a 5-neuron one
    return call


class _NoCheckpoints(NumpyBackend):
    """A spiking backend whose ``simulate`` has no checkpoint arguments."""

    name = "no-checkpoints"

    def simulate(self, network, duration, *, dt=1e-4, seed=None, progress=False):
        return super().simulate(network, duration, dt=dt, seed=seed, progress=progress)


def cases(tmp_path):
    pre, post = SpikeGenerator(name="a", n=2), SpikeGenerator(name="b", n=2)
    lif = LIF(name="lif", n=2)
    return [
        # --- fwp.apply: shapes, dtypes, finiteness, ranges, forms -------------------------
        ("apply-q-ndim", lambda: apply(Delta(), Q[0], K, V), E.ShapeError, "q"),
        ("apply-k-shape", lambda: apply(Delta(), Q, K[:, :, :4], V), E.ShapeError, "k"),
        ("apply-v-shape", lambda: apply(Delta(), Q, K, V[:, :1]), E.ShapeError, "v"),
        ("apply-k-dim", lambda: apply(Delta(), Q, K[..., :2], V), E.ShapeError, "k"),
        ("apply-int-dtype", lambda: apply(Delta(), Q.astype(int), K, V), E.DTypeError, "q"),
        ("apply-mixed-dtype", lambda: apply(Delta(), Q, K.astype(np.float32), V), E.DTypeError, "k"),
        ("apply-v-float16", lambda: apply(Delta(), Q, K, V.astype(np.float16)), E.DTypeError, "v"),
        ("apply-nan-q", lambda: apply(Delta(), _nan(Q), K, V), E.NonFiniteError, "q"),
        ("apply-inf-v", lambda: apply(Delta(), Q, K, _nan(V) * np.inf), E.NonFiniteError, "v"),
        ("apply-beta-range", lambda: apply(Delta(), Q, K, V, beta=B3 * 5), E.RangeError, "beta"),
        ("apply-beta-negative", lambda: apply(GatedDelta(decay=0.9), Q, K, V, beta=-B3), E.RangeError, "beta"),
        ("apply-beta-shape", lambda: apply(Delta(), Q, K, V, beta=B3[..., :3]), E.ShapeError, "beta"),
        ("apply-beta-nan", lambda: apply(Hebbian(), Q, K, V, beta=_nan(B3[..., None])[..., 0]), E.NonFiniteError, "beta"),
        ("apply-alpha-range", lambda: apply(DecayedHebbian(), Q, K, V, alpha=B3 * 3), E.RangeError, "alpha"),
        ("apply-alpha-missing", lambda: apply(GatedDelta(), Q, K, V), E.ValidationError, "alpha"),
        ("apply-alpha-not-used", lambda: apply(Delta(), Q, K, V, alpha=B3), E.UnsupportedError, "alpha"),
        ("apply-modulator-not-used", lambda: apply(Hebbian(), Q, K, V, modulator=B3), E.UnsupportedError, "modulator"),
        ("apply-form-unknown", lambda: apply(Delta(), Q, K, V, form="fast"), E.UnsupportedError, "form"),
        ("apply-form-unsupported", lambda: apply(Oja(), Q, K, V, form="chunkwise"), E.UnsupportedError, "form"),
        ("apply-gated-parallel", lambda: apply(GatedDelta(decay=0.9), Q, K, V, form="parallel"), E.UnsupportedError, "form"),
        ("apply-chunk-size", lambda: apply(Delta(), Q, K, V, form="chunkwise", chunk_size=0), E.RangeError, "chunk_size"),
        ("apply-state-shape", lambda: apply(Delta(), Q, K, V, initial_state=np.zeros((1, 2, 3, 3))), E.ShapeError, "initial_state"),
        ("apply-state-tuple", lambda: apply(Delta(), Q, K, V, initial_state=(np.zeros((1, 2, 4, 3)),)), E.ValidationError, "initial_state"),
        ("apply-eligibility-wrong-rule", lambda: apply(Delta(), Q, K, V, initial_state=State(np.zeros((1, 2, 4, 3)), None, np.zeros((1, 2, 4, 3)))), E.UnsupportedError, "eligibility"),
        ("apply-rule-name", lambda: apply("deltanet", Q, K, V), E.UnsupportedError, "rule"),
        ("apply-rule-type", lambda: apply(42, Q, K, V), E.ValidationError, "rule"),
        ("apply-overflow", lambda: apply(Hebbian(), Q * 1e200, K * 1e200, V * 1e200), E.NumericalError, "step"),
        # --- vjp ---------------------------------------------------------------------------
        ("vjp-dy-shape", lambda: vjp(Delta(), Q, K, V, V[..., :2]), E.ShapeError, "dy"),
        ("vjp-dy-nan", lambda: vjp(Delta(), Q, K, V, _nan(V)), E.NonFiniteError, "dy"),
        ("vjp-dW-shape", lambda: vjp(Delta(), Q, K, V, V, dW=np.zeros((1, 2, 3, 3))), E.ShapeError, "dW"),
        # --- rule and feature-map specs -----------------------------------------------------
        ("rule-unknown-param", lambda: Delta(learning_rate=1.0), E.ValidationError, "learning_rate"),
        ("rule-decay-range", lambda: DecayedHebbian(decay=1.5), E.RangeError, "decay"),
        ("rule-gamma-range", lambda: ThreeFactor(gamma=-0.1), E.RangeError, "gamma"),
        ("rule-feature-map-name", lambda: Delta(feature_map="tanh"), E.ValidationError, "feature_map"),
        ("rule-normalize-choice", lambda: Hebbian(normalize="yes"), E.UnsupportedError, "normalize"),
        ("rule-registry", lambda: get_rule("stdp"), E.UnsupportedError, "rule"),
        ("featuremap-kind", lambda: FeatureMap("sigmoid"), E.UnsupportedError, "kind"),
        ("featuremap-nu", lambda: FeatureMap("dpfp", nu=0), E.RangeError, "nu"),
        ("featuremap-sum-identity", lambda: FeatureMap("identity", normalize="sum"), E.UnsupportedError, "normalize"),
        ("featuremap-eps", lambda: FeatureMap("relu", eps=-1.0), E.RangeError, "eps"),
        # --- FastWeightLayer ----------------------------------------------------------------
        ("layer-d_in", lambda: FastWeightLayer(0), E.RangeError, "d_in"),
        ("layer-heads", lambda: FastWeightLayer(4, heads=0), E.RangeError, "heads"),
        ("layer-programmer", lambda: FastWeightLayer(4, programmer="lstm"), E.UnsupportedError, "programmer"),
        ("layer-rule", lambda: FastWeightLayer(4, rule=3.0), E.ValidationError, "rule"),
        ("layer-x-shape", lambda: FastWeightLayer(4).forward(np.zeros((2, 5))), E.ShapeError, "x"),
        ("layer-x-nan", lambda: FastWeightLayer(4).forward(np.full((1, 3, 4), np.nan)), E.NonFiniteError, "x"),
        # --- units --------------------------------------------------------------------------
        ("units-wrong-dimension", lambda: to_si("20 mV", "s", name="tau"), E.UnitError, "tau"),
        ("units-unknown", lambda: parse_quantity("3 parsec"), E.UnitError, "parsec"),
        ("units-garbage", lambda: to_si("fast", "s", name="tau"), E.UnitError, "tau"),
        # --- spiking spec and engine --------------------------------------------------------
        ("poisson-negative-rate", lambda: _pop(rate=-1.0), E.RangeError, "rate"),
        ("poisson-rate-shape", lambda: _pop(rate=[1.0, 2.0]), E.ShapeError, "rate"),
        ("poisson-n", lambda: _pop(n=0), E.RangeError, "n"),
        ("population-name", lambda: _pop(name="my pop"), E.ValidationError, "name"),
        ("generator-index-range", lambda: SpikeGenerator(name="g", n=2, indices=[0, 5], times=[0.1, 0.2]), E.RangeError, "indices"),
        ("generator-times-length", lambda: SpikeGenerator(name="g", n=2, indices=[0, 1], times=[0.1]), E.ShapeError, "times"),
        ("generator-negative-time", lambda: SpikeGenerator(name="g", n=1, indices=[0], times=[-0.1]), E.RangeError, "times"),
        ("lif-negative-tau", lambda: LIF(name="l", n=1, tau_m=-0.01), E.RangeError, "tau_m"),
        ("lif-tau-units", lambda: LIF(name="l", n=1, tau_m="10 mV"), E.UnitError, "tau_m"),
        ("clif-negative-tau", lambda: ConductanceLIF(name="c", n=1, tau_e="-5 ms"), E.RangeError, "tau_e"),
        ("stdp-negative-tau", lambda: PairSTDP(tau_plus=-0.02), E.RangeError, "tau_plus"),
        ("stdp-pairing", lambda: PairSTDP(pairing="some"), E.UnsupportedError, "pairing"),
        ("triplet-amplitude", lambda: TripletSTDP(A3_plus=-1.0), E.RangeError, "A3_plus"),
        ("projection-weight-shape", lambda: Projection(name="s", pre=pre, post=post, target="none", weight=np.zeros((3, 3))), E.ValidationError, "weight"),
        ("projection-weight-bounds", lambda: Projection(name="s", pre=pre, post=post, target="none", weight=2.0, w_max=1.0), E.ValidationError, "weight"),
        ("projection-target", lambda: _net_with(pre, lif, Projection(name="s", pre=pre, post=lif, target="nope")).validate(), E.ValidationError, "target"),
        ("signal-interval", lambda: ProgrammedSignal(name="m", values=[1.0], interval=0.0), E.RangeError, "interval"),
        ("probe-sample-every", lambda: StateProbe(name="p", population="lif", variable="v", sample_every=-1.0), E.RangeError, "sample_every"),
        ("engine-dt-too-coarse", lambda: run(_net_with(LIF(name="l", n=1, tau_m=1e-4)), 0.01, dt=1e-3), E.ValidationError, "tau"),
        ("engine-rate-dt", lambda: run(_net_with(_pop(rate=2e4)), 0.01, dt=1e-4), E.ValidationError, "rate"),
        ("engine-negative-duration", lambda: run(_net_with(_pop()), -1.0), E.RangeError, "duration"),
        ("engine-dt", lambda: run(_net_with(_pop()), 0.1, dt=0.0), E.RangeError, "dt"),
        # --- numerical policy, durable runs ---------------------------------------------------
        ("policy-simulator", lambda: Simulator(_net_with(_pop()), on_numerical="ignore"), E.UnsupportedError, "on_numerical"),
        ("policy-apply", lambda: apply(Delta(), Q, K, V, on_numerical="quiet"), E.UnsupportedError, "on_numerical"),
        ("policy-simulate", lambda: simulate(_net_with(_pop()), 0.01, on_numerical=1), E.UnsupportedError, "on_numerical"),
        ("engine-max-rate", lambda: run(_net_with(_pop()), 0.01, max_rate="-3 Hz"), E.RangeError, "max_rate"),
        ("engine-max-rate-unit", lambda: run(_net_with(_pop()), 0.01, max_rate="3 ms"), E.UnitError, "max_rate"),
        ("engine-chunk-steps", lambda: run(_net_with(_pop()), 0.01, chunk_steps=2.5), E.RangeError, "chunk_steps"),
        ("checkpoint-needs-path", lambda: run(_net_with(_pop()), 0.01, checkpoint_every=0.005), E.ValidationError, "checkpoint_path"),
        ("checkpoint-every-range", lambda: run(_net_with(_pop()), 0.01, checkpoint_every=0.0, checkpoint_path=tmp_path / "c.npz"), E.RangeError, "checkpoint_every"),
        ("checkpoint-every-unit", lambda: run(_net_with(_pop()), 0.01, checkpoint_every="2 mV", checkpoint_path=tmp_path / "c.npz"), E.UnitError, "checkpoint_every"),
        ("partial-path-suffix", lambda: run(_net_with(_pop()), 0.01, partial_path=tmp_path / "p.csv"), E.ValidationError, "partial_path"),
        ("run-options-key", lambda: protocols.song2000(n_inputs=2, duration=0.01, run_options={"checkpoint": tmp_path}), E.UnsupportedError, "checkpoint"),
        ("checkpoint-foreign-network", _foreign_checkpoint(tmp_path), E.CheckpointError, "network"),
        ("checkpoint-garbage", lambda: (tmp_path.joinpath("g.npz").write_bytes(b"xx"), run(_net_with(_pop()), 0.01, checkpoint_path=tmp_path / "g.npz")), E.CheckpointError, "file"),
        ("simulate-checkpoint-backend", lambda: simulate(_net_with(_pop()), 0.01, backend=_NoCheckpoints(), checkpoint_path=tmp_path / "c.npz"), E.UnsupportedError, "checkpoint_path"),
        # --- backends, sweeps, generic specs ------------------------------------------------
        ("backend-name", lambda: get_backend("nengo_loihi"), E.UnsupportedError, "backend"),
        ("backend-target", lambda: get_backend("brian2", target="gpu"), E.UnsupportedError, "target"),
        ("sweep-grid", lambda: parse_grid(["experiment.beta"]), E.ValidationError, "--grid"),
        ("spec-positional", lambda: type("S", (Spec,), {"a": Parameter(1.0)})(1.0, 2.0), E.ValidationError, "arguments"),
        # --- model files --------------------------------------------------------------------
        ("model-syntax", _model(tmp_path, RATE + "d_key = = 3\n"), E.ModelFileError, "line"),
        ("model-unknown-rule", _model(tmp_path, RATE.replace('"delta"', '"delta_v2"')), E.ModelFileError, "rule.type"),
        ("model-empty-source", _model(tmp_path, RATE.replace('source = "s"', 'source = " "')), E.ModelFileError, "source"),
        ("model-bare-time", _model(tmp_path, SPIKE + '[protocol]\ntype = "song2000"\nduration = 100\n'), E.ModelFileError, "protocol.duration"),
        ("model-missing-table", _model(tmp_path, HEAD + '[rule]\ntype = "delta"\n'), E.ModelFileError, "experiment"),
        ("model-wrong-unit", _model(tmp_path, SPIKE + '[protocol]\ntype = "song2000"\nduration = "100 mV"\n'), E.ModelFileError, "protocol.duration"),
        ("model-out-of-range", _model(tmp_path, SPIKE + '[protocol]\ntype = "song2000"\nrate = "-15 Hz"\n'), E.ModelFileError, "protocol.rate"),
        ("model-unknown-protocol-arg", _model(tmp_path, SPIKE + '[protocol]\ntype = "song2000"\nspeed = 3\n'), E.ModelFileError, "protocol.speed"),
        ("model-unknown-protocol", _model(tmp_path, SPIKE + '[protocol]\ntype = "bcm"\n'), E.ModelFileError, "protocol.type"),
        ("model-spike-rule-param", _model(tmp_path, SPIKE + '[protocol]\ntype = "pairing_window"\ndelta_t = ["10 ms"]\n[rule]\ntype = "pair_stdp"\ntau_plus = "-3 ms"\n'), E.ModelFileError, "rule.tau_plus"),
        ("model-list-item", _model(tmp_path, SPIKE + '[protocol]\ntype = "pairing_window"\ndelta_t = ["10 ms", "x"]\n[rule]\ntype = "pair_stdp"\n'), E.ModelFileError, "protocol.delta_t[1]"),
        ("model-kind", _model(tmp_path, HEAD.replace("rate_fwp", "nest_model")), E.ModelFileError, "kind"),
        ("model-schema", _model(tmp_path, RATE.replace("schema_version = 1", "schema_version = 2")), E.ModelFileError, "schema_version"),
        ("model-training-lr", _model(tmp_path, HEAD.replace("rate_fwp", "training") + '[task]\ntype = "assoc_retrieval"\nn_keys = 8\n[layer]\nrule = "delta"\n[training]\nlr = -1.0\n'), E.ModelFileError, "training.lr"),
        ("model-training-task", _model(tmp_path, HEAD.replace("rate_fwp", "training") + '[task]\ntype = "copy"\n[layer]\nrule = "delta"\n'), E.ModelFileError, "task.type"),
        ("model-quick-table", _model(tmp_path, "quick = 3\n" + RATE), E.ModelFileError, "quick"),
    ]


def _ids() -> list[str]:
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return [c[0] for c in cases(pathlib.Path(tmp))]


@pytest.mark.parametrize("case_id", _ids())
def test_bad_input_gets_the_intended_error_naming_the_parameter(tmp_path, case_id):
    table = {c[0]: c for c in cases(tmp_path)}
    _, call, error, text = table[case_id]
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value), f"{case_id}: {info.value!s} does not name {text!r}"


def test_the_suite_has_at_least_60_distinct_cases():
    ids = _ids()
    assert len(ids) == len(set(ids)) >= 60
