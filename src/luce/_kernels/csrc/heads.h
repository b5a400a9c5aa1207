/* The label-tree (hierarchical softmax) kernels: path losses and gradients, path-only SGD, the exact
 * class log-probabilities from the weight rows' scores, best-first and beam top-k search.
 *
 * A tree over K classes has internal nodes numbered breadth first (parents before children); node j has
 * n_j >= 2 children children[j][0..n_j) (row stride: arity; 0 pads the row, the root being nobody's
 * child), c > 0 an internal node, c < 0 the leaf of class -c - 1. A node sends an input to its child e
 * with the softmax probability of the scores z_0 = 0 (the first child is the reference) and
 * z_e = W[r]·x + b[r] for e >= 1, r = edge_row[j] + e - 1: one weight row per child but the first,
 * K - 1 rows in all whatever the arity. With two children this is the binary tree of the sigmoid,
 * P(child 1) = σ(z_1). paths[k][l] / codes[k][l] (row stride max_depth) are the nodes and the child
 * indices from the root to class k's leaf, depths[k] their number; log P(k | x) is the sum over the
 * path of log-softmax terms: every quantity here touches only the nodes it needs.
 *
 * Rows are dense (X, row i at X + i·d) or CSR (data, indices, indptr): luce_row_dot / luce_row_axpy
 * hold the only difference, so every kernel's arithmetic is written once for both layouts.
 */
#ifndef LUCE_HEADS_H
#define LUCE_HEADS_H

#include "luce_exp.h"
#include "luce_simd.h"
#include "luce_tuning.h"

#define LUCE_MAX_ARITY 64 /* the most children a node may have (the estimator checks branching) */

typedef struct {
    const double *X;        /* dense rows when indptr is NULL */
    ptrdiff_t d;            /* features */
    const double *data;     /* CSR rows when indptr is not NULL */
    const int64_t *indices;
    const int64_t *indptr;
} luce_rows;

typedef struct {
    const int64_t *children; /* (n_internal, arity), 0 pads */
    const int64_t *edge_row; /* (n_internal,): the weight row of child 1 */
    ptrdiff_t arity;
    const int64_t *paths;    /* (K, max_depth) */
    const int8_t *codes;     /* (K, max_depth): the child index taken at each level */
    const int64_t *depths;   /* (K,) */
    ptrdiff_t max_depth;
} luce_tree;

/* x·w with eight independent partial sums: the loop vectorises without reassociating (no fast-math). */
LUCE_INLINE double luce_dense_dot(const double *LUCE_RESTRICT x, const double *LUCE_RESTRICT w, ptrdiff_t d)
{
    double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    const ptrdiff_t full = d - d % 8;
    for (ptrdiff_t i = 0; i < full; i += 8)
        for (int u = 0; u < 8; u++) acc[u] = LUCE_FMA(x[i + u], w[i + u], acc[u]);
    double total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (ptrdiff_t i = full; i < d; i++) total = LUCE_FMA(x[i], w[i], total);
    return total;
}

/* Row i times w: O(d) dense, O(nonzeros) CSR. */
LUCE_INLINE double luce_row_dot(const luce_rows *r, ptrdiff_t i, const double *LUCE_RESTRICT w)
{
    if (r->indptr == NULL) return luce_dense_dot(r->X + i * r->d, w, r->d);
    double total = 0.0;
    for (int64_t p = r->indptr[i]; p < r->indptr[i + 1]; p++) total = LUCE_FMA(r->data[p], w[r->indices[p]], total);
    return total;
}

/* out += g · row i. */
LUCE_INLINE void luce_row_axpy(const luce_rows *r, ptrdiff_t i, double g, double *LUCE_RESTRICT out)
{
    if (r->indptr == NULL) {
        const double *x = r->X + i * r->d;
        for (ptrdiff_t j = 0; j < r->d; j++) out[j] = LUCE_FMA(g, x[j], out[j]);
    } else {
        for (int64_t p = r->indptr[i]; p < r->indptr[i + 1]; p++)
            out[r->indices[p]] = LUCE_FMA(g, r->data[p], out[r->indices[p]]);
    }
}

/* out += g · row i, returning the change of ‖out‖² (Σ new² - old² over the entries written): the
 * penalty's row norm follows the update in the same pass (a separate dot product would read the weight
 * row's scattered entries once more: on sparse text rows these reads are the epoch's cost). */
