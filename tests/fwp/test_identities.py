"""Issue 2, acceptance point 2: exact identities of the rules (notation of docs/fwp.md).

Every identity is checked in float64 to 1e-10 and, where a rule has several forms, in every
form. Reads use the convention ``y_t = W_t phi(q_t)`` (step ``t``'s write included); a
read *after* a sequence is a further call with ``beta = 0`` (nothing written).
"""

from __future__ import annotations

import numpy as np
import pytest
from fwp_helpers import ALL_RULES, L2, budget, make_case, max_abs, unit_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, Oja, State, ThreeFactor, apply

TOL = 1e-10
pytestmark = pytest.mark.filterwarnings("error::plastinet.errors.UnstableUpdateWarning")


def forms_of(*rules):
    """``pytest.param(rule, form)`` for every form of every rule, with readable ids."""
    return [pytest.param(rule, form, id=f"{rule!r}-{form}") for rule in rules for form in rule.forms]


def read(rule, W, queries, form="recurrent"):
    """``W phi(q)`` for each query, through ``apply`` with ``beta = 0`` (no write)."""
    B, H, T, _ = queries.shape
    d_v = W.shape[2]
    y, W_after = apply(rule, queries, queries, np.zeros((B, H, T, d_v)), beta=np.zeros((B, H, T)),
                       initial_state=W, form=form, **({"alpha": np.ones((B, H, T))}
                                                      if rule.uses_alpha else {}))
    assert max_abs(W_after, W) == 0.0          # beta = 0 writes nothing
    return y


def orthonormal_keys(rng, d, n_heads=1):
    """``(1, n_heads, d, d)``: for each head, the rows are an orthonormal basis of R^d."""
    Q = np.stack([np.linalg.qr(rng.normal(size=(d, d)))[0].T for _ in range(n_heads)])
    return Q[None]


# -- delta step == SGD step ----------------------------------------------------------------

def loss(W, k, v):
    r = v - W @ k
    return 0.5 * float(r @ r)


def numerical_gradient(W, k, v, h=0.5):
    """Central differences: exact (up to rounding) for the quadratic loss."""
    G = np.zeros_like(W)
    for idx in np.ndindex(*W.shape):
        E = np.zeros_like(W)
        E[idx] = h
        G[idx] = (loss(W + E, k, v) - loss(W - E, k, v)) / (2 * h)
    return G


@pytest.mark.parametrize("rule,form", forms_of(Delta()))
def test_delta_step_is_an_sgd_step(rule, form):
    rng = np.random.default_rng(0)
    T, d_k, d_v = 6, 4, 3
    k = 0.6 * rng.normal(size=(1, 1, T, d_k))                    # not unit keys on purpose
    v = rng.normal(size=(1, 1, T, d_v))
    beta = rng.uniform(0, 2, size=(1, 1, T)) / np.maximum(1.0, (k[..., :] ** 2).sum(-1))
    W = rng.normal(size=(1, 1, d_v, d_k))
    for t in range(T):                                           # one step per call, chained
        sl = (slice(None), slice(None), slice(t, t + 1))
        _, W_next = apply(rule, k[sl], k[sl], v[sl], beta=beta[sl], initial_state=W, form=form)
        G = numerical_gradient(W[0, 0], k[0, 0, t], v[0, 0, t])
        expected = W[0, 0] - beta[0, 0, t] * G
        assert max_abs(W_next[0, 0], expected) <= TOL
        assert loss(W_next[0, 0], k[0, 0, t], v[0, 0, t]) <= loss(W[0, 0], k[0, 0, t], v[0, 0, t])
        W = W_next


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0, 1.7, 2.0])
def test_delta_transition_eigenvalues(beta):
    """With W_0 = I and v = 0 one step gives W_1 = I - beta k k^T: eigenvalues {1, 1 - beta}."""
    rng = np.random.default_rng(1)
    d = 5
    k = unit_rows(rng.normal(size=(1, 1, 1, d)))
    for form in Delta.forms:
        _, W = apply(Delta(), k, k, np.zeros((1, 1, 1, d)), beta=np.full((1, 1, 1), beta),
                     initial_state=np.eye(d)[None, None], form=form)
        assert max_abs(W[0, 0], W[0, 0].T) <= TOL
        eig = np.sort(np.linalg.eigvalsh(W[0, 0]))
        expected = np.sort([1.0 - beta] + [1.0] * (d - 1))
        assert max_abs(eig, expected) <= TOL
        assert max_abs(W[0, 0] @ k[0, 0, 0], (1 - beta) * k[0, 0, 0]) <= TOL   # k: eigenvector


