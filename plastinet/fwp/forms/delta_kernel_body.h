/* Body of delta_kernel.c for one precision: REAL and FN(name) are defined by the includer. */

typedef void (*FN(gemm_t))(int, int, int, bint, bint, bint, REAL, const REAL *, bint,
                           const REAL *, bint, REAL, REAL *, bint);

/* KK = K K^T of the chunk; T = (I + strict_tril(diag(b) KK))^-1 in double (Tm), then
 * Tf = T and TB = T diag(b) in REAL (Tf may be NULL). */
static void FN(ut_inverse)(long long C, const REAL *KK, const REAL *b, double *Tm, REAL *Tf,
                           REAL *TB)
{
    for (long long i = 0; i < C; ++i) {
        double *ti = Tm + i * C;
        for (long long c = 0; c < C; ++c) ti[c] = 0.0;
        ti[i] = 1.0;
        for (long long r = 0; r < i; ++r) {           /* row i of T: -sum_r L[i,r] T[r,:] */
            double a = -(double)b[i] * (double)KK[i * C + r];
            const double *tr = Tm + r * C;
            for (long long c = 0; c <= r; ++c) ti[c] += a * tr[c];
        }
        for (long long c = 0; c < C; ++c) {
            TB[i * C + c] = (REAL)(ti[c] * (double)b[c]);
            if (Tf) Tf[i * C + c] = (REAL)ti[c];
        }
    }
}

/* C = alpha op(A) B + beta C with B not transposed (op(A) = A, or A^T with ta; shape as for
 * small_sgemm): small_gemm.h for float where n is a multiple of 8, else BLAS (all of C). */
static void FN(mm)(FN(gemm_t) gemm, int ta, int shape, long long m, long long n, long long k,
                   REAL alpha, const REAL *A, long long lda, const REAL *B, long long ldb,
                   REAL beta, REAL *C, long long ldc)
{
#ifdef SMALL_GEMM
    if (n % 8 == 0) {
        SMALL_GEMM(ta, shape, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    (void)shape;
    gemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, NO_TRANS, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* xt (cols x rows) = x^T for x (rows x cols), both row-major */
static void FN(transpose)(long long rows, long long cols, const REAL *x, REAL *xt)
{
#ifdef SMALL_GEMM
    if (rows % 8 == 0 && cols % 8 == 0) {
        small_transpose(rows, cols, x, xt);
        return;
    }
#endif
    for (long long i = 0; i < rows; ++i)
        for (long long c = 0; c < cols; ++c) xt[c * rows + i] = x[i * cols + c];
}

/* C = alpha A B^T + beta C for B (n x k, row-major, ldb = k; shape FULL or LOWER_OUT): in
 * small_gemm.h through the transposed copy of B in scratch (k x n numbers) where n is a
 * multiple of 8, else BLAS (all of C). */
static void FN(mm_bt)(FN(gemm_t) gemm, int shape, long long m, long long n, long long k,
                      REAL alpha, const REAL *A, long long lda, const REAL *B, REAL beta,
                      REAL *C, long long ldc, REAL *scratch)
{
#ifdef SMALL_GEMM
    if (n % 8 == 0) {
        FN(transpose)(n, k, B, scratch);
        SMALL_GEMM(0, shape, m, n, k, alpha, A, lda, scratch, n, beta, C, ldc);
        return;
    }
#endif
    (void)scratch;
    (void)shape;
    gemm(ROW_MAJOR, NO_TRANS, TRANS, m, n, k, alpha, A, lda, B, k, beta, C, ldc);
}

/* A = alpha X Y^T (C x C) from X (C x dk) and Yt = Y^T (dk x C), where only its lower
 * triangle is used: the upper right part is not formed where it can be skipped (left as it
 * was; the callers read or mask only the lower triangle): by tiles in small_gemm.h, else
 * from SPLIT steps on the upper right C/2 x C/2 block (a quarter of the product). */
static void FN(lower_xyt)(FN(gemm_t) gemm, long long C, long long dk, REAL alpha,
                          const REAL *X, const REAL *Yt, REAL *A)
{
    long long h = C / 2;
#ifdef SMALL_GEMM
    if (C % 8 == 0) {
        SMALL_GEMM(0, LOWER_OUT, C, C, dk, alpha, X, dk, Yt, C, 0, A, C);
        return;
    }
#endif
    if (C < SPLIT) {
        gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, C, C, dk, alpha, X, dk, Yt, C, 0, A, C);
        return;
    }
    gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, h, h, dk, alpha, X, dk, Yt, C, 0, A, C);
    gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, C - h, C, dk, alpha, X + h * dk, dk, Yt, C, 0, A + h * C,
         C);
}

