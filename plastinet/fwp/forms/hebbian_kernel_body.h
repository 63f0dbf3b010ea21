/* Hebbian rules (linear attention, scalar or per-key decay) for one precision: REAL and
 * FN(name) are defined by the includer (delta_kernel.c).
 *
 * For each head and chunk of C steps with entering state S^T (d_k x d_v, row-major), gates
 * a_t (da = 0: none, 1: scalar, d_k: per key), inclusive products g_t = prod_{s<=t} a_s and
 * exclusive products to the chunk end e_t = prod_{s>t} a_s (double; per-key gates where no
 * unit decays below RATIO_MIN in the loop's precision, see FN(key_gates); products of factors
 * <= 1: no overflow, exact zeros), V' = diag(beta) V:
 *   Y = (Q * g) S^T + A V',   S^T <- g_C * S^T + (K * e)^T V',
 * with A[t][tau] = sum_j Q_tj K_tauj prod_{s=tau+1..t} a_sj (tau <= t, else 0). With gates
 * A is one product (Q * g)(K / g)^T where no unit decays below RATIO_MIN (see
 * delta_kernel.c) over the chunk; else, for scalar gates, Q K^T times running products of
 * the gates, and for per-key gates it is formed in row blocks of HB steps: the diagonal
 * blocks from running products
 * of the gates, the earlier columns as one product (Q * r_q)(K * r_k)^T with both factors
 * referred to the step before the block (both <= 1). peak (if not NULL) tracks the largest
 * state at a chunk boundary and screen (if not NULL) the inputs', read-outs' and final
 * state's largest entries and the largest gate, as in FN(delta) (the gain column stays 0).
 * The same arithmetic as chunkwise.decayed_hebbian / hebbian, to rounding. */

#ifndef HB
#define HB 16
#endif

static double FN(min_last)(const double *x, long long w)
{
    double m = x[0];
    for (long long c = 1; c < w; ++c) m = x[c] < m ? x[c] : m;
    return m;
}

/* Gate products of one chunk: G inclusive from the chunk start, E exclusive
 * to its end, Qg = Q * G, Ke = K * E; w = 1 (scalar gates) or d_k (per key). */
static void FN(gate_products)(long long C, long long dk, long long w, const REAL *a,
                              const REAL *q, const REAL *k, double *G, double *E, REAL *Qg,
                              REAL *Ke)
{
    for (long long c = 0; c < w; ++c) {
        G[c] = a[c];
        E[(C - 1) * w + c] = 1.0;
    }
    for (long long i = 1; i < C; ++i)
        for (long long c = 0; c < w; ++c) G[i * w + c] = G[(i - 1) * w + c] * a[i * w + c];
    for (long long i = C - 2; i >= 0; --i)
        for (long long c = 0; c < w; ++c)
            E[i * w + c] = E[(i + 1) * w + c] * a[(i + 1) * w + c];
    for (long long i = 0; i < C; ++i)
        for (long long c = 0; c < dk; ++c) {
            long long x = w == 1 ? i : i * w + c;
            Ke[i * dk + c] = (REAL)(k[i * dk + c] * E[x]);
            Qg[i * dk + c] = (REAL)(q[i * dk + c] * G[x]);
        }
}

/* Per-key gates of one chunk, in the precision of the loop (products of at most C factors
 * <= 1: no overflow, at most C roundings each): gc = g_C, the product of the chunk's gates per
 * key, inv = 1 / g_C, from the chunk end the exclusive products e_t (a running row in E) with
 * Ke = K * e and, if Qg is not NULL, the inclusive products g_t (a running row in G) with
 * Qg = Q * g. G, gc, inv and E hold dk numbers each. */
static void FN(key_gates)(long long C, long long dk, const REAL *a, const REAL *q,
                          const REAL *k, REAL *G, REAL *gc, REAL *inv, REAL *E, REAL *Qg,
                          REAL *Ke)
{
    if (Qg) {
        for (long long c = 0; c < dk; ++c) {
            G[c] = a[c];
            Qg[c] = q[c] * G[c];
        }
        for (long long i = 1; i < C; ++i)
            for (long long c = 0; c < dk; ++c) {
                G[c] *= a[i * dk + c];
                Qg[i * dk + c] = q[i * dk + c] * G[c];
            }
        memcpy(gc, G, sizeof(REAL) * dk);
    } else {
        memcpy(gc, a, sizeof(REAL) * dk);
        for (long long i = 1; i < C; ++i)
            for (long long c = 0; c < dk; ++c) gc[c] *= a[i * dk + c];
    }
    for (long long c = 0; c < dk; ++c) {
        inv[c] = 1 / gc[c];
        E[c] = 1;
    }
    memcpy(Ke + (C - 1) * dk, k + (C - 1) * dk, sizeof(REAL) * dk);
    for (long long i = C - 2; i >= 0; --i)
        for (long long c = 0; c < dk; ++c) {
            E[c] *= a[(i + 1) * dk + c];
            Ke[i * dk + c] = k[i * dk + c] * E[c];
        }
}