# -- capacity and recall -------------------------------------------------------------------

@pytest.mark.parametrize("rule,form", forms_of(Hebbian()))
def test_additive_rule_recalls_d_k_orthonormal_items_exactly(rule, form):
    rng = np.random.default_rng(2)
    d_k, d_v, H = 8, 5, 2
    k = orthonormal_keys(rng, d_k, H)                            # d_k items per head
    v = rng.normal(size=(1, H, d_k, d_v))
    _, W = apply(rule, k, k, v, form=form, chunk_size=3)
    recalled = read(rule, W, k, form)
    assert max_abs(recalled, v) <= TOL
    # and with one item more than d_k the recall is no longer exact
    k_more = np.concatenate([k, unit_rows(rng.normal(size=(1, H, 1, d_k)))], axis=2)
    v_more = np.concatenate([v, rng.normal(size=(1, H, 1, d_v))], axis=2)
    _, W = apply(rule, k_more, k_more, v_more, form=form)
    assert max_abs(read(rule, W, k, form), v) > 1e-3


@pytest.mark.parametrize("rule,form", forms_of(Delta(), Delta(feature_map=L2), GatedDelta()))
def test_delta_beta_one_recalls_latest_value_beyond_capacity(rule, form):
    """beta = 1, unit keys: y_t = W_t k_t = v_t for every t, also for T = 5 d_k writes."""
    rng = np.random.default_rng(3)
    d_k, d_v, T = 4, 3, 20
    k = unit_rows(rng.normal(size=(2, 2, T, d_k)))
    v = rng.normal(size=(2, 2, T, d_v))
    kw = {"alpha": rng.uniform(0, 1, size=(2, 2, T))} if rule.uses_alpha else {}
    y, W = apply(rule, k, k, v, beta=np.ones((2, 2, T)), initial_state=rng.normal(size=(2, 2, d_v, d_k)),
                 form=form, chunk_size=6, **kw)
    assert max_abs(y, v) <= TOL
    assert max_abs(read(rule, W, k[:, :, -1:], form), v[:, :, -1:]) <= TOL


@settings(max_examples=budget(30), deadline=None)
@given(gated=st.booleans(), T=st.integers(1, 80), d_k=st.integers(1, 8), d_v=st.integers(1, 4),
       chunk=st.integers(1, 20), seed=st.integers(0, 2**31))
def test_delta_beta_one_recall_property(gated, T, d_k, d_v, chunk, seed):
    rng = np.random.default_rng(seed)
    rule = GatedDelta() if gated else Delta()
    k = unit_rows(rng.normal(size=(1, 2, T, d_k)))
    v = rng.normal(size=(1, 2, T, d_v))
    kw = {"alpha": rng.choice([0.0, 0.5, 1.0], size=(1, 2, T))} if gated else {}
    for form in rule.forms:
        y, _ = apply(rule, k, k, v, beta=np.ones((1, 2, T)), initial_state=rng.normal(size=(1, 2, d_v, d_k)),
                     form=form, chunk_size=chunk, **kw)
        assert max_abs(y, v) <= TOL


@pytest.mark.parametrize("rule,form", forms_of(Hebbian(), Delta()))
def test_rewriting_a_key(rule, form):
    """Write (k, v1), unrelated orthogonal items, then (k, v2): additive -> v1 + v2; delta -> v2."""
    rng = np.random.default_rng(4)
    d_k, d_v = 6, 3
    basis = orthonormal_keys(rng, d_k)[0, 0]
    k = np.stack([basis[0], basis[1], basis[2], basis[0]])[None, None]
    v = rng.normal(size=(1, 1, 4, d_v))
    _, W = apply(rule, k, k, v, form=form, chunk_size=2)
    got = read(rule, W, k[:, :, :1], form)[0, 0, 0]
    expected = v[0, 0, 0] + v[0, 0, 3] if isinstance(rule, Hebbian) else v[0, 0, 3]
    assert max_abs(got, expected) <= TOL
    # the other items are untouched
    assert max_abs(read(rule, W, k[:, :, 1:3], form), v[:, :, 1:3]) <= TOL


