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
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef BLAS_INT
#define BLAS_INT long long
#endif
typedef BLAS_INT bint;
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
/* the loops' checks: numbers per head (native.SCREEN_COLS) and their columns, see
 * FN(screen_chunk) */
#define SCREEN_COLS 7
enum { SCREEN_Y = 3, SCREEN_W = 4, SCREEN_GAIN = 5, SCREEN_GATE = 6 };
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

/* The forward loops' heads on threads of their own: heads [0, N) in `threads` contiguous
 * groups (as equal as they divide), the first on the calling thread, the others on threads
 * started here and joined before return (none outlives the call); fn(args, h0, h1) runs
 * heads [h0, h1) and returns its status (0: done). A group whose thread cannot be started
 * runs on the calling thread. Heads are independent, so the results do not depend on the
 * grouping. Returns the first nonzero status, else 0. */
#define MAX_THREADS 64
/* p + h0 * per where p is not NULL: the start of head h0's part of an array (in the groups) */
#define HEAD(p, per) ((p) ? (p) + h0 * (per) : NULL)
typedef int (*heads_fn)(void *args, long long h0, long long h1);
struct heads_job {
    heads_fn fn;
    void *args;
    long long h0, h1;
    int status;
};

static void *heads_job_run(void *p)
{
    struct heads_job *job = p;
    job->status = job->fn(job->args, job->h0, job->h1);
    return NULL;
}

static int run_heads(heads_fn fn, void *args, long long N, long long threads)
{
    struct heads_job jobs[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS];
    long long g = threads < 1 ? 1 : threads > N ? N : threads;
    if (g > MAX_THREADS) g = MAX_THREADS;
    if (g < 1) g = 1;
    for (long long t = 0; t < g; ++t) {
        jobs[t] = (struct heads_job){fn, args, t * N / g, (t + 1) * N / g, 0};
        started[t] = t > 0 && pthread_create(&ids[t], NULL, heads_job_run, &jobs[t]) == 0;
    }
    heads_job_run(&jobs[0]);
    int status = jobs[0].status;
    for (long long t = 1; t < g; ++t) {
        if (started[t]) pthread_join(ids[t], NULL);
        else heads_job_run(&jobs[t]);
        if (!status) status = jobs[t].status;
    }
    return status;
}

#define REAL float
#define UREAL uint32_t
#define FN(name) name##_f32
#ifdef HAVE_SMALL_GEMM
#define SMALL_GEMM small_sgemm
#define SMALL_GEMM_ROWS small_sgemm_rows
#endif
#include "delta_kernel_body.h"
#include "hebbian_kernel_body.h"
#undef REAL
#undef UREAL
#undef FN
#undef SMALL_GEMM
#undef SMALL_GEMM_ROWS

#define REAL double
#define UREAL uint64_t
#define FN(name) name##_f64
#include "delta_kernel_body.h"
#include "hebbian_kernel_body.h"