/* Y <- L Z + beta Y for a lower-triangular L (C x C; zero above the diagonal, where it is
 * read: the sums stop at the diagonal's tile in small_gemm.h, and from SPLIT steps on the
 * upper right block is not read by BLAS), Z and Y (C x dv). */
static void FN(lower_times)(FN(gemm_t) gemm, long long C, long long dv, const REAL *L,
                            const REAL *Z, REAL beta, REAL *Y)
{
    long long h = C / 2;
#ifdef SMALL_GEMM
    if (dv % 8 == 0) {
        SMALL_GEMM(0, LOWER_A, C, dv, C, 1, L, C, Z, dv, beta, Y, dv);
        return;
    }
#endif
    if (C < SPLIT) {
        gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, C, dv, C, 1, L, C, Z, dv, beta, Y, dv);
        return;
    }
    gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, h, dv, h, 1, L, C, Z, dv, beta, Y, dv);
    gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, C - h, dv, C, 1, L + h * C, C, Z, dv, beta, Y + h * dv, dv);
}

/* top[0] <- the largest of top[0] and the n numbers x, all compared by their bits (masked by
 * mask) as unsigned integers, whose order is that of the numbers >= +0 (so that the maximum
 * vectorises; negative numbers and NaN compare above every such number, NaN above infinity). */
static void FN(track_bits)(REAL *top, const REAL *x, long long n, UREAL mask)
{
    UREAL m, b;
    memcpy(&m, top, sizeof m);
    for (long long i = 0; i < n; ++i) {
        memcpy(&b, x + i, sizeof b);
        b &= mask;
        m = b > m ? b : m;
    }
    memcpy(top, &m, sizeof m);
}

/* peak[0] <- max(peak[0], max |x|) over n numbers (FN(track_bits) without the sign bit: NaN
 * compares largest): e.g. the largest state (entry) at a chunk boundary, against which the
 * caller judges a final state that cancelled (chunkwise.py). */
static void FN(track_peak)(REAL *peak, const REAL *x, long long n)
{
    FN(track_bits)(peak, x, n, ~(UREAL)0 >> 1);
}

/* The state update of a chunk, S^T <- diag(rb) S^T + K^T U (rb NULL: r S^T + K^T U; S^T
 * dk x dv, K C x dk, U C x dv), and peak (NULL: none) raised to the largest |entry| of the new
 * state as FN(track_peak) does: in the product's stores where small_gemm.h forms it, else by
 * a pass of its own. */
static void FN(write_state)(FN(gemm_t) gemm, long long C, long long dk, long long dv,
                            const REAL *K, const REAL *U, REAL r, const REAL *rb, REAL *S,
                            REAL *peak)
{
#ifdef SMALL_GEMM_ROWS
    if (dv % 8 == 0) {
        uint32_t bits = 0;
        if (peak) memcpy(&bits, peak, sizeof bits);
        SMALL_GEMM_ROWS(1, FULL, dk, dv, C, 1, K, dk, U, dv, r, S, dv, rb, &bits);
        if (peak) memcpy(peak, &bits, sizeof bits);
        return;
    }
#endif
    for (long long c = 0; rb && c < dk; ++c)
        for (long long i = 0; i < dv; ++i) S[c * dv + i] *= rb[c];
    gemm(ROW_MAJOR, TRANS, NO_TRANS, dk, dv, C, 1, K, dk, U, dv, rb ? 1 : r, S, dv);
    if (peak) FN(track_peak)(peak, S, dk * dv);
}