@pytest.mark.parametrize("rule,form", forms_of(DecayedHebbian(), DecayedHebbian(feature_map="elu+1"),
                                               GatedDelta(feature_map=L2)))
def test_zero_gate_erases_the_past(rule, form):
    """alpha_s = 0: outputs from step s on do not depend on anything before s (nor on W_0)."""
    rng = np.random.default_rng(5)
    B, H, T, d, s = 1, 2, 30, 4, 13
    (q, k, v), kw = make_case(rule, B, H, T, d, 3, np.float64, seed=6)
    kw["alpha"][..., s] = 0.0
    y1, W1 = apply(rule, q, k, v, form=form, chunk_size=8, **kw)
    q2, k2, v2 = (x.copy() for x in (q, k, v))
    for x in (q2, k2, v2):
        x[:, :, :s] = rng.normal(size=x[:, :, :s].shape)
    kw2 = dict(kw, initial_state=rng.normal(size=kw["initial_state"].shape),
               beta=kw["beta"].copy(), alpha=kw["alpha"].copy())
    kw2["beta"][..., :s] = rng.uniform(0, 1, size=(B, H, s))
    kw2["alpha"][..., :s] = rng.uniform(0, 1, size=(B, H, s))
    y2, W2 = apply(rule, q2, k2, v2, form=form, chunk_size=8, **kw2)
    assert max_abs(y1[:, :, s:], y2[:, :, s:]) <= TOL and max_abs(W1, W2) <= TOL
    assert max_abs(y1[:, :, :s], y2[:, :, :s]) > 1e-3          # the prefix did differ


@pytest.mark.parametrize("form", DecayedHebbian.forms)
def test_per_key_zero_gate_erases_one_column(form):
    rng = np.random.default_rng(7)
    d, T = 4, 10
    k = rng.normal(size=(1, 1, T, d))
    v = rng.normal(size=(1, 1, T, 2))
    alpha = rng.uniform(0.5, 1, size=(1, 1, T, d))
    alpha[..., -1, 2] = 0.0
    W0 = rng.normal(size=(1, 1, 2, d))
    _, W = apply(DecayedHebbian(), k, k, v, alpha=alpha, initial_state=W0, form=form, chunk_size=4)
    # column 2 only holds the last write; the other columns remember the past
    assert max_abs(W[0, 0, :, 2], v[0, 0, -1] * k[0, 0, -1, 2]) <= TOL
    assert max_abs(W[0, 0, :, 1], v[0, 0, -1] * k[0, 0, -1, 1]) > 1e-3


@pytest.mark.parametrize("form", ["recurrent", "chunkwise", "parallel"])
def test_parity_by_programmed_beta(form):
    """Fixed unit key, beta_t = 2 bit_t, v = 0: W_t k = (-1)^{parity of bits <= t} W_0 k."""
    T = 10_000 if form != "parallel" else 2_000        # the parallel form is O(T^2) in memory
    rng = np.random.default_rng(8)
    bits = rng.integers(0, 2, size=T)
    key = unit_rows(rng.normal(size=5))
    k = np.broadcast_to(key, (1, 1, T, 5)).copy()
    W0 = key[None, None, None, :].copy()                      # W_0 k = 1, d_v = 1
    y, W = apply(Delta(), k, k, np.zeros((1, 1, T, 1)), beta=2.0 * bits[None, None].astype(float),
                 initial_state=W0, form=form, chunk_size=64)
    expected = (-1.0) ** np.cumsum(bits)
    assert max_abs(y[0, 0, :, 0], expected) <= TOL
    assert np.array_equal(np.sign(y[0, 0, :, 0]), expected)


# -- relations between rules ---------------------------------------------------------------

@pytest.mark.parametrize("form", Hebbian.forms)
def test_three_factor_with_gamma_zero_is_hebbian(form):
    rng = np.random.default_rng(9)
    (q, k, v), kw = make_case(Hebbian(), 2, 2, 25, 3, 4, np.float64, seed=10)
    y_h, W_h = apply(Hebbian(feature_map="elu+1"), q, k, v, form=form, chunk_size=7, **kw)
    y_3, s_3 = apply(ThreeFactor(gamma=0.0, feature_map="elu+1"), q, k, v, modulator=kw["beta"],
                     initial_state=kw["initial_state"], return_state=True)
    assert max_abs(y_3, y_h) <= TOL and max_abs(s_3.W, W_h) <= TOL
    # beta of ThreeFactor scales the coincidence: m * beta acts as Hebbian's beta
    m = rng.uniform(-1, 1, size=kw["beta"].shape)
    y_3b, _ = apply(ThreeFactor(gamma=0.0, feature_map="elu+1"), q, k, v, beta=kw["beta"] / 2,
                    modulator=2 * m, initial_state=kw["initial_state"])
    y_hb, _ = apply(Hebbian(feature_map="elu+1"), q, k, v, beta=kw["beta"] * m,
                    initial_state=kw["initial_state"], form=form)
    assert max_abs(y_3b, y_hb) <= TOL