LUCE_INLINE double luce_row_axpy_norm(const luce_rows *r, ptrdiff_t i, double g, double *LUCE_RESTRICT out)
{
    double change = 0.0;
    if (r->indptr == NULL) {
        const double *x = r->X + i * r->d;
        for (ptrdiff_t j = 0; j < r->d; j++) {
            const double old = out[j], now = LUCE_FMA(g, x[j], old);
            out[j] = now;
            change += (now - old) * (now + old);
        }
    } else {
        for (int64_t p = r->indptr[i]; p < r->indptr[i + 1]; p++) {
            const double old = out[r->indices[p]], now = LUCE_FMA(g, r->data[p], old);
            out[r->indices[p]] = now;
            change += (now - old) * (now + old);
        }
    }
    return change;
}

/* Asks for the cache lines node j's scores of CSR row i will read (its weight rows at the row's
 * nonzeros). In a search and on a training row's path the next nodes are known before they are
 * scored, and their weights are a few scattered entries of a matrix far larger than the caches, which
 * the hardware prefetchers cannot guess: issued LUCE_TREE_PREFETCH_AHEAD nodes ahead, the loads of
 * several nodes overlap. Dense rows read whole weight rows, which the hardware follows: nothing to do. */
LUCE_INLINE void luce_prefetch_node(const luce_rows *rows, ptrdiff_t i, const luce_tree *t, int64_t j, const double *W)
{
#if defined(__GNUC__) || defined(__clang__)
    if (rows->indptr == NULL) return;
    const int64_t *ch = t->children + j * t->arity;
    for (ptrdiff_t e = 1; e < t->arity && ch[e] != 0; e++) {
        const double *w = W + (t->edge_row[j] + e - 1) * rows->d;
        for (int64_t p = rows->indptr[i]; p < rows->indptr[i + 1]; p++) __builtin_prefetch(w + rows->indices[p], 0);
    }
#else
    (void)rows, (void)i, (void)t, (void)j, (void)W;
#endif
}

/* The scores z[0..n) of node j's children for row i (z[0] = 0, the reference; scale: the factors of the
 * weight rows, or NULL), returning n. log P(child e) = (z[e] - *m) - *tail with m = max z and
 * tail = log1p(Σ_{e' != argmax} exp(z[e'] - m)): no overflow for any scores, and the most probable
 * child's log-probability is -tail exactly (log1p keeps the tiny tails of saturated nodes, which
 * m + log(Σ exp) would round away). With two children, (z_1 - m) - tail is log σ(z_1) written as
 * min(z_1, 0) - log1p(exp(-|z_1|)). */
LUCE_INLINE ptrdiff_t luce_node_scores(const luce_rows *rows, ptrdiff_t i, const luce_tree *t, int64_t j,
                                       const double *W, const double *b, const double *scale, double *z, double *m,
                                       double *tail)
{
    const int64_t *ch = t->children + j * t->arity;
    const int64_t r0 = t->edge_row[j] - 1; /* child e >= 1 has weight row r0 + e */
    ptrdiff_t n = 1, arg = 0;
    double top = 0.0;
    z[0] = 0.0;
    for (; n < t->arity && ch[n] != 0; n++) {
        const int64_t r = r0 + n;
        const double dot = luce_row_dot(rows, i, W + r * rows->d);
        z[n] = (scale ? scale[r] * dot : dot) + b[r];
        if (z[n] > top) { top = z[n]; arg = n; }
    }
    double rest = 0.0;
    for (ptrdiff_t e = 0; e < n; e++)
        if (e != arg) rest += luce_exp_f64(z[e] - top); /* NaN scores make rest NaN: every term NaN */
    *m = top;
    *tail = luce_log1p_f64(rest);
    return n;
}

/* The same from precomputed weight-row scores s (K - 1 of one input row). */
LUCE_INLINE ptrdiff_t luce_node_scores_from(const double *s, const luce_tree *t, int64_t j, double *z, double *m,
                                            double *tail)
{
    const int64_t *ch = t->children + j * t->arity;
    const int64_t r0 = t->edge_row[j] - 1;
    ptrdiff_t n = 1, arg = 0;
    double top = 0.0;
    z[0] = 0.0;
    for (; n < t->arity && ch[n] != 0; n++) {
        z[n] = s[r0 + n];
        if (z[n] > top) { top = z[n]; arg = n; }
    }
    double rest = 0.0;
    for (ptrdiff_t e = 0; e < n; e++)
        if (e != arg) rest += luce_exp_f64(z[e] - top);
    *m = top;
    *tail = luce_log1p_f64(rest);
    return n;
}

