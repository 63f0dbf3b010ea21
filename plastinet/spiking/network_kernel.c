/* The compiled step loop of the numpy spiking engine (see network_native.py).
 *
 * Runs whole steps of a network of LIF populations (current-based, exact propagators;
 * conductance-based, forward Euler), Izhikevich populations (forward Euler or his two half
 * steps) and spike sources whose projections are static or carry pair, inhibitory or
 * dopamine-modulated STDP, with per-step noise currents (drawn by numpy, passed in), in the
 * engine's step order: groups, thresholds, pre pathways by projection name, receive, post pathways by
 * projection name, resets, records. The arithmetic is the numpy engine's, operation for
 * operation (compile without floating-point contraction or reassociation): synaptic input
 * is summed per step into a zeroed buffer in (projection, pre neuron or delayed row, synapse)
 * order and then added to the current; a delayed projection's rows (pre neuron, delay) reached
 * at a step come from each population's ring of its last max_delay steps of spikes; trace
 * decays are looked up in tables numpy computed (exp(-(gap dt) / tau) for every gap that does
 * not underflow to 0), so that results are bit-identical to the numpy path. Source spikes are drawn by numpy and passed in.
 */
#include <math.h>
#include <stdlib.h>

typedef long long i64;

typedef struct {
    i64 n;
    i64 dynamic;                    /* 1: LIF (state below); 0: source (events below) */
    double *v, *I_e, *I_i;
    i64 *ref;
    double v_inf, pm, pve, pvi, pe, pi, v_th, v_reset;
    i64 ref_steps;
    double *acc_e, *acc_i;          /* zeroed on entry and on return (n) */
    unsigned char *hold;            /* scratch (n) */
    i64 *spk;                       /* scratch (n): spikes of the current step */
    const i64 *ev_off, *ev_neuron;  /* sources: offsets of steps ev_base, ev_base + 1, ... */
    i64 *out_step, *out_neuron;     /* dynamic: spike records */
    i64 out_n, out_cap;
    /* set by the loop */
    i64 n_spk, touched_e, touched_i;
    const i64 *cur;
    /* spikes of earlier steps (delayed projections) */
    i64 ev_base;                    /* sources: the step of ev_off[0] */
    i64 slots;                      /* dynamic: ring of the last `slots` steps (0: none) */
    i64 *ring, *ring_n;             /* (slots, n) neurons and (slots) counts; slot = step % slots */
    /* conductance LIF (dynamic == 2, forward Euler): I_e, I_i hold g_e, g_i */
    double k, E_l, E_e, E_i, ce, ci;
    i64 use_gi;                     /* g_i has received input (then it enters v and decays) */
    /* Izhikevich (dynamic == 3): I_e holds I (V/s), v_th is v_peak, v_reset is c */
    double *u;
    double a, b, d, h, dt, k2, k1, k0;
    i64 half;                       /* his two half steps of dt / 2 for v, then u */
    /* noise current: draws of steps noise_base, noise_base + 1, ... (n each), NULL: none */
    const double *noise;
    i64 noise_base, noise_target;   /* target 0: I_e, 1: I_i */
    const unsigned char *watch;     /* reward post neurons (n), NULL: none; a step in which one
                                       spikes ends the call (the engine schedules the reward) */
} Pop;

typedef struct {
    i64 pre, post, target;          /* target 0: I_e, 1: I_i, -1: none */
    i64 rule;                       /* 0: static, 1: pair STDP, 2: inhibitory STDP */
    const i64 *indptr_pre, *post_idx, *by_post, *indptr_post;
    double *w;
    double *x_val, *y_val;
    i64 *x_last, *y_last;
    const double *x_tab, *y_tab;
    i64 x_len, y_len, x_reset, y_reset, soft, bounded;
    double x_amp, y_amp, A_plus, A_minus, w_min, w_max;
    double eta, alpha;              /* rule 2: inhibitory STDP (Vogels et al. 2011) */
    /* delays: rows are (pre neuron, delay) pairs numbered in key order j * stride + d */
    i64 max_delay, n_rows;
    const i64 *row_key, *by_row, *indptr_row, *pre_row;
    i64 *rows;                      /* scratch (n_rows) */
    /* rule 3: dopamine STDP (x: pre trace kp, y: post trace km), eligibility c per synapse,
     * w and c integrated exactly from t_last; tables of exp(-(gap dt) / tau) (beyond: 0) for
     * the modulator (n_) and c (ec_), of -expm1(-(gap dt) / tau) (beyond: 1) for tau_s (es_)
     * and tau_c (fc_) */
    double *c;
    i64 *t_last;
    const double *n_tab, *ec_tab, *es_tab, *fc_tab;
    i64 n_len, ec_len, es_len, fc_len;
    double mod_val;                 /* the modulator's value at its last jump mod_last */
    i64 mod_last;
    double tau_s, btc;              /* btc = b tau_c */
} Proj;