/* The checks the loops make while they read the inputs and write the outputs, in a row of
 * SCREEN_COLS numbers per head (zeros on entry; see FN(track_peak): NaN or infinite where an
 * entry is), so that the caller's checks cost no pass over memory of their own:
 * [0..2] the largest |entry| of q, k and v, [3] of the read-outs, [4] of the final state,
 * [5] the largest beta_t ||k_t||^2 (the delta rules: their expansion check; else 0), [6] the
 * largest gate by its bits with the sign (FN(track_bits): above 1 if a gate is outside
 * [+0, 1] or NaN; 0 without gates); the columns are named in delta_kernel.c. Here: [0..2]
 * from the chunk's q, k and v (nq, nq and nv numbers). */
static void FN(screen_chunk)(REAL *screen, const REAL *q, const REAL *k, const REAL *v,
                             long long nq, long long nv)
{
    FN(track_peak)(screen, q, nq);
    FN(track_peak)(screen + 1, k, nq);
    FN(track_peak)(screen + 2, v, nv);
}

/* sum x_i y_i in double, with sixteen partial sums: four independent chains of vectors of
 * four doubles, so that the additions' latency does not bound the loop */
static double FN(dot)(const REAL *x, const REAL *y, long long n)
{
    double s[16] = {0.0};
    long long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; ++j) s[j] += (double)x[i + j] * y[i + j];
    for (; i < n; ++i) s[0] += (double)x[i] * y[i];
    for (int w = 8; w > 0; w /= 2)
        for (int j = 0; j < w; ++j) s[j] += s[j + w];
    return s[0];
}

/* Inclusive gate products from the chunk start, G_t = prod_{s<=t} a_s, and exclusive ones to
 * its end, E_t = prod_{s>t} a_s (= G_C / G_t), in double. */
static void FN(scalar_gates)(long long C, const REAL *a, double *G, double *E)
{
    G[0] = a[0];
    for (long long i = 1; i < C; ++i) G[i] = G[i - 1] * a[i];
    E[C - 1] = 1.0;
    for (long long i = C - 2; i >= 0; --i) E[i] = E[i + 1] * a[i + 1];
}

/* alpha (scalar gates, NULL: the plain delta rule) makes it the gated delta rule: with the
 * inclusive gate products g_t from the chunk start, e_t = g_C / g_t (both as products of
 * factors <= 1, in double) and D[t][tau] = prod_{s=tau+1..t} a_s, K K^T and Q K^T are
 * multiplied by D (formed as (K g)(K e)^T / g_C and (Q g)(K e)^T / g_C where
 * g_C >= RATIO_MIN), Q and K (in the products with S^T) by g, K (in the write) by e, and
 * S^T <- g_C S^T + (K e)^T U. inv (NULL: none), laid out as Q (C <= dk), receives each
 * chunk's T (C x C, at the start of the chunk's rows) for the backward, which then need not
 * form it again. screen (N x SCREEN_COLS; NULL: none): see FN(screen_chunk). */