/* the smallest of x[0..n) */
static REAL FN(smallest)(const REAL *x, long long n)
{
    REAL m = x[0];
    for (long long c = 1; c < n; ++c) m = x[c] < m ? x[c] : m;
    return m;
}

static int FN(hebbian_heads)(FN(gemm_t) gemm, long long N, long long n, long long C,
                             long long dk, long long dv, long long da, long long every,
                             const REAL *Q, const REAL *K, const REAL *V, const REAL *beta,
                             const REAL *alpha, REAL *ST, REAL *Y, REAL *states, REAL *peak,
                             const REAL *W0, REAL *W, REAL *screen)
{
    long long ns = (n + every - 1) / every;
    long long w = da > 0 ? da : 1;
    REAL *buf = malloc(sizeof(REAL) * (C * C + C * dv + 4 * C * dk + 4 * dk));
    double *G = malloc(sizeof(double) * (2 * C * w + dk));
    if (!buf || !G) { free(buf); free(G); return 1; }
    REAL *A = buf, *Vb = A + C * C, *Qg = Vb + C * dv, *Ke = Qg + C * dk;
    REAL *qf = Ke + C * dk, *kf = qf + C * dk;
    REAL *gc = kf + C * dk, *gi = gc + dk, *Gr = gi + dk, *Er = Gr + dk;   /* see FN(key_gates) */
    double *E = G + C * w, *r = E + C * w;
    for (long long h = 0; h < N; ++h) {
        REAL *S = ST + h * dk * dv;
        if (W0) FN(transpose)(dv, dk, W0 + h * dv * dk, S);
        if (peak) FN(track_peak)(peak + h, S, dk * dv);   /* the entering state; the others: */
        for (long long j = 0; j < n; ++j) {                /* as FN(write_state) forms them */
            long long row = (h * n + j) * C;
            const REAL *q = Q + row * dk, *k = K + row * dk, *v = V + row * dv, *b = beta + row;
            const REAL *a = da ? alpha + row * da : NULL;
            REAL *y = Y ? Y + row * dv : NULL;
            REAL *sc = screen ? screen + SCREEN_COLS * h : NULL;
            if (sc) FN(screen_chunk)(sc, q, k, v, C * dk, C * dv);
            if (sc && a) FN(track_bits)(sc + SCREEN_GATE, a, C * da, ~(UREAL)0);
            if (states && j % every == 0)
                memcpy(states + (h * ns + j / every) * dk * dv, S, sizeof(REAL) * dk * dv);
            for (long long i = 0; i < C; ++i)
                for (long long c = 0; c < dv; ++c) Vb[i * dv + c] = b[i] * v[i * dv + c];
            if (!a) {
                if (y) {
                    FN(transpose)(C, dk, k, kf);
                    FN(lower_xyt)(gemm, C, dk, 1, q, kf, A);
                    for (long long i = 0; i < C; ++i)
                        for (long long c = i + 1; c < C; ++c) A[i * C + c] = 0;
                    FN(mm)(gemm, 0, FULL, C, dv, dk, 1, q, dk, S, dv, 0, y, dv);
                    FN(lower_times)(gemm, C, dv, A, Vb, 1, y);
                    if (sc) FN(track_peak)(sc + SCREEN_Y, y, C * dv);
                }
                FN(write_state)(gemm, C, dk, dv, k, Vb, 1, NULL, S, peak ? peak + h : NULL);
                continue;
            }
            if (da > 1) {
                FN(key_gates)(C, dk, a, q, k, Gr, gc, gi, Er, y ? Qg : NULL, Ke);
                if (FN(smallest)(gc, dk) >= RATIO_MIN) {
                    /* the chunk's gates decay by at most RATIO_MIN: Y = (Q g) S^T + A V' with
                     * A = (Q g)(K e / g_C)^T, and S^T <- diag(g_C) S^T + (K e)^T V' */
                    if (y) {
                        FN(transpose)(C, dk, Ke, kf);                  /* kf = (K e / g_C)^T */
                        for (long long c = 0; c < dk; ++c)
                            for (long long i = 0; i < C; ++i) kf[c * C + i] *= gi[c];
                        FN(lower_xyt)(gemm, C, dk, 1, Qg, kf, A);
                        for (long long i = 0; i < C; ++i)
                            for (long long c = i + 1; c < C; ++c) A[i * C + c] = 0;
                        FN(mm)(gemm, 0, FULL, C, dv, dk, 1, Qg, dk, S, dv, 0, y, dv);
                        FN(lower_times)(gemm, C, dv, A, Vb, 1, y);
                        if (sc) FN(track_peak)(sc + SCREEN_Y, y, C * dv);
                    }
                    FN(write_state)(gemm, C, dk, dv, Ke, Vb, 1, gc, S, peak ? peak + h : NULL);
                    continue;
                }
            }
            FN(gate_products)(C, dk, w, a, q, k, G, E, Qg, Ke);
            if (y) {
                if (da == 1 && G[C - 1] < RATIO_MIN) {       /* running products of the gates */
                    FN(transpose)(C, dk, k, kf);
                    FN(lower_xyt)(gemm, C, dk, 1, q, kf, A);
                    for (long long i = 0; i < C; ++i) {
                        double d = 1.0;                  /* prod a over (c, i], c = i, i-1, .. */
                        for (long long c = i; c >= 0; --c) {
                            A[i * C + c] = (REAL)(A[i * C + c] * d);
                            d *= a[c];
                        }
                        for (long long c = i + 1; c < C; ++c) A[i * C + c] = 0;
                    }
                } else if (da == 1) {
                    /* the chunk's gate decays by at most RATIO_MIN: A = (Q g)(K / g)^T =
                     * (Q g / g_C)(K e)^T, the factor 1 / g_C on the product */
                    FN(transpose)(C, dk, Ke, kf);                  /* kf = (K e)^T */
                    FN(lower_xyt)(gemm, C, dk, (REAL)(1.0 / G[C - 1]), Qg, kf, A);
                    for (long long i = 0; i < C; ++i)
                        for (long long c = i + 1; c < C; ++c) A[i * C + c] = 0;
                } else {
                    for (long long s = 0; s < C; s += HB) {
                        long long e = s + HB < C ? s + HB : C;
                        for (long long t = s; t < e; ++t)
                            for (long long c = t + 1; c < C; ++c) A[t * C + c] = 0;
                        for (long long tau = s; tau < e; ++tau) {   /* diagonal block */
                            for (long long c = 0; c < dk; ++c) r[c] = 1.0;
                            for (long long t = tau; t < e; ++t) {
                                double sum = 0.0;
                                if (t > tau)
                                    for (long long c = 0; c < dk; ++c) r[c] *= a[t * dk + c];
                                for (long long c = 0; c < dk; ++c)
                                    sum += (double)q[t * dk + c] * k[tau * dk + c] * r[c];
                                A[t * C + tau] = (REAL)sum;
                            }
                        }
                        if (s == 0) continue;
                        for (long long c = 0; c < dk; ++c) r[c] = 1.0;
                        for (long long t = s; t < e; ++t)         /* decay over (s-1, t] */
                            for (long long c = 0; c < dk; ++c) {
                                r[c] *= a[t * dk + c];
                                qf[(t - s) * dk + c] = (REAL)(q[t * dk + c] * r[c]);
                            }
                        for (long long c = 0; c < dk; ++c) r[c] = 1.0;
                        for (long long tau = s - 1; tau >= 0; --tau)  /* decay over (tau, s-1] */
                            for (long long c = 0; c < dk; ++c) {
                                kf[tau * dk + c] = (REAL)(k[tau * dk + c] * r[c]);
                                r[c] *= a[tau * dk + c];
                            }
                        gemm(ROW_MAJOR, NO_TRANS, TRANS, e - s, s, dk, 1, qf, dk, kf, dk, 0,
                             A + s * C, C);
                    }
                }
                FN(mm)(gemm, 0, FULL, C, dv, dk, 1, Qg, dk, S, dv, 0, y, dv);
                FN(lower_times)(gemm, C, dv, A, Vb, 1, y);
                if (sc) FN(track_peak)(sc + SCREEN_Y, y, C * dv);
            }
            FN(write_state)(gemm, C, dk, dv, Ke, Vb, da == 1 ? (REAL)G[C - 1] : 1,
                            da == 1 ? NULL : gc, S, peak ? peak + h : NULL);
        }
        if (screen) FN(track_peak)(screen + SCREEN_COLS * h + SCREEN_W, S, dk * dv);
        if (W) FN(transpose)(dk, dv, S, W + h * dv * dk);
    }
    free(buf);
    free(G);
    return 0;
}

