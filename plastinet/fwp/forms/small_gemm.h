/* Float32 matrix products of the chunk loops that fit in cache, without packing (included by
 * delta_kernel.c where the compiler targets AVX2 and FMA; elsewhere BLAS does them all).
 *
 * A chunk's products are small (e.g. 64 x 128 times 128 x 128); OpenBLAS copies ("packs")
 * both operands of every call into its own layout first, which took about 40 % of the BLAS
 * time of the chunk loops (perf, d = 128, C = 64). Here the operands are read where they
 * lie: C is computed in tiles of up to 6 rows x 16 columns held in up to twelve AVX registers,
 * each the sum over p of a broadcast A[i, p] times the row strip B[p, j..j+15] (a strip of B
 * stays in L1 while all row tiles pass it). The m rows are cut into ceil(m / 6) tiles of
 * nearly equal height (m = 32: 5 or 6 rows, not five of 6 and one of 2): a tile of fewer than
 * 4 rows has too few accumulators to hide the latency of its multiply-adds. The stores can
 * scale each row of C by a factor of its own and note the largest entry written (the
 * chunk loops' state update, which then needs no pass of its own over the state). The
 * triangular products skip the tiles above the
 * diagonal or stop the sum at the diagonal, so that they cost about their triangular share.
 */
#include <immintrin.h>

#define HAVE_SMALL_GEMM 1

/* One tile of MR (<= 6) rows and NV (1 or 2) vectors of 8 columns:
 * C = alpha sum_{p < k} a(i, p) B[p, :] + beta C (beta == 0: C not read), with
 * a(i, p) = A[i lda + p], or A[p lda + i] if TA; with PK, pk is raised to the largest
 * |entry| written (as bits, see small_sgemm_rows) and, if rb is not NULL, row r of C scaled
 * by rb[r] instead of beta. The accumulators are named variables (an array of them is kept
 * in memory by gcc 12); PK is a constant, so that the other products' stores stay as they
 * were. */
#define TILE_DECL(r) __m256 c##r##0 = _mm256_setzero_ps(), c##r##1 = _mm256_setzero_ps();
#define TILE_STEP(r)                                                                         \
    if (MR > r) {                                                                            \
        __m256 a = _mm256_broadcast_ss(TA ? A + p * lda + r : A + r * lda + p);              \
        c##r##0 = _mm256_fmadd_ps(a, b0, c##r##0);                                          \
        if (NV == 2) c##r##1 = _mm256_fmadd_ps(a, b1, c##r##1);                              \
    }