static inline double decayed(const double *val, const i64 *last, const double *tab, i64 len,
                             i64 i, i64 step)
{
    i64 gap = step - last[i];
    return val[i] * (gap < len ? tab[gap] : 0.0);
}

static inline double clip(double v, double lo, double hi)
{
    /* numpy's clip: max with the lower bound, then min with the upper, NaN kept */
    double t = isnan(v) ? v : (v > lo ? v : lo);
    return isnan(t) ? t : (t < hi ? t : hi);
}

static inline double table(const double *tab, i64 len, i64 gap, double beyond)
{
    return gap < len ? tab[gap] : beyond;
}

/* dopamine STDP: w and c of synapse s brought exactly up to `step` (the engine's
 * DopamineSTDPState.integrate); returns the new weight */
static inline double da_integrate(Proj *q, i64 s, i64 step)
{
    i64 tl = q->t_last[s], gap = step - tl;
    double n0 = q->mod_val * table(q->n_tab, q->n_len, tl - q->mod_last, 0.0);
    double c = q->c[s];
    double w = q->w[s] + c * (n0 * q->tau_s * table(q->es_tab, q->es_len, gap, 1.0)
                              - q->btc * table(q->fc_tab, q->fc_len, gap, 1.0));
    if (q->bounded)
        w = clip(w, q->w_min, q->w_max);
    q->w[s] = w;
    q->c[s] = c * table(q->ec_tab, q->ec_len, gap, 0.0);
    q->t_last[s] = step;
    return w;
}

static void update(Pop *p)
{
    i64 n = p->n;
    double *v = p->v, *ie = p->I_e, *ii = p->I_i;
    for (i64 i = 0; i < n; i++) {
        double vn = p->v_inf + (v[i] - p->v_inf) * p->pm + p->pve * ie[i] + p->pvi * ii[i];
        unsigned char h = p->ref_steps > 0 && p->ref[i] > 0;
        if (h) {
            vn = v[i];
            p->ref[i] -= 1;
        }
        p->hold[i] = h;
        v[i] = vn;
        ie[i] = ie[i] * p->pe;
        ii[i] = ii[i] * p->pi;
    }
}

/* spikes of population p at step t (t within its history) */
static const i64 *spikes_at(const Pop *p, i64 t, i64 *count)
{
    if (p->dynamic) {
        i64 slot = t % p->slots;
        *count = p->ring_n[slot];
        return p->ring + slot * p->n;
    }
    i64 k = t - p->ev_base;
    *count = p->ev_off[k + 1] - p->ev_off[k];
    return p->ev_neuron + p->ev_off[k];
}

static int cmp_i64(const void *a, const void *b)
{
    i64 x = *(const i64 *)a, y = *(const i64 *)b;
    return (x > y) - (x < y);
}

/* rows of a delayed projection reached at `step`, ascending; returns their number */
static i64 arrivals(Proj *q, Pop *pre, i64 step)
{
    i64 m = 0, stride = q->max_delay + 1;
    for (i64 d = 0; d <= q->max_delay && d <= step; d++) {
        i64 count;
        const i64 *js = d == 0 ? pre->cur : spikes_at(pre, step - d, &count);
        if (d == 0)
            count = pre->n_spk;
        for (i64 a = 0; a < count; a++) {
            i64 key = js[a] * stride + d, lo = 0, hi = q->n_rows;
            while (lo < hi) {
                i64 mid = lo + (hi - lo) / 2;
                if (q->row_key[mid] < key)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < q->n_rows && q->row_key[lo] == key)
                q->rows[m++] = lo;
        }
    }
    qsort(q->rows, (size_t)m, sizeof(i64), cmp_i64);
    return m;
}

static void update_conductance(Pop *p)
{
    i64 n = p->n;
    double *v = p->v, *ge = p->I_e, *gi = p->I_i;
    for (i64 i = 0; i < n; i++) {
        double vn = p->use_gi
            ? v[i] + p->k * (ge[i] * (p->E_e - v[i]) + gi[i] * (p->E_i - v[i]) + p->E_l - v[i])
            : v[i] + p->k * (ge[i] * (p->E_e - v[i]) + p->E_l - v[i]);
        unsigned char h = p->ref_steps > 0 && p->ref[i] > 0;
        if (h) {
            vn = v[i];
            p->ref[i] -= 1;
        }
        p->hold[i] = h;
        v[i] = vn;
        ge[i] = ge[i] * p->ce;
        if (p->use_gi)
            gi[i] = gi[i] * p->ci;
    }
}