/* Σ_i sw_i · (-log P(y_i | x_i)) over n rows, adding the gradient into gW (K-1, d) and gb (K-1,): for
 * every node on row i's path and each child e >= 1, sw_i (P(e) - [e = c]) x_i into the child's weight
 * row (the gradient of -log softmax(z)_c with respect to z_e). O(nnz·L·arity) per row. sw NULL:
 * weights 1. */
static LUCE_DISPATCH double luce_tree_loss_grad(const luce_rows *rows, ptrdiff_t n, const int64_t *y, const double *sw,
                                                const luce_tree *t, const double *W, const double *b, double *gW,
                                                double *gb)
{
    const ptrdiff_t d = rows->d;
    double total = 0.0, z[LUCE_MAX_ARITY], m, tail;
    for (ptrdiff_t i = 0; i < n; i++) {
        const int64_t k = y[i];
        const double w_i = sw ? sw[i] : 1.0;
        for (int64_t level = 0; level < t->depths[k]; level++) {
            const int64_t node = t->paths[k * t->max_depth + level];
            const int code = t->codes[k * t->max_depth + level];
            const ptrdiff_t n_children = luce_node_scores(rows, i, t, node, W, b, NULL, z, &m, &tail);
            total -= w_i * ((z[code] - m) - tail);
            for (ptrdiff_t e = 1; e < n_children; e++) {
                const int64_t r = t->edge_row[node] + e - 1;
                const double g = w_i * (luce_exp_f64((z[e] - m) - tail) - (e == code));
                luce_row_axpy(rows, i, g, gW + r * d);
                gb[r] += g;
            }
        }
    }
    return total;
}

/* Path-only mini-batch SGD (fastText's training cost): one epoch of the rows order[0:n], batch rows at
 * a time, for one shard of the tree's nodes (the wrapper, _heads.pyx: sgd_epoch, runs the shards).
 *
 * The weights are kept as W[r] = scale[r] · V[r]: the weight decay W ← (1 - η_r λ) W of every row is a
 * multiply of its scale (O(K) per batch instead of O(K·d); Bottou, "Stochastic gradient descent tricks",
 * 2012, section 5.1), and a batch changes only the rows of V on its paths, each by O(nnz) for a CSR row.
 * A scale that falls below 1e-9 is folded back into its row before it can underflow.
 *
 * Exactly the dense mini-batch step on the objective f = Σ sw·nll / Σ sw + λ/2 ‖W‖² (the batch's rows
 * normalised by their weight), with row r's step multiplied by rate[r] (the caller's diagonal
 * preconditioner: η_r = lr · rate[r]); for the weight row r of child e of node j:
 *   W[r] ← (1 - η_r λ) W[r] - η_r · Σ_batch sw_i (P_i(e) - [e = c_ij]) x_i / Σ_batch sw_i,
 *   b[r] ← b[r] - η_r · Σ_batch sw_i (P_i(e) - [e = c_ij]) / Σ_batch sw_i   (when fit_intercept),
 * every gradient taken at the weights before the batch. norm2[r] = ‖V[r]‖² follows the updates (when
 * reg > 0) for the penalty term of the batch objective.
 *
 * Shards: the nodes in blocks of 8 (a cache line of b, scale and norm2); with n_shards = 1 all of them,
 * else the first block (the root and the nodes just below it, on every row's path) is shard 0 and
 * block q >= 1 is in shard 1 + (q - 1) % (n_shards - 1). A node's steps depend only on its own weights
 * (its scores, its gradient, its decay) and on the batch's weight, so each shard runs the batches
 * [b0, b1) for its nodes alone, on whichever thread, with no synchronisation with the others: a node's
 * weight rows are read and written by one thread, and a descheduled thread delays only its own shards
 * until the wrapper's next chunk of batches. (10,000-class text fit of benchmarks/hierarchical.py, 5
 * epochs, 2-core machine: one thread 2.5-2.7 s, two 2.2-2.3 s; beside two busy processes 4.4 s and
 * 4.8-5.1 s, where the earlier split of each batch between the threads, two barriers per batch, took
 * 9.8-61 s.) Each shard writes the batches' objective terms of its nodes
 * where the wrapper adds them in the one order of a serial pass: lbuf[(bi - b0)·batch·max_depth +
 * (t - start)·max_depth + level] the row's loss -w_i log P at that level, pbuf[(bi - b0)·n_rows + r]
 * scale[r]² norm2[r] at the batch's start, and shard 0 the batch weights; so the objective, the
 * weights and everything else do not depend on n_shards or the threads. gbuf: batch · max_depth ·
 * (arity - 1) scratch; owner[j]: luce_shard_of(j) (a division per path node otherwise). Returns 0 when
 * a step or bias is not finite.
 */