static int FN(delta_heads)(FN(gemm_t) gemm, long long N, long long n, long long C, long long dk,
                           long long dv, long long every, const REAL *Q, const REAL *K,
                           const REAL *V, const REAL *beta, const REAL *alpha, REAL *ST, REAL *Y,
                           REAL *states, REAL *pseudo, REAL *peak, REAL *inv, const REAL *W0,
                           REAL *W, REAL *screen)
{
    long long ns = (n + every - 1) / every;                 /* states kept per head */
    REAL *A = malloc(sizeof(REAL) * (3 * C * C + 2 * C * dv + 4 * C * dk));
    double *Tm = malloc(sizeof(double) * (C * C + 2 * C));
    if (!A || !Tm) { free(A); free(Tm); return 1; }
    REAL *KK = A + C * C, *TB = KK + C * C, *X = TB + C * C, *U = X + C * dv;
    REAL *Qg = U + C * dv, *Kg = Qg + C * dk, *Ke = Kg + C * dk, *Ki = Ke + C * dk;
    double *G = Tm + C * C, *E = G + C;
    for (long long h = 0; h < N; ++h) {
        REAL *S = ST + h * dk * dv;
        if (W0) FN(transpose)(dv, dk, W0 + h * dv * dk, S);
        if (peak) FN(track_peak)(peak + h, S, dk * dv);   /* the entering state; the others: */
        for (long long j = 0; j < n; ++j) {                /* as FN(write_state) forms them */
            long long row = (h * n + j) * C;
            const REAL *q = Q + row * dk, *k = K + row * dk, *v = V + row * dv, *b = beta + row;
            const REAL *a = alpha ? alpha + row : NULL;
            REAL *y = Y ? Y + row * dv : NULL, *u = pseudo ? pseudo + row * dv : U;
            const REAL *qs = q, *ks = k, *kw = k;      /* Q, K in the products with S^T; K written */
            REAL *sc = screen ? screen + SCREEN_COLS * h : NULL;
            if (sc) FN(screen_chunk)(sc, q, k, v, C * dk, C * dv);
            if (states && j % every == 0)
                memcpy(states + (h * ns + j / every) * dk * dv, S, sizeof(REAL) * dk * dv);
            if (a) {
                if (sc) FN(track_bits)(sc + SCREEN_GATE, a, C, ~(UREAL)0);
                FN(scalar_gates)(C, a, G, E);
                for (long long i = 0; i < C; ++i) {
                    REAL gi = (REAL)G[i], ei = (REAL)E[i];
                    for (long long c = 0; c < dk; ++c) {
                        Qg[i * dk + c] = q[i * dk + c] * gi;
                        Kg[i * dk + c] = k[i * dk + c] * gi;
                        Ke[i * dk + c] = k[i * dk + c] * ei;
                    }
                }
                qs = Qg, ks = Kg, kw = Ke;
            }
            if (a && G[C - 1] >= RATIO_MIN) {
                /* K K^T * D = (K g)(K / g)^T = (K g)(K e)^T / g_C, Q likewise */
                REAL r = (REAL)(1.0 / G[C - 1]);
                FN(transpose)(C, dk, Ke, Ki);       /* Ki = (K e)^T */
                FN(lower_xyt)(gemm, C, dk, r, Kg, Ki, KK);
                if (y) FN(lower_xyt)(gemm, C, dk, r, Qg, Ki, A);
            } else {
                FN(transpose)(C, dk, k, Ki);        /* Ki = K^T */
                FN(lower_xyt)(gemm, C, dk, 1, k, Ki, KK);
                if (y) FN(lower_xyt)(gemm, C, dk, 1, q, Ki, A);
                for (long long i = 0; a && i < C; ++i) {
                    double d = 1.0;                    /* prod a over (c, i], c = i, i-1, .. */
                    for (long long c = i; c >= 0; --c) {
                        KK[i * C + c] = (REAL)(KK[i * C + c] * d);
                        if (y) A[i * C + c] = (REAL)(A[i * C + c] * d);
                        d *= a[c];
                    }
                }
            }
            for (long long i = 0; sc && i < C; ++i) {   /* beta ||k||^2: the diagonal of K K^T (* D) */
                REAL g = b[i] * KK[i * C + i];
                sc[SCREEN_GAIN] = g > sc[SCREEN_GAIN] || g != g ? g : sc[SCREEN_GAIN];
            }
            FN(ut_inverse)(C, KK, b, Tm, inv ? inv + row * dk : NULL, TB);
            if (y) {
                for (long long i = 0; i < C; ++i)                        /* causal mask */
                    for (long long c = i + 1; c < C; ++c) A[i * C + c] = 0;
                FN(mm)(gemm, 0, FULL, C, dv, dk, 1, qs, dk, S, dv, 0, y, dv);
            }
            memcpy(X, v, sizeof(REAL) * C * dv);
            FN(mm)(gemm, 0, FULL, C, dv, dk, -1, ks, dk, S, dv, 1, X, dv);
            FN(lower_times)(gemm, C, dv, TB, X, 0, u);
            if (y) FN(lower_times)(gemm, C, dv, A, u, 1, y);
            if (sc && y) FN(track_peak)(sc + SCREEN_Y, y, C * dv);
            FN(write_state)(gemm, C, dk, dv, kw, u, a ? (REAL)G[C - 1] : 1, NULL, S,
                            peak ? peak + h : NULL);
        }
        if (screen) FN(track_peak)(screen + SCREEN_COLS * h + SCREEN_W, S, dk * dv);
        if (W) FN(transpose)(dk, dv, S, W + h * dv * dk);
    }
    free(A);
    free(Tm);
    return 0;
}