static void update_izhikevich(Pop *p)
{
    i64 n = p->n;
    double *vv = p->v, *uu = p->u, *II = p->I_e;
    for (i64 i = 0; i < n; i++) {
        double v = vv[i], u = uu[i], I = II[i];
        if (p->half) {
            v = v + p->h * ((p->k2 * v + p->k1) * v + p->k0 - u + I);
            v = v + p->h * ((p->k2 * v + p->k1) * v + p->k0 - u + I);
            u = u + p->dt * (p->a * (p->b * v - u));
        } else {
            double dv = (p->k2 * v + p->k1) * v + p->k0 - u + I;
            u = u + p->dt * (p->a * (p->b * v - u));
            v = v + p->dt * dv;
        }
        vv[i] = v;
        uu[i] = u;
        II[i] = 0.0;
    }
}

static void pre_pathway(Proj *q, Pop *pre, Pop *post, i64 step)
{
    double *acc = q->target == 0 ? post->acc_e : q->target == 1 ? post->acc_i : 0;
    i64 n_rows = q->max_delay ? arrivals(q, pre, step) : pre->n_spk;
    const i64 *rows = q->max_delay ? q->rows : pre->cur;
    const i64 *indptr = q->max_delay ? q->indptr_row : q->indptr_pre;
    if (n_rows == 0)
        return;
    if (acc) {
        if (q->target == 0)
            post->touched_e = 1;
        else
            post->touched_i = 1;
    }
    for (i64 a = 0; a < n_rows; a++) {
        i64 j = rows[a];
        if (q->rule) {
            double before = decayed(q->x_val, q->x_last, q->x_tab, q->x_len, j, step);
            q->x_val[j] = q->x_reset ? q->x_amp : before + q->x_amp;
            q->x_last[j] = step;
        }
        for (i64 r = indptr[j]; r < indptr[j + 1]; r++) {
            i64 s = q->by_row ? q->by_row[r] : r;
            i64 k = q->post_idx[s];
            double d;
            if (q->rule == 3) {
                d = da_integrate(q, s, step);
                q->c[s] = q->c[s] - q->A_minus * decayed(q->y_val, q->y_last, q->y_tab, q->y_len, k, step);
            } else if (q->rule) {
                d = q->w[s];
                double y = decayed(q->y_val, q->y_last, q->y_tab, q->y_len, k, step);
                double nw = q->rule == 2 ? d + q->eta * (y - q->alpha)
                          : q->soft ? d - q->A_minus * (d - q->w_min) * y : d - q->A_minus * y;
                q->w[s] = q->bounded ? clip(nw, q->w_min, q->w_max) : nw;
            } else {
                d = q->w[s];
            }
            if (acc)
                acc[k] += d;
        }
    }
}

static void post_pathway(Proj *q, Pop *post, i64 step)
{
    for (i64 a = 0; a < post->n_spk; a++) {
        i64 i = post->cur[a];
        double before = decayed(q->y_val, q->y_last, q->y_tab, q->y_len, i, step);
        q->y_val[i] = q->y_reset ? q->y_amp : before + q->y_amp;
        q->y_last[i] = step;
    }
    for (i64 a = 0; a < post->n_spk; a++) {
        i64 i = post->cur[a];
        for (i64 r = q->indptr_post[i]; r < q->indptr_post[i + 1]; r++) {
            i64 s = q->by_post[r];
            if (q->rule == 3) {
                da_integrate(q, s, step);
                q->c[s] = q->c[s] + q->A_plus * decayed(q->x_val, q->x_last, q->x_tab, q->x_len,
                                                        q->pre_row[s], step);
                continue;
            }
            double x = decayed(q->x_val, q->x_last, q->x_tab, q->x_len, q->pre_row[s], step);
            double w = q->w[s];
            double nw = q->rule == 2 ? w + q->eta * x
                      : q->soft ? w + q->A_plus * (q->w_max - w) * x : w + q->A_plus * x;
            q->w[s] = q->bounded ? clip(nw, q->w_min, q->w_max) : nw;
        }
    }
}

static void receive(double *x, double *acc, i64 n)
{
    for (i64 i = 0; i < n; i++) {
        x[i] += acc[i];
        acc[i] = 0.0;
    }
}

