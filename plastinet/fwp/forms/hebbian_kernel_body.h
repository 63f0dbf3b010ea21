/* Hebbian rules (linear attention, scalar or per-key decay) for one precision: REAL and
 * FN(name) are defined by the includer (delta_kernel.c).
 *
 * For each head and chunk of C steps with entering state S^T (d_k x d_v, row-major), gates
 * a_t (da = 0: none, 1: scalar, d_k: per key), inclusive products g_t = prod_{s<=t} a_s and
 * exclusive products to the chunk end e_t = prod_{s>t} a_s (double, products of factors
 * <= 1: no overflow, exact zeros), V' = diag(beta) V:
 *   Y = (Q * g) S^T + A V',   S^T <- g_C * S^T + (K * e)^T V',
 * with A[t][tau] = sum_j Q_tj K_tauj prod_{s=tau+1..t} a_sj (tau <= t, else 0). For per-key
 * gates A is one product (Q * g)(K / g)^T where no unit decays below RATIO_MIN over the
 * chunk, else it is formed in row blocks of HB steps: the diagonal blocks from running products
 * of the gates, the earlier columns as one product (Q * r_q)(K * r_k)^T with both factors
 * referred to the step before the block (both <= 1). The same arithmetic as
 * chunkwise.decayed_hebbian / hebbian, to rounding. */

#ifndef HB
#define HB 16
/* Per-key gates whose product over the chunk stays >= RATIO_MIN in every key unit form A
 * in one product (Q * g)(K / g)^T: each term q_tj k_tj g_tj / g_tauj is then rounded like
 * the direct product (factors within 1e12 of 1: no under- or overflow). */
#define RATIO_MIN 1e-12
#endif

static double FN(min_last)(const double *x, long long w)
{
    double m = x[0];
    for (long long c = 1; c < w; ++c) m = x[c] < m ? x[c] : m;
    return m;
}

int FN(hebbian)(FN(gemm_t) gemm, long long N, long long n, long long C, long long dk,
                long long dv, long long da, long long every, const REAL *Q, const REAL *K,
                const REAL *V, const REAL *beta, const REAL *alpha, REAL *ST, REAL *Y,
                REAL *states)
{
    long long ns = (n + every - 1) / every;
    long long w = da > 0 ? da : 1;
    REAL *buf = malloc(sizeof(REAL) * (C * C + C * dv + 4 * C * dk));
    double *G = malloc(sizeof(double) * (2 * C * w + dk));
    if (!buf || !G) { free(buf); free(G); return 1; }
    REAL *A = buf, *Vb = A + C * C, *Qg = Vb + C * dv, *Ke = Qg + C * dk;
    REAL *qf = Ke + C * dk, *kf = qf + C * dk;
    double *E = G + C * w, *r = E + C * w;
    for (long long h = 0; h < N; ++h) {
        REAL *S = ST + h * dk * dv;
        for (long long j = 0; j < n; ++j) {
            long long row = (h * n + j) * C;
            const REAL *q = Q + row * dk, *k = K + row * dk, *v = V + row * dv, *b = beta + row;
            const REAL *a = da ? alpha + row * da : NULL;
            REAL *y = Y ? Y + row * dv : NULL;
            if (states && j % every == 0)
                memcpy(states + (h * ns + j / every) * dk * dv, S, sizeof(REAL) * dk * dv);
            for (long long i = 0; i < C; ++i)
                for (long long c = 0; c < dv; ++c) Vb[i * dv + c] = b[i] * v[i * dv + c];
            if (!a) {
                if (y) {
                    gemm(ROW_MAJOR, NO_TRANS, TRANS, C, C, dk, 1, q, dk, k, dk, 0, A, C);
                    for (long long i = 0; i < C; ++i)
                        for (long long c = i + 1; c < C; ++c) A[i * C + c] = 0;
                    gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, C, dv, dk, 1, q, dk, S, dv, 0, y, dv);
                    gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, C, dv, C, 1, A, C, Vb, dv, 1, y, dv);
                }
                gemm(ROW_MAJOR, TRANS, NO_TRANS, dk, dv, C, 1, k, dk, Vb, dv, 1, S, dv);
                continue;
            }
            /* inclusive products from the chunk start, exclusive products to its end */
            for (long long c = 0; c < w; ++c) {
                G[c] = a[c];
                E[(C - 1) * w + c] = 1.0;
            }
            for (long long i = 1; i < C; ++i)
                for (long long c = 0; c < w; ++c) G[i * w + c] = G[(i - 1) * w + c] * a[i * w + c];
            for (long long i = C - 2; i >= 0; --i)
                for (long long c = 0; c < w; ++c) E[i * w + c] = E[(i + 1) * w + c] * a[(i + 1) * w + c];
            for (long long i = 0; i < C; ++i)
                for (long long c = 0; c < dk; ++c) {
                    long long x = da == 1 ? i : i * w + c;
                    Ke[i * dk + c] = (REAL)(k[i * dk + c] * E[x]);
                    Qg[i * dk + c] = (REAL)(q[i * dk + c] * G[x]);
                }
            if (y) {
                if (da == 1) {
                    gemm(ROW_MAJOR, NO_TRANS, TRANS, C, C, dk, 1, q, dk, k, dk, 0, A, C);
                    for (long long i = 0; i < C; ++i) {
                        double d = 1.0;                  /* prod a over (c, i], c = i, i-1, .. */
                        for (long long c = i; c >= 0; --c) {
                            A[i * C + c] = (REAL)(A[i * C + c] * d);
                            d *= a[c];
                        }
                        for (long long c = i + 1; c < C; ++c) A[i * C + c] = 0;
                    }
                } else if (FN(min_last)(G + (C - 1) * w, w) >= RATIO_MIN) {
                    /* the chunk's gates decay by at most RATIO_MIN: A = (Q g)(K / g)^T */
                    for (long long i = 0; i < C; ++i)
                        for (long long c = 0; c < dk; ++c)
                            kf[i * dk + c] = (REAL)(k[i * dk + c] / G[i * w + c]);
                    gemm(ROW_MAJOR, NO_TRANS, TRANS, C, C, dk, 1, Qg, dk, kf, dk, 0, A, C);
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
                gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, C, dv, dk, 1, Qg, dk, S, dv, 0, y, dv);
                gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, C, dv, C, 1, A, C, Vb, dv, 1, y, dv);
            }
            if (da == 1) {
                gemm(ROW_MAJOR, TRANS, NO_TRANS, dk, dv, C, 1, Ke, dk, Vb, dv,
                     (REAL)G[C - 1], S, dv);
            } else {
                for (long long c = 0; c < dk; ++c) {
                    REAL gc = (REAL)G[(C - 1) * w + c];
                    for (long long i = 0; i < dv; ++i) S[c * dv + i] *= gc;
                }
                gemm(ROW_MAJOR, TRANS, NO_TRANS, dk, dv, C, 1, Ke, dk, Vb, dv, 1, S, dv);
            }
        }
    }
    free(buf);
    free(G);
    return 0;
}