/* the arguments of FN(delta), for its groups of heads (FN(delta_group)) */
struct FN(delta_args) {
    FN(gemm_t) gemm;
    long long n, C, dk, dv, every;
    const REAL *Q, *K, *V, *beta, *alpha, *W0;
    REAL *ST, *Y, *states, *pseudo, *peak, *inv, *W, *screen;
};

static int FN(delta_group)(void *p, long long h0, long long h1)
{
    struct FN(delta_args) *a = p;
    long long n = a->n, C = a->C, dk = a->dk, dv = a->dv, ns = (n + a->every - 1) / a->every;
    return FN(delta_heads)(a->gemm, h1 - h0, n, C, dk, dv, a->every, HEAD(a->Q, n * C * dk),
                           HEAD(a->K, n * C * dk), HEAD(a->V, n * C * dv), HEAD(a->beta, n * C),
                           HEAD(a->alpha, n * C), HEAD(a->ST, dk * dv), HEAD(a->Y, n * C * dv),
                           HEAD(a->states, ns * dk * dv), HEAD(a->pseudo, n * C * dv),
                           HEAD(a->peak, 1), HEAD(a->inv, n * C * dk), HEAD(a->W0, dv * dk),
                           HEAD(a->W, dv * dk), HEAD(a->screen, SCREEN_COLS));
}

/* The forward pass of N heads (see FN(delta_heads)) on `threads` threads (see run_heads). */
int FN(delta)(FN(gemm_t) gemm, long long threads, long long N, long long n, long long C,
              long long dk, long long dv, long long every, const REAL *Q, const REAL *K,
              const REAL *V, const REAL *beta, const REAL *alpha, REAL *ST, REAL *Y, REAL *states,
              REAL *pseudo, REAL *peak, REAL *inv, const REAL *W0, REAL *W, REAL *screen)
{
    struct FN(delta_args) args = {gemm, n, C, dk, dv, every, Q, K, V, beta, alpha, W0,
                                  ST, Y, states, pseudo, peak, inv, W, screen};
    return run_heads(FN(delta_group), &args, N, threads);
}