/* Izhikevich: a weight w delivered in a step adds w / dt to the next update's input */
static void receive_scaled(double *x, double *acc, i64 n, double dt)
{
    for (i64 i = 0; i < n; i++) {
        x[i] += acc[i] / dt;
        acc[i] = 0.0;
    }
}

static void add_noise(Pop *p, i64 step)
{
    const double *r = p->noise + (step - p->noise_base) * p->n;
    double *x = p->noise_target == 0 ? p->I_e : p->I_i;
    if (p->dynamic == 2 && p->noise_target == 1)
        p->use_gi = 1;
    for (i64 i = 0; i < p->n; i++)
        x[i] += p->dynamic == 3 ? r[i] / p->dt : r[i];
}

/* Run steps n0 .. n0 + K - 1. Returns the number of steps done: fewer than K when a
 * dynamic population's record buffer could not hold another step (flush and call again
 * with the events of the remaining steps) or after a step in which a watched neuron spiked. */
i64 network_steps(Pop *pops, i64 n_pops, Proj *projs, i64 n_projs, i64 n0, i64 K)
{
    for (i64 k = 0; k < K; k++) {
        i64 step = n0 + k;
        for (i64 a = 0; a < n_pops; a++)
            if (pops[a].dynamic && pops[a].out_cap - pops[a].out_n < pops[a].n)
                return k;
        /* groups */
        for (i64 a = 0; a < n_pops; a++) {
            if (pops[a].dynamic == 1)
                update(&pops[a]);
            else if (pops[a].dynamic == 2)
                update_conductance(&pops[a]);
            else if (pops[a].dynamic == 3)
                update_izhikevich(&pops[a]);
        }
        /* thresholds */
        for (i64 a = 0; a < n_pops; a++) {
            Pop *p = &pops[a];
            if (p->dynamic == 3) {
                i64 m = 0;
                for (i64 i = 0; i < p->n; i++)
                    if (p->v[i] >= p->v_th)
                        p->spk[m++] = i;
                p->n_spk = m;
                p->cur = p->spk;
            } else if (p->dynamic) {
                i64 m = 0;
                for (i64 i = 0; i < p->n; i++)
                    if (p->v[i] > p->v_th && !p->hold[i])
                        p->spk[m++] = i;
                p->n_spk = m;
                p->cur = p->spk;
            } else {
                p->cur = spikes_at(p, step, &p->n_spk);
            }
            p->touched_e = p->touched_i = 0;
        }
        /* synapses: pre pathways (by name), receive, post pathways (by name) */
        for (i64 b = 0; b < n_projs; b++) {
            Proj *q = &projs[b];
            if (pops[q->pre].n_spk || q->max_delay)
                pre_pathway(q, &pops[q->pre], &pops[q->post], step);
        }
        for (i64 a = 0; a < n_pops; a++) {
            Pop *p = &pops[a];
            if (p->dynamic == 3) {
                if (p->touched_e)
                    receive_scaled(p->I_e, p->acc_e, p->n, p->dt);
            } else {
                if (p->touched_e)
                    receive(p->I_e, p->acc_e, p->n);
                if (p->touched_i) {
                    p->use_gi = 1;
                    receive(p->I_i, p->acc_i, p->n);
                }
            }
            if (p->noise)
                add_noise(p, step);
        }
        for (i64 b = 0; b < n_projs; b++) {
            Proj *q = &projs[b];
            if (q->rule && pops[q->post].n_spk)
                post_pathway(q, &pops[q->post], step);
        }
        /* resets, records, history */
        i64 stop = 0;
        for (i64 a = 0; a < n_pops; a++) {
            Pop *p = &pops[a];
            if (!p->dynamic)
                continue;
            if (p->slots) {
                i64 slot = step % p->slots;
                for (i64 m = 0; m < p->n_spk; m++)
                    p->ring[slot * p->n + m] = p->spk[m];
                p->ring_n[slot] = p->n_spk;
            }
            for (i64 m = 0; m < p->n_spk; m++) {
                i64 i = p->spk[m];
                p->v[i] = p->v_reset;
                if (p->dynamic == 3)
                    p->u[i] = p->u[i] + p->d;
                if (p->ref_steps)
                    p->ref[i] = p->ref_steps;
                if (p->watch && p->watch[i])
                    stop = 1;
                p->out_step[p->out_n] = step;
                p->out_neuron[p->out_n] = i;
                p->out_n++;
            }
        }
        if (stop)
            return k + 1;
    }
    return K;
}
