/* Chunkwise rules, one chunk at a time in cache (see native.py): the (gated) delta rule's
 * forward pass and the delta rule's backward reverse sweep (delta_kernel_body.h), and the
 * forward pass of the Hebbian rules (hebbian_kernel_body.h), in float (suffix _f32) and
 * double (_f64).
 *
 * Forward, for each head and each chunk of C steps with entering state S^T (d_k x d_v,
 * row-major):
 *   T  = (I + strict_tril(diag(beta) K K^T))^-1 by forward substitution in double precision,
 *   TB = T diag(beta) (rounded to REAL),
 *   Y  = Q S^T + tril(Q K^T) U,  U = TB (V - K S^T),  S^T <- S^T + K^T U.
 * Identical in exact arithmetic to gated_delta_engine in chunkwise.py (with a gate: see
 * delta_kernel_body.h). Y may be
 * NULL (no read-outs: the backward's recomputation); states (the entering S^T of every chunk)
 * and pseudo (U), if not NULL, are filled for the backward pass. W0 and W (d_v x d_k per head,
 * the caller's layout of the state), if not NULL: S^T is read from W0 at each head's start and
 * the final state written to W at its end (transposed in cache; both forward kernels).
 *
 * Backward: the gradients of the reverse scan of plastinet/fwp/gradients/chunkwise.py
 * (_gated_delta_heads), with fewer products, per chunk from the last: see delta_kernel_body.h.
 *
 * BLAS is the caller's cblas_?gemm (BLAS_INT: its integer type), so that the products run in
 * numpy's own BLAS. Where the compiler targets AVX2 and FMA, the float products whose columns
 * come in multiples of 8 run instead in small_gemm.h (cache-resident, no packing).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef BLAS_INT
#define BLAS_INT long long
#endif
typedef BLAS_INT bint;
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
/* Gates whose product over a chunk stays >= RATIO_MIN form the decayed products
 * sum_j x_tj y_tauj g_t / g_tau as one product (x g)(y / g)^T: each term is then rounded like
 * the direct one (factors within 1e12 of 1: no under- or overflow); below it, running
 * products of the gates. */
#define RATIO_MIN 1e-12
/* Chunks of at least SPLIT steps form their lower-triangular C x C products in two halves
 * (see lower_xyt in delta_kernel_body.h). */
#ifndef SPLIT
#define SPLIT 64
#endif

/* shapes of the products (see small_sgemm): all of C; only the tiles of C that meet its lower
 * triangle; op(A) lower triangular (the sums stop at the diagonal); op(A) upper triangular
 * (the sums start at the diagonal). BLAS forms all of C from all of op(A). */
enum { FULL = 0, LOWER_OUT = 1, LOWER_A = 2, UPPER_A = 3 };

#if defined(__AVX2__) && defined(__FMA__)
#include "small_gemm.h"
#endif

#define REAL float
#define UREAL uint32_t
#define FN(name) name##_f32
#ifdef HAVE_SMALL_GEMM
#define SMALL_GEMM small_sgemm
#endif
#include "delta_kernel_body.h"
#include "hebbian_kernel_body.h"
#undef REAL
#undef UREAL
#undef FN
#undef SMALL_GEMM

#define REAL double
#define UREAL uint64_t
#define FN(name) name##_f64
#include "delta_kernel_body.h"
#include "hebbian_kernel_body.h"