LUCE_INLINE int64_t luce_shard_of(int64_t node, int64_t n_shards)
{
    const int64_t q = node / 8;
    return n_shards == 1 || q == 0 ? 0 : 1 + (q - 1) % (n_shards - 1);
}

/* Asks for the cache lines of CSR row order[t] (each shard reads a batch's rows, in random order). */
LUCE_INLINE void luce_prefetch_input_row(const luce_rows *rows, const int64_t *order, ptrdiff_t t, ptrdiff_t stop)
{
#if defined(__GNUC__) || defined(__clang__)
    if (rows->indptr == NULL || t >= stop) return;
    const int64_t i = order[t];
    for (int64_t p = rows->indptr[i]; p < rows->indptr[i + 1]; p += 8) {
        __builtin_prefetch(rows->indices + p, 0);
        __builtin_prefetch(rows->data + p, 0);
    }
#else
    (void)rows, (void)order, (void)t, (void)stop;
#endif
}

/* Whether the node at `level` of row i's path (depth nodes) is the shard's. One shard (the whole path)
 * first asks for the cache lines of the node LUCE_TREE_PREFETCH_AHEAD levels down (at level 0, of
 * those before it too); with several, a row holds one or two of a shard's nodes, so
 * luce_shard_prefetch_row asks for a later row's instead. */
LUCE_INLINE int luce_shard_visit(const luce_rows *rows, ptrdiff_t i, const luce_tree *tr, const int64_t *path,
                                 int64_t depth, int64_t level, const int32_t *owner, int64_t shard, int64_t n_shards,
                                 const double *V)
{
    if (n_shards == 1)
        for (int64_t l = level == 0 ? 0 : level + LUCE_TREE_PREFETCH_AHEAD;
             l <= level + LUCE_TREE_PREFETCH_AHEAD && l < depth; l++)
            luce_prefetch_node(rows, i, tr, path[l], V);
    return owner[path[level]] == shard;
}

/* With several shards: asks for the cache lines of the shard's nodes on the path of row order[t] (a
 * few rows ahead of the one being processed), and for that row's own lines LUCE_SHARD_ROWS_AHEAD
 * rows further. */
LUCE_INLINE void luce_shard_prefetch_row(const luce_rows *rows, const int64_t *y, const int64_t *order, ptrdiff_t t,
                                         ptrdiff_t stop, const luce_tree *tr, const int32_t *owner, int64_t shard,
                                         const double *V)
{
    luce_prefetch_input_row(rows, order, t + LUCE_SHARD_ROWS_AHEAD, stop);
    if (t >= stop) return;
    const int64_t i = order[t], k = y[i];
    const int64_t *path = tr->paths + k * tr->max_depth;
    for (int64_t level = 0; level < tr->depths[k]; level++)
        if (owner[path[level]] == shard) luce_prefetch_node(rows, i, tr, path[level], V);
}

/* For the weight rows r of the shard's nodes: scale[r] ← scale[r] (1 - η_r λ) (folded into V[r] near
 * underflow); or, with pbuf, pbuf[r] ← scale[r]² norm2[r] (the penalty terms at the batch's start). */