#define TILE_STORE1(r, s)                                                                    \
    {                                                                                        \
        float *c = C + r * ldc + 8 * s;                                                      \
        __m256 x = _mm256_mul_ps(al, c##r##s);                                               \
        if (PK && rb)                                                                        \
            x = _mm256_fmadd_ps(_mm256_set1_ps(rb[r]), _mm256_loadu_ps(c), x);               \
        else if (beta != 0.0f)                                                               \
            x = _mm256_fmadd_ps(be, _mm256_loadu_ps(c), x);                                  \
        if (PK)                                                                              \
            *pk = _mm256_max_epu32(*pk, _mm256_and_si256(_mm256_castps_si256(x),             \
                                                         _mm256_set1_epi32(0x7fffffff)));    \
        _mm256_storeu_ps(c, x);                                                              \
    }
#define TILE_STORE(r)                                                                        \
    if (MR > r) {                                                                            \
        TILE_STORE1(r, 0)                                                                    \
        if (NV == 2) TILE_STORE1(r, 1)                                                       \
    }

static inline __attribute__((always_inline)) void
small_tile(const int MR, const int NV, const int TA, const int PK, long long k, const float *A,
           long long lda, const float *B, long long ldb, float alpha, float beta, float *C,
           long long ldc, const float *rb, __m256i *pk)
{
    TILE_DECL(0) TILE_DECL(1) TILE_DECL(2) TILE_DECL(3) TILE_DECL(4) TILE_DECL(5)
    for (long long p = 0; p < k; ++p) {
        const float *b = B + p * ldb;
        __m256 b0 = _mm256_loadu_ps(b);
        __m256 b1 = NV == 2 ? _mm256_loadu_ps(b + 8) : b0;
        TILE_STEP(0) TILE_STEP(1) TILE_STEP(2) TILE_STEP(3) TILE_STEP(4) TILE_STEP(5)
    }
    __m256 al = _mm256_set1_ps(alpha), be = _mm256_set1_ps(beta);
    TILE_STORE(0) TILE_STORE(1) TILE_STORE(2) TILE_STORE(3) TILE_STORE(4) TILE_STORE(5)
}

#define SMALL_TILE_CASE(mr)                                                                  \
    case mr:                                                                                 \
        if (pk) {                                              /* the state update: ta */   \
            if (nv == 2) small_tile(mr, 2, 1, 1, k, A, lda, B, ldb, alpha, beta, C, ldc, rb, pk); \
            else small_tile(mr, 1, 1, 1, k, A, lda, B, ldb, alpha, beta, C, ldc, rb, pk);      \
        } else if (nv == 2) {                                                                \
            if (ta) small_tile(mr, 2, 1, 0, k, A, lda, B, ldb, alpha, beta, C, ldc, rb, pk); \
            else small_tile(mr, 2, 0, 0, k, A, lda, B, ldb, alpha, beta, C, ldc, rb, pk);    \
        } else {                                                                             \
            if (ta) small_tile(mr, 1, 1, 0, k, A, lda, B, ldb, alpha, beta, C, ldc, rb, pk); \
            else small_tile(mr, 1, 0, 0, k, A, lda, B, ldb, alpha, beta, C, ldc, rb, pk);    \
        }                                                                                    \
        break;

static void small_tile_any(int mr, int nv, int ta, long long k, const float *A, long long lda,
                           const float *B, long long ldb, float alpha, float beta, float *C,
                           long long ldc, const float *rb, __m256i *pk)
{
    switch (mr) {
        SMALL_TILE_CASE(1)
        SMALL_TILE_CASE(2)
        SMALL_TILE_CASE(3)
        SMALL_TILE_CASE(4)
        SMALL_TILE_CASE(5)
        SMALL_TILE_CASE(6)
    }
}

/* C (m x n, n a multiple of 8) = alpha op(A) B + beta C, op(A) = A (m x k, row-major, lda)
 * or, with ta, the transpose of A (k x m); B (k x n, ldb). shape: FULL; LOWER_OUT: only the
 * tiles that meet the lower triangle of C (j <= i) are formed, the others left as they were;
 * LOWER_A: op(A) is lower triangular (zero above the diagonal), the sum for rows i stops at
 * p = i (the last row of the tile); UPPER_A: op(A) is upper triangular, the sum starts at
 * p = i (the first row of the tile). beta == 0: C is not read. peak (NULL: none; with ta
 * only): raised to the largest |entry| of the C written, compared by its bits as an
 * unsigned integer (sign cleared; NaN largest), which spares the caller a pass over C; then
 * rb (NULL: none) scales row i of C by rb[i] instead of beta. */
static void small_sgemm_rows(int ta, int shape, long long m, long long n, long long k,
                             float alpha, const float *A, long long lda, const float *B,
                             long long ldb, float beta, float *C, long long ldc,
                             const float *rb, uint32_t *peak)
{
    long long tiles = (m + 5) / 6;           /* row tiles of 5 or 6 rows where m >= 20 */
    __m256i top = _mm256_setzero_si256(), *pk = peak ? &top : NULL;
    for (long long j = 0; j < n; j += 16) {
        int nv = n - j >= 16 ? 2 : 1;
        for (long long t = 0; t < tiles; ++t) {
            long long i = t * m / tiles;
            int mr = (int)((t + 1) * m / tiles - i);
            long long p0 = 0, p1 = k;                  /* the sum runs over p0 <= p < p1 */
            if (shape == LOWER_OUT && j >= i + mr) continue;
            if (shape == LOWER_A && i + mr < k) p1 = i + mr;
            if (shape == UPPER_A) p0 = i < k ? i : k;
            small_tile_any(mr, nv, ta, p1 - p0, ta ? A + p0 * lda + i : A + i * lda + p0, lda,
                           B + p0 * ldb + j, ldb, alpha, beta, C + i * ldc + j, ldc,
                           rb ? rb + i : NULL, pk);
        }
    }
    if (peak) {
        uint32_t lanes[8];
        _mm256_storeu_si256((__m256i *)lanes, top);
        for (int l = 0; l < 8; ++l) *peak = lanes[l] > *peak ? lanes[l] : *peak;
    }
}

static void small_sgemm(int ta, int shape, long long m, long long n, long long k, float alpha,
                        const float *A, long long lda, const float *B, long long ldb,
                        float beta, float *C, long long ldc)
{
    small_sgemm_rows(ta, shape, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, NULL, NULL);
}

/* xt (cols x rows) = x^T for x (rows x cols), rows and cols multiples of 8: by 8 x 8 blocks
 * in registers (a scalar loop writes one number per store and reads across rows). */
static void small_transpose(long long rows, long long cols, const float *x, float *xt)
{
    for (long long i = 0; i < rows; i += 8)
        for (long long c = 0; c < cols; c += 8) {
            const float *s = x + i * cols + c;
            __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + cols);
            __m256 r2 = _mm256_loadu_ps(s + 2 * cols), r3 = _mm256_loadu_ps(s + 3 * cols);
            __m256 r4 = _mm256_loadu_ps(s + 4 * cols), r5 = _mm256_loadu_ps(s + 5 * cols);
            __m256 r6 = _mm256_loadu_ps(s + 6 * cols), r7 = _mm256_loadu_ps(s + 7 * cols);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *d = xt + c * rows + i;
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + rows, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * rows, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * rows, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * rows, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * rows, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * rows, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * rows, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
}