def test_three_factor_matches_its_definition():
    """E_t = gamma E_{t-1} + beta_t v_t k_t^T, W_t = W_{t-1} + m_t E_t (explicit loop)."""
    rule = ThreeFactor(gamma=0.8, feature_map="relu")
    (q, k, v), kw = make_case(rule, 1, 2, 15, 3, 2, np.float64, seed=11)
    y, s = apply(rule, q, k, v, return_state=True, **kw)
    W, E = (x.copy() for x in (kw["initial_state"].W, kw["initial_state"].eligibility))
    qf, kf = rule.phi(q), rule.phi(k)
    for t in range(15):
        E = 0.8 * E + kw["beta"][..., t, None, None] * v[:, :, t, :, None] * kf[:, :, t, None, :]
        W = W + kw["modulator"][..., t, None, None] * E
        assert max_abs(y[:, :, t], np.einsum("bhij,bhj->bhi", W, qf[:, :, t])) <= TOL
    assert max_abs(s.W, W) <= TOL and max_abs(s.eligibility, E) <= TOL


def test_oja_matches_its_definition_and_finds_the_principal_subspace():
    rng = np.random.default_rng(12)
    T, d, p = 4000, 5, 2
    C = np.diag([5.0, 3.0, 0.05, 0.02, 0.01])
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    x = rng.normal(size=(1, 1, T, d)) @ np.sqrt(C) @ basis.T
    W0 = 0.1 * rng.normal(size=(1, 1, p, d))
    beta = np.full((1, 1, T), 0.005)
    y, W = apply(Oja(), x, x, np.zeros((1, 1, T, p)), beta=beta, initial_state=W0)
    Wr = W0[0, 0].copy()
    for t in range(50):                                      # the definition, step by step
        u = Wr @ x[0, 0, t]
        Wr = Wr + 0.005 * (np.outer(u, x[0, 0, t]) - np.outer(u, u) @ Wr)
        assert max_abs(y[0, 0, t], Wr @ x[0, 0, t]) <= TOL
    Wf = W[0, 0]
    assert max_abs(Wf @ Wf.T, np.eye(p)) < 0.05               # orthonormal rows
    top = basis[:, :2]
    assert np.linalg.norm(Wf.T - top @ (top.T @ Wf.T)) < 0.05  # spans the top-2 subspace


@pytest.mark.parametrize("form", Hebbian.forms)
def test_normalized_hebbian_is_normalized_linear_attention(form):
    """y_t = (W_0 phi(q_t) + sum_{tau<=t} beta_tau v_tau <phi k_tau, phi q_t>)
              / (z_0 . phi(q_t) + sum_{tau<=t} <phi k_tau, phi q_t> + eps)."""
    rule = Hebbian(feature_map="elu+1", normalize=True, eps=1e-3)
    (q, k, v), kw = make_case(rule, 2, 2, 37, 4, 3, np.float64, seed=13)
    y, s = apply(rule, q, k, v, form=form, chunk_size=5, return_state=True, **kw)
    W0, z0, _ = kw["initial_state"]
    qf, kf = rule.phi(q), rule.phi(k)
    A = np.tril(np.einsum("bhtd,bhsd->bhts", qf, kf))
    num = (A * kw["beta"][:, :, None, :]) @ v + np.einsum("bhij,bhtj->bhti", W0, qf)
    den = A.sum(-1, keepdims=True) + np.einsum("bhj,bhtj->bht", z0, qf)[..., None] + 1e-3
    assert max_abs(y, num / den) <= TOL
    assert max_abs(s.normalizer, z0 + kf.sum(axis=2)) <= TOL