LUCE_INLINE void luce_shard_rows(const luce_tree *tr, int64_t shard, int64_t n_shards, ptrdiff_t n_internal,
                                 double *V, ptrdiff_t d, double *scale, double *norm2, const double *rate, double lr,
                                 double reg, double *pbuf)
{
    /* the shard's blocks: all (one shard), only the first (shard 0), or every (n_shards - 1)-th */
    const int64_t step = n_shards == 1 ? 1 : shard == 0 ? n_internal : n_shards - 1;
    for (int64_t q = shard; 8 * q < n_internal; q += step)
        for (int64_t j = 8 * q; j < 8 * q + 8 && j < n_internal; j++)
            for (int64_t e = 1, r = tr->edge_row[j]; e < tr->arity && tr->children[j * tr->arity + e]; e++, r++) {
                if (pbuf) {
                    pbuf[r] = scale[r] * scale[r] * norm2[r];
                    continue;
                }
                scale[r] *= 1.0 - lr * rate[r] * reg;
                if (fabs(scale[r]) < 1e-9) { /* fold the scale into the row before it underflows */
                    double *v = V + r * d;
                    for (ptrdiff_t c = 0; c < d; c++) v[c] *= scale[r];
                    norm2[r] = luce_dense_dot(v, v, d);
                    scale[r] = 1.0;
                }
            }
}

static LUCE_DISPATCH int luce_tree_sgd_shard(const luce_rows *rows, const int64_t *y, const double *sw,
                                             const int64_t *order, ptrdiff_t n, ptrdiff_t batch, ptrdiff_t b0,
                                             ptrdiff_t b1, const luce_tree *tr, ptrdiff_t n_internal,
                                             ptrdiff_t n_rows, double *V, double *b, double *scale, double *norm2,
                                             const double *rate, double lr, double reg, int fit_intercept,
                                             const int32_t *owner, int64_t shard, int64_t n_shards, double *gbuf,
                                             double *lbuf, double *pbuf, double *weights)
{
    const ptrdiff_t d = rows->d, md = tr->max_depth, ga = tr->arity - 1;
    int finite = 1;
    for (ptrdiff_t bi = b0; bi < b1; bi++) {
        const ptrdiff_t start = bi * batch, stop = start + batch < n ? start + batch : n;
        double *lb = lbuf + (bi - b0) * batch * md, weight = 0.0;
        for (ptrdiff_t t = start; t < stop; t++) weight += sw ? sw[order[t]] : 1.0;
        if (shard == 0) weights[bi - b0] = weight;
        if (reg > 0.0) luce_shard_rows(tr, shard, n_shards, n_internal, V, d, scale, norm2, rate, lr, reg,
                                        pbuf + (bi - b0) * n_rows);
        /* the gradients of the shard's nodes on the batch's paths, at the weights before the batch */
        for (ptrdiff_t t = start; t < stop; t++) {
            if (n_shards > 1) luce_shard_prefetch_row(rows, y, order, t + LUCE_SHARD_ROWS_AHEAD, stop, tr, owner, shard, V);
            const int64_t i = order[t], k = y[i];
            const int64_t *path = tr->paths + k * md;
            const double w_i = sw ? sw[i] : 1.0;
            double z[LUCE_MAX_ARITY], m, tail;
            for (int64_t level = 0; level < tr->depths[k]; level++) {
                if (!luce_shard_visit(rows, i, tr, path, tr->depths[k], level, owner, shard, n_shards, V)) continue;
                const int64_t node = path[level];
                const int code = tr->codes[k * md + level];
                const ptrdiff_t n_children = luce_node_scores(rows, i, tr, node, V, b, scale, z, &m, &tail);
                const ptrdiff_t slot = (t - start) * md + level;
                lb[slot] = -w_i * ((z[code] - m) - tail);
                for (ptrdiff_t e = 1; e < n_children; e++)
                    gbuf[slot * ga + e - 1] = w_i * (luce_exp_f64((z[e] - m) - tail) - (e == code));
            }
        }
        /* the weight decay of the shard's rows */
        if (reg > 0.0) luce_shard_rows(tr, shard, n_shards, n_internal, V, d, scale, norm2, rate, lr, reg, NULL);
        if (!(weight > 0.0)) continue; /* a batch of zero-weight rows has only the penalty */
        /* the steps, each row's in row order */
        for (ptrdiff_t t = start; t < stop; t++) {
            if (n_shards > 1) luce_shard_prefetch_row(rows, y, order, t + LUCE_SHARD_ROWS_AHEAD, stop, tr, owner, shard, V);
            const int64_t i = order[t], k = y[i];
            const int64_t *path = tr->paths + k * md;
            for (int64_t level = 0; level < tr->depths[k]; level++) {
                if (!luce_shard_visit(rows, i, tr, path, tr->depths[k], level, owner, shard, n_shards, V)) continue;
                const int64_t node = path[level];
                const int64_t *ch = tr->children + node * tr->arity;
                const ptrdiff_t slot = (t - start) * md + level;
                for (ptrdiff_t e = 1; e < tr->arity && ch[e] != 0; e++) {
                    const int64_t r = tr->edge_row[node] + e - 1;
                    const double step_r = lr * rate[r] * gbuf[slot * ga + e - 1] / weight;
                    const double c = step_r / scale[r];
                    double *v = V + r * d;
                    if (reg > 0.0)
                        norm2[r] += luce_row_axpy_norm(rows, i, -c, v);
                    else
                        luce_row_axpy(rows, i, -c, v);
                    if (fit_intercept) b[r] -= step_r;
                    finite &= isfinite(c) && isfinite(b[r]);
                }
            }
        }
    }
    return finite;
}