/* the arguments of FN(hebbian), for its groups of heads (FN(hebbian_group)) */
struct FN(hebbian_args) {
    FN(gemm_t) gemm;
    long long n, C, dk, dv, da, every;
    const REAL *Q, *K, *V, *beta, *alpha, *W0;
    REAL *ST, *Y, *states, *peak, *W, *screen;
};

static int FN(hebbian_group)(void *p, long long h0, long long h1)
{
    struct FN(hebbian_args) *a = p;
    long long n = a->n, C = a->C, dk = a->dk, dv = a->dv, ns = (n + a->every - 1) / a->every;
    return FN(hebbian_heads)(a->gemm, h1 - h0, n, C, dk, dv, a->da, a->every,
                             HEAD(a->Q, n * C * dk), HEAD(a->K, n * C * dk),
                             HEAD(a->V, n * C * dv), HEAD(a->beta, n * C),
                             HEAD(a->alpha, n * C * a->da), HEAD(a->ST, dk * dv),
                             HEAD(a->Y, n * C * dv), HEAD(a->states, ns * dk * dv),
                             HEAD(a->peak, 1), HEAD(a->W0, dv * dk), HEAD(a->W, dv * dk),
                             HEAD(a->screen, SCREEN_COLS));
}

/* The forward pass of N heads (see FN(hebbian_heads)) on `threads` threads (see run_heads). */
int FN(hebbian)(FN(gemm_t) gemm, long long threads, long long N, long long n, long long C,
                long long dk, long long dv, long long da, long long every, const REAL *Q,
                const REAL *K, const REAL *V, const REAL *beta, const REAL *alpha, REAL *ST,
                REAL *Y, REAL *states, REAL *peak, const REAL *W0, REAL *W, REAL *screen)
{
    struct FN(hebbian_args) args = {gemm, n, C, dk, dv, da, every, Q, K, V, beta, alpha, W0,
                                    ST, Y, states, peak, W, screen};
    return run_heads(FN(hebbian_group), &args, N, threads);
}