/* Reverse sweep. In: states (entering S^T of every `every`-th chunk, as the forward kept
 * them), pseudo (U of every chunk; each is overwritten by the chunk's dV once used), dY, and
 * dST = dW^T (the cotangent of the final state, transposed; on return the cotangent of the
 * initial state). Out: dQ, dK, dB. The states of a group of `every` chunks are rebuilt from
 * its first, S^T_{j+1} = g_C S^T_j + (K_j e)^T U_j, by the forward's own product (same
 * rounding). Per chunk, with S the entering state (d_v x d_k; S^T is kept), dS' the
 * cotangent of the exit state, attn = tril(Q K^T * D), the chunk's T and B = diag(beta):
 *   dU = attn^T dY + (K e) dS'^T,  dK_e = U dS',  Dv = d(B V) = T^T dU,  dV = B Dv,
 *   dQ = g dY S + (d attn) K,  d attn = tril(dY U^T) * D,  NK = -d(B g K) = T^T (dU S) = Dv S,
 *   M = -strict_tril(Dv U^T) * D  (the cotangent of strict_tril(B K K^T * D), times D: that
 *       of K K^T is B M),
 *   dK = e dK_e - B g NK + B M K + M^T B K + (d attn)^T Q,
 *   dB = Dv . V - g NK . K + K . (M K),  dS^T = g_C dS'^T + (Q g)^T dY - (K g)^T dV.
 * The solves' terms come from the forward's pseudo-values U = U_y - W_y S^T (U_y = T B V,
 * W_y = T B diag(g) K), so that neither U_y nor W_y is formed: Dv U_y^T - NK W_y^T = Dv U^T,
 * W_y^T dU = (K g)^T dV; and K K^T * D is not formed either: M's terms are products with K.
 * With gates (alpha not NULL) the products of the forward carry the gate factors (D on
 * K K^T, Q K^T and their cotangents, g on Q and K in the products with S^T, e on K in the
 * write, g_C on the state). Their own gradient dAlpha (N, n, C) follows from dQ and dV:
 * W_t e^{-L_t} is a delta rule fed v_t e^{-L_t} and read out as y_t = e^{L_t} (..) q_t, so
 * d log a_t = sum_{s >= t} (q_s dq_s - v_s dv_s) + <dW, W_T>, carried in double across
 * chunks in carry (N; in: <dW, W_T>), as for the Hebbian rules. inv (NULL: formed here):
 * the T of every chunk as FN(delta) recorded it, in a buffer laid out as dK (it may be dK
 * itself: chunk j's T is copied out before chunk j's gradients are written). */