/* Log-probability of every class out (K) from one input row's weight-row scores s (K - 1), top down:
 * lp (n_internal) is scratch for each node's log-probability. Parents come before children, so one
 * pass in node order has each node's value before its children need it. */
static LUCE_DISPATCH void luce_tree_log_proba_row(const double *s, const luce_tree *t, ptrdiff_t n_internal, double *lp,
                                                  double *out)
{
    double z[LUCE_MAX_ARITY], m, tail;
    lp[0] = 0.0;
    for (ptrdiff_t j = 0; j < n_internal; j++) {
        const ptrdiff_t n_children = luce_node_scores_from(s, t, j, z, &m, &tail);
        for (ptrdiff_t e = 0; e < n_children; e++) {
            const double value = lp[j] + ((z[e] - m) - tail);
            const int64_t c = t->children[j * t->arity + e];
            if (c > 0)
                lp[c] = value;
            else
                out[-c - 1] = value;
        }
    }
}

/* A binary max-heap on keys (path log-probabilities) with items (node or -class-1), in arrays. */
LUCE_INLINE ptrdiff_t luce_heap_push(double *keys, int64_t *items, ptrdiff_t size, double key, int64_t item)
{
    ptrdiff_t pos = size;
    while (pos > 0) {
        const ptrdiff_t parent = (pos - 1) >> 1;
        if (keys[parent] >= key) break;
        keys[pos] = keys[parent];
        items[pos] = items[parent];
        pos = parent;
    }
    keys[pos] = key;
    items[pos] = item;
    return size + 1;
}

LUCE_INLINE ptrdiff_t luce_heap_pop(double *keys, int64_t *items, ptrdiff_t size, double *key, int64_t *item)
{
    *key = keys[0];
    *item = items[0];
    size -= 1;
    const double last_key = keys[size];
    const int64_t last_item = items[size];
    ptrdiff_t pos = 0;
    for (;;) {
        ptrdiff_t best = 2 * pos + 1;
        if (best >= size) break;
        if (best + 1 < size && keys[best + 1] > keys[best]) best += 1;
        if (last_key >= keys[best]) break;
        keys[pos] = keys[best];
        items[pos] = items[best];
        pos = best;
    }
    keys[pos] = last_key;
    items[pos] = last_item;
    return size;
}

/* The k most probable classes of row r by best-first (uniform-cost) search. A log-probability only
 * decreases along a path (each step adds a log-probability <= 0), so when a leaf leaves the max-heap no
 * unexplored leaf can be more probable: leaves come out in order of decreasing probability and the
 * first k are the exact top k, usually after O(k·L) node evaluations instead of all. keys/items:
 * scratch of n_internal + K + 1 entries (every push but the root's is a child). Writes
 * out_classes/out_logp (k); returns the number of nodes evaluated. */
