/* Chunkwise delta rule, forward, one chunk at a time in cache (see native.py).
 *
 * For each head and each chunk of C steps with entering state S^T (d_k x d_v, row-major):
 *   A  = [Q K^T ; K K^T]                       (2 BLAS products, C x C each)
 *   T  = (I + strict_tril(diag(beta) K K^T))^-1 by forward substitution in double precision
 *   TB = T diag(beta)                          (rounded to REAL)
 *   Y  = Q S^T + tril(Q K^T) U,  U = TB (V - K S^T),  S^T <- S^T + K^T U.
 * Y may be NULL (no read-outs: the backward's recomputation); states (the entering S^T of
 * every chunk) and pseudo (U), if not NULL, are filled for the backward pass.
 * Identical in exact arithmetic to gated_delta_engine in chunkwise.py without a gate; the
 * inverse is formed in double precision there too. BLAS is the caller's cblas_?gemm
 * (BLAS_INT: its integer type), so that the products run in numpy's own BLAS.
 */
#include <stdlib.h>
#include <string.h>

#ifndef BLAS_INT
#define BLAS_INT long long
#endif
typedef BLAS_INT bint;
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

#define DEFINE_DELTA(NAME, REAL)                                                              \
typedef void (*NAME##_gemm)(int, int, int, bint, bint, bint, REAL, const REAL *, bint,        \
                            const REAL *, bint, REAL, REAL *, bint);                          \
int NAME(NAME##_gemm gemm, long long N, long long n, long long C, long long dk, long long dv, \
         const REAL *Q, const REAL *K, const REAL *V, const REAL *beta, REAL *ST, REAL *Y,   \
         REAL *states, REAL *pseudo)                                                          \
{                                                                                             \
    REAL *A = malloc(sizeof(REAL) * (3 * C * C + 2 * C * dv));                                \
    double *Tm = malloc(sizeof(double) * C * C);                                              \
    if (!A || !Tm) { free(A); free(Tm); return 1; }                                           \
    REAL *KK = A + C * C, *TB = KK + C * C, *X = TB + C * C, *U = X + C * dv;                 \
    for (long long h = 0; h < N; ++h) {                                                       \
        REAL *S = ST + h * dk * dv;                                                           \
        for (long long j = 0; j < n; ++j) {                                                   \
            long long row = (h * n + j) * C;                                                  \
            const REAL *q = Q + row * dk, *k = K + row * dk, *v = V + row * dv;               \
            const REAL *b = beta + row;                                                       \
            REAL *y = Y ? Y + row * dv : NULL, *u = pseudo ? pseudo + row * dv : U;           \
            if (states) memcpy(states + (h * n + j) * dk * dv, S, sizeof(REAL) * dk * dv);    \
            if (y) gemm(ROW_MAJOR, NO_TRANS, TRANS, C, C, dk, 1, q, dk, k, dk, 0, A, C);      \
            gemm(ROW_MAJOR, NO_TRANS, TRANS, C, C, dk, 1, k, dk, k, dk, 0, KK, C);            \
            for (long long i = 0; i < C; ++i) {                                               \
                double *ti = Tm + i * C;                                                      \
                for (long long c = 0; c < C; ++c) ti[c] = 0.0;                                \
                ti[i] = 1.0;                                                                  \
                for (long long r = 0; r < i; ++r) {   /* row i of T: -sum_r L[i,r] T[r,:] */   \
                    double a = -(double)b[i] * (double)KK[i * C + r];                         \
                    const double *tr = Tm + r * C;                                            \
                    for (long long c = 0; c <= r; ++c) ti[c] += a * tr[c];                    \
                }                                                                             \
                for (long long c = 0; c < C; ++c) TB[i * C + c] = (REAL)(ti[c] * (double)b[c]); \
                for (long long c = i + 1; c < C; ++c) A[i * C + c] = 0;   /* causal mask */   \
            }                                                                                 \
            if (y) gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, C, dv, dk, 1, q, dk, S, dv, 0, y, dv);  \
            memcpy(X, v, sizeof(REAL) * C * dv);                                              \
            gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, C, dv, dk, -1, k, dk, S, dv, 1, X, dv);       \
            gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, C, dv, C, 1, TB, C, X, dv, 0, u, dv);         \
            if (y) gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, C, dv, C, 1, A, C, u, dv, 1, y, dv);   \
            gemm(ROW_MAJOR, TRANS, NO_TRANS, dk, dv, C, 1, k, dk, u, dv, 1, S, dv);           \
        }                                                                                     \
    }                                                                                         \
    free(A);                                                                                  \
    free(Tm);                                                                                 \
    return 0;                                                                                 \
}

DEFINE_DELTA(delta_f32, float)
DEFINE_DELTA(delta_f64, double)