int FN(delta_backward)(FN(gemm_t) gemm, long long N, long long n, long long C, long long dk,
                       long long dv, long long every, const REAL *Q, const REAL *K,
                       const REAL *V, const REAL *beta, const REAL *alpha, const REAL *dY,
                       const REAL *states, REAL *pseudo, REAL *dST, REAL *dQ, REAL *dK,
                       REAL *dB, double *carry, REAL *dAlpha, const REAL *inv)
{
    long long ns = (n + every - 1) / every;
    REAL *group = malloc(sizeof(REAL) * every * dk * dv);
    long long mx = C > dk ? (C > dv ? C : dv) : (dk > dv ? dk : dv);
    REAL *buf = malloc(sizeof(REAL) * (6 * C * C + 3 * C * dv + dv * dk + 5 * C * dk + mx * mx));
    double *Tm = malloc(sizeof(double) * (C * C + 3 * C));
    if (!buf || !Tm || !group) { free(buf); free(Tm); free(group); return 1; }
    REAL *KK = buf, *A = KK + C * C, *dA = A + C * C, *dM = dA + C * C, *Tf = dM + C * C;
    REAL *Dm = Tf + C * C, *dU = Dm + C * C, *Dv = dU + C * dv, *Ut = Dv + C * dv;
    REAL *Sw = Ut + C * dv, *NK = Sw + dv * dk, *Qg = NK + C * dk, *Kg = Qg + C * dk;
    REAL *Ke = Kg + C * dk, *Kr = Ke + C * dk, *Tt = Kr + C * dk;    /* Tt: see FN(mm_bt) */
    double *G = Tm + C * C, *E = G + C, *Gi = E + C;
    for (long long h = 0; h < N; ++h) {
        REAL *dS = dST + h * dk * dv;
        for (long long j = n - 1; j >= 0; --j) {
            long long row = (h * n + j) * C;
            const REAL *q = Q + row * dk, *k = K + row * dk, *v = V + row * dv, *b = beta + row;
            const REAL *a = alpha ? alpha + row : NULL;
            if (j % every == every - 1 || j == n - 1) {          /* rebuild the group's states */
                long long j0 = j - j % every;
                memcpy(group, states + (h * ns + j0 / every) * dk * dv, sizeof(REAL) * dk * dv);
                for (long long i = j0; i < j; ++i) {
                    REAL *next = group + (i - j0 + 1) * dk * dv;
                    const REAL *ki = K + (h * n + i) * C * dk, *kw = ki;
                    REAL gc = 1;
                    memcpy(next, next - dk * dv, sizeof(REAL) * dk * dv);
                    if (alpha) {
                        FN(scalar_gates)(C, alpha + (h * n + i) * C, G, E);
                        for (long long t = 0; t < C; ++t)
                            for (long long c = 0; c < dk; ++c)
                                Kg[t * dk + c] = ki[t * dk + c] * (REAL)E[t];
                        kw = Kg, gc = (REAL)G[C - 1];
                    }
                    FN(mm)(gemm, 1, FULL, dk, dv, C, 1, kw, dk,
                         pseudo + (h * n + i) * C * dv, dv, gc, next, dv);
                }
            }
            const REAL *dy = dY + row * dv, *S = group + (j % every) * dk * dv;
            const REAL *qs = q, *ks = k, *kw = k;
            REAL *u = pseudo + row * dv, *dq = dQ + row * dk, *dke = dK + row * dk, *db = dB + row;
            /* factors of the chunk, formed as the forward forms them */
            if (a) {
                FN(scalar_gates)(C, a, G, E);
                for (long long i = 0; i < C; ++i) {
                    REAL gi = (REAL)G[i], ei = (REAL)E[i];
                    for (long long c = 0; c < dk; ++c) {
                        Qg[i * dk + c] = q[i * dk + c] * gi;
                        Kg[i * dk + c] = k[i * dk + c] * gi;
                        Ke[i * dk + c] = k[i * dk + c] * ei;
                    }
                }
                qs = Qg, ks = Kg, kw = Ke;
            }
            if (a && G[C - 1] >= RATIO_MIN) {   /* (K g)(K / g)^T, (Q g)(K / g)^T; D = g_i / g_c */
                for (long long i = 0; i < C; ++i) {
                    REAL r = (REAL)(1.0 / G[i]);
                    Gi[i] = 1.0 / G[i];
                    for (long long c = 0; c < dk; ++c) Kr[i * dk + c] = k[i * dk + c] * r;
                }
                if (!inv) FN(mm_bt)(gemm, LOWER_OUT, C, C, dk, 1, Kg, dk, Kr, 0, KK, C, Tt);
                FN(mm_bt)(gemm, LOWER_OUT, C, C, dk, 1, Qg, dk, Kr, 0, A, C, Tt);
                for (long long i = 0; i < C; ++i)
                    for (long long c = 0; c <= i; ++c) Dm[i * C + c] = (REAL)(G[i] * Gi[c]);
            } else {
                if (!inv) FN(mm_bt)(gemm, LOWER_OUT, C, C, dk, 1, k, dk, k, 0, KK, C, Tt);
                FN(mm_bt)(gemm, LOWER_OUT, C, C, dk, 1, q, dk, k, 0, A, C, Tt);
                for (long long i = 0; a && i < C; ++i) {
                    double d = 1.0;                    /* prod a over (c, i], c = i, i-1, .. */
                    for (long long c = i; c >= 0; --c) {
                        Dm[i * C + c] = (REAL)d;
                        if (!inv) KK[i * C + c] = (REAL)(KK[i * C + c] * d);
                        A[i * C + c] = (REAL)(A[i * C + c] * d);
                        d *= a[c];
                    }
                }
            }
            for (long long i = 0; i < C; ++i)                            /* attn = tril(QK^T D) */
                for (long long c = i + 1; c < C; ++c) A[i * C + c] = 0;
            if (inv)                                   /* T as the forward recorded it */
                memcpy(Tf, inv + row * dk, sizeof(REAL) * C * C);
            else
                FN(ut_inverse)(C, KK, b, Tm, Tf, dM);          /* dM: T diag(beta), unused */
            /* dU, dK_e (dS' = the incoming dS), Dv; dS <- g_C dS' + (Q g)^T dY */
            FN(mm)(gemm, 1, UPPER_A, C, dv, C, 1, A, C, dy, dv, 0, dU, dv);
            FN(mm)(gemm, 0, FULL, C, dv, dk, 1, kw, dk, dS, dv, 1, dU, dv);
            FN(mm_bt)(gemm, FULL, C, dk, dv, 1, u, dv, dS, 0, dke, dk, Tt);
            FN(mm)(gemm, 1, UPPER_A, C, dv, C, 1, Tf, C, dU, dv, 0, Dv, dv);
            FN(mm)(gemm, 1, FULL, dk, dv, C, 1, qs, dk, dy, dv, a ? (REAL)G[C - 1] : 1,
                 dS, dv);
            /* dY S and NK = Dv S (Sw = S, transposed once); dY U^T and -Dv U^T (lower) */
            FN(transpose)(dk, dv, S, Sw);
            FN(mm)(gemm, 0, FULL, C, dk, dv, 1, dy, dv, Sw, dk, 0, dq, dk);
            FN(mm)(gemm, 0, FULL, C, dk, dv, 1, Dv, dv, Sw, dk, 0, NK, dk);
            FN(transpose)(C, dv, u, Ut);
            FN(lower_xyt)(gemm, C, dv, 1, dy, Ut, dA);
            FN(lower_xyt)(gemm, C, dv, -1, Dv, Ut, dM);
            for (long long i = 0; i < C; ++i) {
                REAL *ai = dA + i * C, *mi = dM + i * C;             /* M = -strict_tril(..) D */
                if (a) {
                    REAL gr = (REAL)G[i], er = (REAL)E[i];
                    for (long long c = 0; c <= i; ++c) ai[c] *= Dm[i * C + c];
                    for (long long c = 0; c < i; ++c) mi[c] *= Dm[i * C + c];
                    for (long long c = 0; c < dk; ++c) {
                        dq[i * dk + c] *= gr;
                        dke[i * dk + c] *= er;
                    }
                }
                for (long long c = i + 1; c < C; ++c) ai[c] = 0;
                for (long long c = i; c < C; ++c) mi[c] = 0;
                for (long long c = 0; c < dv; ++c) u[i * dv + c] = b[i] * Dv[i * dv + c];   /* dV */
                for (long long c = 0; c < dk; ++c) Kr[i * dk + c] = b[i] * k[i * dk + c];  /* B K */
            }
            FN(mm)(gemm, 1, FULL, dk, dv, C, -1, ks, dk, u, dv, 1, dS, dv);  /* - (K g)^T dV */
            /* M K (in Kg), NK <- M K - g NK: dK += B NK + M^T B K, dB = Dv . V + K . NK */
            FN(mm)(gemm, 0, LOWER_A, C, dk, C, 1, dM, C, k, dk, 0, Kg, dk);
            for (long long i = 0; i < C; ++i) {
                REAL gi = a ? (REAL)G[i] : 1, *ni = NK + i * dk;
                for (long long c = 0; c < dk; ++c) {
                    ni[c] = Kg[i * dk + c] - gi * ni[c];
                    dke[i * dk + c] += b[i] * ni[c];
                }
                db[i] = (REAL)(FN(dot)(Dv + i * dv, v + i * dv, dv) + FN(dot)(k + i * dk, ni, dk));
            }
            FN(mm)(gemm, 1, UPPER_A, C, dk, C, 1, dM, C, Kr, dk, 1, dke, dk);
            FN(mm)(gemm, 1, UPPER_A, C, dk, C, 1, dA, C, q, dk, 1, dke, dk);
            FN(mm)(gemm, 0, LOWER_A, C, dk, C, 1, dA, C, k, dk, 1, dq, dk);
            for (long long t = C - 1; a && t >= 0; --t) {  /* sum_{s >= t} (q_s dq_s - v_s dv_s) */
                carry[h] += FN(dot)(q + t * dk, dq + t * dk, dk) - FN(dot)(v + t * dv, u + t * dv, dv);
                dAlpha[row + t] = (REAL)(carry[h] / a[t]);
            }
        }
    }
    free(buf);
    free(Tm);
    free(group);
    return 0;
}