@pytest.mark.parametrize("form", Delta.forms)
def test_gated_delta_with_unit_gate_is_delta(form):
    (q, k, v), kw = make_case(Delta(feature_map=L2), 1, 2, 33, 4, 3, np.float64, seed=14)
    y_d, W_d = apply(Delta(feature_map=L2), q, k, v, form=form, chunk_size=8, **kw)
    y_g, W_g = apply(GatedDelta(feature_map=L2), q, k, v, alpha=np.ones((1, 2, 33)),
                     form="chunkwise" if form == "parallel" else form, chunk_size=8, **kw)
    assert max_abs(y_d, y_g) <= TOL and max_abs(W_d, W_g) <= TOL


@pytest.mark.parametrize("form", DecayedHebbian.forms)
def test_decayed_hebbian_with_unit_gate_is_hebbian(form):
    (q, k, v), kw = make_case(Hebbian(), 1, 2, 33, 4, 3, np.float64, seed=15)
    y_h, W_h = apply(Hebbian(), q, k, v, form=form, chunk_size=8, **kw)
    y_d, W_d = apply(DecayedHebbian(decay=1.0), q, k, v, form=form, chunk_size=8, **kw)
    assert max_abs(y_h, y_d) <= TOL and max_abs(W_h, W_d) <= TOL


def test_constant_decay_parameter_equals_explicit_alpha():
    (q, k, v), kw = make_case(DecayedHebbian(), 1, 1, 20, 3, 2, np.float64, seed=16)
    kw.pop("alpha")
    y1, _ = apply(DecayedHebbian(decay=0.9), q, k, v, **kw)
    y2, _ = apply(DecayedHebbian(), q, k, v, alpha=np.full((1, 1, 20), 0.9), **kw)
    assert max_abs(y1, y2) == 0.0


def test_readout_includes_the_current_write():
    """y_0 is read from the weights *after* the step-0 write (W_0 = 0 before it)."""
    k = np.array([[[[1.0, 0.0]]]])
    v = np.array([[[[3.0]]]])
    for rule in (Hebbian(), DecayedHebbian(decay=0.5), Delta(), GatedDelta(decay=0.5), Oja(),
                 ThreeFactor()):
        y, W = apply(rule, k, k, v)
        expected = 0.0 if isinstance(rule, Oja) else 3.0   # Oja ignores v; W_0 = 0 stays 0
        assert y[0, 0, 0, 0] == expected
        assert W[0, 0, 0, 0] == expected


# -- State round trip ------------------------------------------------------------------------

ROUND_TRIP = [(name, form) for name, make in ALL_RULES.items() for form in make().forms]


@pytest.mark.parametrize("name,form", ROUND_TRIP)
@settings(max_examples=budget(8), deadline=None)
@given(T=st.integers(2, 60), split=st.floats(0, 1), chunk=st.integers(1, 16),
       seed=st.integers(0, 2**31))
def test_state_round_trip(name, form, T, split, chunk, seed):
    """Two calls chained through the returned State equal one call (y and the full state)."""
    rule = ALL_RULES[name]()
    (q, k, v), kw = make_case(rule, 2, 2, T, 3, 2, np.float64, seed)
    if isinstance(rule, Oja):
        kw["beta"] = 0.1 * np.abs(kw["beta"])           # anti-Oja (beta < 0) diverges
    s = min(T - 1, max(1, int(split * T)))
    y, full = apply(rule, q, k, v, form=form, chunk_size=chunk, return_state=True, **kw)

    def part(sl, state):
        gates = {key: val[:, :, sl] for key, val in kw.items() if key != "initial_state"}
        return apply(rule, q[:, :, sl], k[:, :, sl], v[:, :, sl], initial_state=state, form=form,
                     chunk_size=chunk, return_state=True, **gates)

    y1, mid = part(slice(0, s), kw["initial_state"])
    assert isinstance(mid, State)
    y2, end = part(slice(s, T), mid)
    assert max_abs(np.concatenate([y1, y2], axis=2), y) <= TOL
    for a, b in zip(end, full):
        assert (a is None) == (b is None)
        if a is not None:
            assert max_abs(a, b) <= TOL
    # a plain W0 (no auxiliary state) is accepted too, and equals State(W0)
    if not isinstance(kw["initial_state"], State):
        y3, _ = apply(rule, q, k, v, form=form, chunk_size=chunk,
                      **{**kw, "initial_state": State(kw["initial_state"])})
        assert max_abs(y3, y) == 0.0