/* Reverse sweep of the Hebbian rules. In: states (entering S^T of every `every`-th chunk, from
 * FN(hebbian) with Y = NULL), dY, dST = dW^T (cotangent of the final state, transposed; on
 * return that of the initial state, before the first gate). Out: dQ, dK, dV (the gradients
 * of q, k, v) and dB (of beta). Per chunk, with the exit cotangent L (d_k x d_v):
 *   dV' = A^T dY + Ke L,  dA = tril(dY V'^T),
 *   dQ = G * (dY S) + dA~ K,  dK = E * (V' L^T) + dA~^T Q,  L <- g_C * L + Qg^T dY,
 * where dA~ K stands for the pull-back of A: (dA * D) K and (dA * D)^T Q for scalar gates,
 * G * (dA (K / G)) and (dA^T Qg) / G for per-key gates (1 / G as E / g_C: no division per
 * entry). Per-key gates are done only where
 * the chunk's decay stays >= RATIO_MIN (returns 2 at the first chunk where it does not; the
 * caller then uses the numpy engine). The gates' gradient dAlpha (N, n, C, da) follows from
 * dQ and dK: with L_s the cumulative log-gate, the read-outs and the final state depend on L_s
 * through e^{L_s} on the query side and e^{-L_s} on the key side (and W_T on L_T), so
 * d log a_t = sum_{s >= t} (q_s dq_s - k_s dk_s) + <dW, W_T> (per key unit, or summed), in
 * double, carried across chunks in carry (N x da; in: <dW, W_T>). */