static LUCE_DISPATCH int64_t luce_tree_topk_row(const luce_rows *rows, ptrdiff_t r, const double *W, const double *b,
                                                const luce_tree *t, ptrdiff_t k, int64_t *out_classes,
                                                double *out_logp, double *keys, int64_t *items)
{
    double z[LUCE_MAX_ARITY], m, tail;
    ptrdiff_t size = luce_heap_push(keys, items, 0, 0.0, 0);
    ptrdiff_t found = 0;
    int64_t scored = 0;
    while (found < k && size > 0) {
        double key;
        int64_t item;
        size = luce_heap_pop(keys, items, size, &key, &item);
        if (item < 0) {
            out_classes[found] = -item - 1;
            out_logp[found] = key;
            found++;
            continue;
        }
        const ptrdiff_t n_children = luce_node_scores(rows, r, t, item, W, b, NULL, z, &m, &tail);
        scored++;
        for (ptrdiff_t e = 0; e < n_children; e++)
            size = luce_heap_push(keys, items, size, key + ((z[e] - m) - tail), t->children[item * t->arity + e]);
    }
    return scored;
}

/* Insert (key, item) into the list of the best n of at most k entries, kept sorted by decreasing key;
 * returns the new length. */
LUCE_INLINE ptrdiff_t luce_sorted_insert(double *keys, int64_t *items, ptrdiff_t n, ptrdiff_t k, double key,
                                         int64_t item)
{
    if (n == k && !(key > keys[k - 1])) return n;
    ptrdiff_t pos = n < k ? n : k - 1;
    while (pos > 0 && keys[pos - 1] < key) {
        keys[pos] = keys[pos - 1];
        items[pos] = items[pos - 1];
        pos--;
    }
    keys[pos] = key;
    items[pos] = item;
    return n < k ? n + 1 : n;
}

/* The k most probable classes of row r among those a beam search of width beam >= k reaches: level by
 * level, only the beam most probable internal nodes of the frontier are expanded (Jelinek, "Statistical
 * methods for speech recognition", 1997, ch. 5; the prediction of probabilistic label trees), so a row
 * costs at most beam·L node evaluations whatever the model's confidence. Approximate: a class whose
 * ancestor fell out of the beam is missed. A frontier node already less probable than the k-th leaf
 * found is dropped (its leaves cannot enter the top k), and the search finds at least min(beam, K)
 * leaves, so the k slots are always filled. Scratch: fkeys/fitems (beam), nkeys/nitems
 * (arity·beam). Writes out_classes/out_logp (k, best first); returns the number of nodes evaluated. */
static LUCE_DISPATCH int64_t luce_tree_beam_row(const luce_rows *rows, ptrdiff_t r, const double *W, const double *b,
                                                const luce_tree *t, ptrdiff_t k, ptrdiff_t beam, int64_t *out_classes,
                                                double *out_logp, double *fkeys, int64_t *fitems, double *nkeys,
                                                int64_t *nitems)
{
    double z[LUCE_MAX_ARITY], m, tail;
    ptrdiff_t n_front = 1, found = 0;
    int64_t scored = 0;
    fkeys[0] = 0.0;
    fitems[0] = 0;
    while (n_front > 0) {
        ptrdiff_t n_next = 0;
        for (ptrdiff_t f = 0; f < n_front && f < LUCE_TREE_PREFETCH_AHEAD; f++)
            luce_prefetch_node(rows, r, t, fitems[f], W);
        for (ptrdiff_t f = 0; f < n_front; f++) {
            if (f + LUCE_TREE_PREFETCH_AHEAD < n_front)
                luce_prefetch_node(rows, r, t, fitems[f + LUCE_TREE_PREFETCH_AHEAD], W);
            const double key = fkeys[f];
            if (found == k && !(key > out_logp[k - 1])) continue;
            const int64_t node = fitems[f];
            const ptrdiff_t n_children = luce_node_scores(rows, r, t, node, W, b, NULL, z, &m, &tail);
            scored++;
            for (ptrdiff_t e = 0; e < n_children; e++) {
                const double value = key + ((z[e] - m) - tail);
                const int64_t c = t->children[node * t->arity + e];
                if (c < 0)
                    found = luce_sorted_insert(out_logp, out_classes, found, k, value, -c - 1);
                else
                    n_next = luce_sorted_insert(nkeys, nitems, n_next, t->arity * beam, value, c);
            }
        }
        n_front = n_next < beam ? n_next : beam; /* the beam most probable nodes of the next level */
        memcpy(fkeys, nkeys, (size_t)n_front * sizeof(double));
        memcpy(fitems, nitems, (size_t)n_front * sizeof(int64_t));
    }
    return scored;
}

#endif