int FN(hebbian_backward)(FN(gemm_t) gemm, long long N, long long n, long long C, long long dk,
                         long long dv, long long da, long long every, const REAL *Q,
                         const REAL *K, const REAL *V, const REAL *beta, const REAL *alpha,
                         const REAL *dY, const REAL *states, REAL *dST, REAL *dQ, REAL *dK,
                         REAL *dV, REAL *dB, double *carry, REAL *dAlpha)
{
    long long ns = (n + every - 1) / every;
    long long w = da > 0 ? da : 1;
    REAL *group = malloc(sizeof(REAL) * every * dk * dv);
    long long mx = C > dk ? (C > dv ? C : dv) : (dk > dv ? dk : dv);
    REAL *buf = malloc(sizeof(REAL) * (2 * C * C + C * dv + 4 * C * dk + mx * mx + 3 * dk));
    double *G = malloc(sizeof(double) * (2 * C * w + dk));
    int status = 0;
    if (!buf || !G || !group) { free(buf); free(G); free(group); return 1; }
    REAL *A = buf, *dA = A + C * C, *Vb = dA + C * C, *Qg = Vb + C * dv, *Ke = Qg + C * dk;
    REAL *Kf = Ke + C * dk, *X = Kf + C * dk, *Tt = X + C * dk;      /* Tt: see FN(mm_bt) */
    REAL *key_gc = Tt + mx * mx, *gi = key_gc + dk, *Er = gi + dk;    /* see FN(key_gates) */
    double *E = G + C * w, *inv = E + C * w;
    for (long long h = 0; h < N && !status; ++h) {
        REAL *L = dST + h * dk * dv;
        for (long long j = n - 1; j >= 0; --j) {
            long long row = (h * n + j) * C;
            const REAL *q = Q + row * dk, *k = K + row * dk, *v = V + row * dv, *b = beta + row;
            const REAL *a = da ? alpha + row * da : NULL;
            if (j % every == every - 1 || j == n - 1) {          /* rebuild the group's states */
                long long j0 = j - j % every;
                memcpy(group, states + (h * ns + j0 / every) * dk * dv, sizeof(REAL) * dk * dv);
                for (long long i = j0; i < j; ++i) {
                    long long r0 = (h * n + i) * C;
                    REAL *next = group + (i - j0 + 1) * dk * dv;
                    const REAL *ki = K + r0 * dk, *ke = ki;
                    REAL gc = 1, *rows = NULL;
                    memcpy(next, next - dk * dv, sizeof(REAL) * dk * dv);
                    for (long long t = 0; t < C; ++t)
                        for (long long c = 0; c < dv; ++c)
                            Vb[t * dv + c] = beta[r0 + t] * V[(r0 + t) * dv + c];
                    if (da == 1) {
                        FN(gate_products)(C, dk, w, alpha + r0 * da, Q + r0 * dk, ki, G, E, Qg, Ke);
                        ke = Ke;
                        gc = (REAL)G[C - 1];
                    } else if (da) {
                        FN(key_gates)(C, dk, alpha + r0 * da, NULL, ki, NULL, key_gc, gi, Er, NULL,
                                      Ke);
                        ke = Ke;
                        rows = key_gc;
                    }
                    /* as the forward writes it */
                    FN(write_state)(gemm, C, dk, dv, ke, Vb, gc, rows, next, NULL);
                }
            }
            const REAL *dy = dY + row * dv, *S = group + (j % every) * dk * dv;
            const REAL *qs = q, *ke = k;
            REAL *dq = dQ + row * dk, *dk_ = dK + row * dk, *dvb = dV + row * dv, *db = dB + row;
            for (long long t = 0; t < C; ++t)
                for (long long c = 0; c < dv; ++c) Vb[t * dv + c] = b[t] * v[t * dv + c];
            if (a) {
                FN(gate_products)(C, dk, w, a, q, k, G, E, Qg, Ke);
                qs = Qg, ke = Ke;
            }
            /* scores A (as the forward) and dA = tril(dY V'^T) */
            if (da > 1) {
                if (FN(min_last)(G + (C - 1) * w, w) < RATIO_MIN) { status = 2; break; }
                for (long long c = 0; c < dk; ++c) inv[c] = 1.0 / G[(C - 1) * w + c];
                for (long long i = 0; i < C; ++i)                  /* 1 / g_t = e_t / g_C */
                    for (long long c = 0; c < dk; ++c)
                        Kf[i * dk + c] = (REAL)(k[i * dk + c] * (E[i * w + c] * inv[c]));
                FN(mm_bt)(gemm, LOWER_OUT, C, C, dk, 1, Qg, dk, Kf, 0, A, C, Tt);
            } else {
                FN(mm_bt)(gemm, LOWER_OUT, C, C, dk, 1, q, dk, k, 0, A, C, Tt);
            }
            FN(mm_bt)(gemm, LOWER_OUT, C, C, dv, 1, dy, dv, Vb, 0, dA, C, Tt);
            for (long long i = 0; i < C; ++i) {
                if (da == 1) {                           /* A *= D, and dA *= D (dA~ = dA * D) */
                    double d = 1.0;
                    for (long long c = i; c >= 0; --c) {
                        A[i * C + c] = (REAL)(A[i * C + c] * d);
                        dA[i * C + c] = (REAL)(dA[i * C + c] * d);
                        d *= a[c];
                    }
                }
                for (long long c = i + 1; c < C; ++c) A[i * C + c] = dA[i * C + c] = 0;
            }
            /* dV' = A^T dY + Ke L */
            FN(mm)(gemm, 1, UPPER_A, C, dv, C, 1, A, C, dy, dv, 0, dvb, dv);
            FN(mm)(gemm, 0, FULL, C, dv, dk, 1, ke, dk, L, dv, 1, dvb, dv);
            /* dQ = G * (dY S) + pull-back of A */
            FN(mm_bt)(gemm, FULL, C, dk, dv, 1, dy, dv, S, 0, dq, dk, Tt);
            if (da > 1) {
                FN(mm)(gemm, 0, LOWER_A, C, dk, C, 1, dA, C, Kf, dk, 1, dq, dk);
                for (long long i = 0; i < C * dk; ++i) dq[i] = (REAL)(dq[i] * G[i]);
            } else {
                if (da == 1)
                    for (long long i = 0; i < C; ++i)
                        for (long long c = 0; c < dk; ++c)
                            dq[i * dk + c] = (REAL)(dq[i * dk + c] * G[i]);
                FN(mm)(gemm, 0, LOWER_A, C, dk, C, 1, dA, C, k, dk, 1, dq, dk);
            }
            /* dK = E * (V' L^T) + pull-back of A */
            FN(mm_bt)(gemm, FULL, C, dk, dv, 1, Vb, dv, L, 0, dk_, dk, Tt);
            if (da > 1) {
                FN(mm)(gemm, 1, UPPER_A, C, dk, C, 1, dA, C, Qg, dk, 0, X, dk);
                for (long long i = 0; i < C; ++i)
                    for (long long c = 0; c < dk; ++c) {
                        long long x = i * dk + c;
                        dk_[x] = (REAL)(dk_[x] * E[x] + X[x] * (E[x] * inv[c]));
                    }
            } else {
                if (da == 1)
                    for (long long i = 0; i < C; ++i)
                        for (long long c = 0; c < dk; ++c)
                            dk_[i * dk + c] = (REAL)(dk_[i * dk + c] * E[i]);
                FN(mm)(gemm, 1, UPPER_A, C, dk, C, 1, dA, C, q, dk, 1, dk_, dk);
            }
            /* L <- g_C L + Qg^T dY */
            if (da > 1)
                for (long long c = 0; c < dk; ++c) {
                    REAL g = (REAL)G[(C - 1) * w + c];
                    for (long long x = 0; x < dv; ++x) L[c * dv + x] *= g;
                }
            FN(mm)(gemm, 1, FULL, dk, dv, C, 1, qs, dk, dy, dv,
                 da == 1 ? (REAL)G[C - 1] : 1, L, dv);
            /* d beta = sum(dV' * v), dv = beta dV' */
            for (long long t = 0; t < C; ++t) {
                db[t] = (REAL)FN(dot)(dvb + t * dv, v + t * dv, dv);
                for (long long c = 0; c < dv; ++c) dvb[t * dv + c] *= b[t];
            }
            if (a) {          /* d log a_t = sum_{s >= t} (q_s dq_s - k_s dk_s) + <dW, W_T> */
                double *acc = carry + h * w;
                for (long long t = C - 1; t >= 0; --t) {
                    if (da == 1) {
                        acc[0] += FN(dot)(q + t * dk, dq + t * dk, dk)
                                  - FN(dot)(k + t * dk, dk_ + t * dk, dk);
                        dAlpha[row + t] = (REAL)(acc[0] / a[t]);
                    } else {
                        for (long long c = 0; c < dk; ++c) {
                            acc[c] += (double)q[t * dk + c] * dq[t * dk + c]
                                      - (double)k[t * dk + c] * dk_[t * dk + c];
                            dAlpha[(row + t) * dk + c] = (REAL)(acc[c] / a[t * dk + c]);
                        }
                    }
                }
            }
        }
    }
    free(buf);
    free(G);
    free(group);
    return status;
}
