/* The fused dense block kernels of linear_dense.h for one element type: included once per LUCE_T
 * (double, float) with LUCE_SFX (f64, f32), LUCE_FMA_T, LUCE_DENSE_VEC (elements per AVX-512 vector)
 * and LUCE_DENSE_FOLD (1: a panel's float32 gradient sums added into float64 ones), LUCE_DENSE_UNROLL_FMA,
 * LUCE_EXP and LUCE_LOG_TINY; all #undef'd at the end, ready for the next type. */
#define LUCE_FN(name) LUCE_CAT(name, LUCE_SFX)

/* K rounded up to whole vectors: the padded width of Wᵀ, the logits and the gradient rows. */
LUCE_INLINE ptrdiff_t LUCE_FN(luce_dense_pad_)(ptrdiff_t K)
{
    return (K + LUCE_DENSE_VEC - 1) / LUCE_DENSE_VEC * LUCE_DENSE_VEC;
}

/* Elements of LUCE_T scratch the kernels below need (the caller allocates it; doubles: d·KP more).
 * cols: K (loss and gradient), 2K (Hessian product with the probabilities), K (from stored ones). */
static ptrdiff_t LUCE_FN(luce_dense_workspace_)(ptrdiff_t d, ptrdiff_t K, int both)
{
    const ptrdiff_t kp = LUCE_FN(luce_dense_pad_)(K), cw = both ? 2 * kp : kp;
    return d * cw + cw + (ptrdiff_t)LUCE_DENSE_PANEL_ROWS * cw + (ptrdiff_t)LUCE_DENSE_ROWS * (d + kp) + (LUCE_DENSE_ROWS + 1) * kp;
}

/* The micro-kernel (after inlining nw is a compile-time 1, 2 or 3 vectors, so that the R × nw
 * accumulators live in registers): for m < R, s_m = Σ_{t < T} a[m·am + t·at] · b[t, 0:nw] (b's rows
 * ldb apart) and
 *     FROM_BIAS: out[m, 0:nw] = bias + s_m;  ADD: out[m, 0:nw] += s_m;  ADD_WIDE: wide[m, 0:nw] += s_m
 * (wide: float64, the sum s_m of T terms taken in LUCE_T). The logits are (m, t) = (row, feature),
 * a = x, b = Wᵀ; the gradient is (m, t) = (feature, row), a = xᵀ, b = the residuals. */
LUCE_INLINE void LUCE_FN(luce_dense_micro_)(const LUCE_T *LUCE_RESTRICT a, ptrdiff_t am, ptrdiff_t at, ptrdiff_t T,
                                            const LUCE_T *LUCE_RESTRICT b, ptrdiff_t ldb,
                                            const LUCE_T *LUCE_RESTRICT bias, LUCE_T *LUCE_RESTRICT out,
                                            double *LUCE_RESTRICT wide, ptrdiff_t ldo, const int mode, const int nw)
{
    LUCE_T acc[LUCE_DENSE_ROWS][3 * LUCE_DENSE_VEC];
    LUCE_UNROLL
    for (int m = 0; m < LUCE_DENSE_ROWS; m++)
        for (int c = 0; c < nw; c++)
            acc[m][c] = mode == LUCE_DENSE_ADD ? out[m * ldo + c]
                        : mode == LUCE_DENSE_FROM_BIAS ? bias[c] : (LUCE_T)0;
    for (ptrdiff_t t = 0; t < T; t++) {
        const LUCE_T *LUCE_RESTRICT bt = b + t * ldb;
        LUCE_DENSE_UNROLL_FMA
        for (int m = 0; m < LUCE_DENSE_ROWS; m++) {
            const LUCE_T amt = a[m * am + t * at];
            for (int c = 0; c < nw; c++) acc[m][c] = LUCE_FMA_T(amt, bt[c], acc[m][c]);
        }
    }
    LUCE_UNROLL
    for (int m = 0; m < LUCE_DENSE_ROWS; m++)
        for (int c = 0; c < nw; c++) {
            if (mode == LUCE_DENSE_ADD_WIDE)
                wide[m * ldo + c] += (double)acc[m][c];
            else
                out[m * ldo + c] = acc[m][c];
        }
}

/* The micro-kernel over all cw (a multiple of the vector) columns, 3, 2 or 1 vectors at a time. */
LUCE_INLINE void LUCE_FN(luce_dense_panel_)(const LUCE_T *a, ptrdiff_t am, ptrdiff_t at, ptrdiff_t T,
                                            const LUCE_T *b, ptrdiff_t ldb, const LUCE_T *bias, LUCE_T *out,
                                            double *wide, ptrdiff_t ldo, const int mode, ptrdiff_t cw)
{
    const int v = LUCE_DENSE_VEC;
    ptrdiff_t c = 0;
    for (; c + 3 * v <= cw; c += 3 * v)
        LUCE_FN(luce_dense_micro_)(a, am, at, T, b + c, ldb, bias ? bias + c : NULL, out ? out + c : NULL,
                                   wide ? wide + c : NULL, ldo, mode, 3 * v);
    if (c + 2 * v <= cw)
        LUCE_FN(luce_dense_micro_)(a, am, at, T, b + c, ldb, bias ? bias + c : NULL, out ? out + c : NULL,
                                   wide ? wide + c : NULL, ldo, mode, 2 * v);
    else if (c + v <= cw)
        LUCE_FN(luce_dense_micro_)(a, am, at, T, b + c, ldb, bias ? bias + c : NULL, out ? out + c : NULL,
                                   wide ? wide + c : NULL, ldo, mode, v);
}

/* acc[j, 0:kp] += Σ_{r < T} x[r, j] res[r, 0:kp] for every feature j: the gradient of a panel of T rows
 * (R features per micro-kernel call, the last d mod R of an R-feature call on the last R features). float64: straight into acc;
 * float32: the panel's sums in float32, then added into acc (float64). A long panel spreads the load
 * and store of the R × kp accumulators (through the stack: GCC keeps them in registers only inside
 * the loop) over more FMAs. row: (R + 1)·kp elements of scratch.
 * Meanwhile the next panel's next_bytes from next are prefetched into L2, a share per micro-kernel
 * call: the logits read a panel 8 rows at a time at row stride, which the hardware prefetchers follow
 * late (a pass streaming X from memory ran 1.3x slower than one over a block in cache; prefetched
 * in one burst per tile, 1.1x; spread over the gradient's calls, 1.05x; one thread, one run each). */
LUCE_INLINE void LUCE_FN(luce_dense_panel_grad_)(const LUCE_T *LUCE_RESTRICT x, ptrdiff_t ldx, ptrdiff_t T, ptrdiff_t d,
                                                 const LUCE_T *LUCE_RESTRICT res, ptrdiff_t ldr,
                                                 double *LUCE_RESTRICT acc, ptrdiff_t kp, LUCE_T *LUCE_RESTRICT row,
                                                 const LUCE_T *next, ptrdiff_t next_bytes)
{
    const char *pf = (const char *)next;
    const ptrdiff_t share = (next_bytes / ((d + LUCE_DENSE_ROWS - 1) / LUCE_DENSE_ROWS) + 63) / 64 * 64;
    ptrdiff_t j = 0, done = 0;
    for (; j + LUCE_DENSE_ROWS <= d; j += LUCE_DENSE_ROWS) {
        for (const ptrdiff_t e = done + share < next_bytes ? done + share : next_bytes; done < e; done += 64)
            __builtin_prefetch(pf + done, 0, 2);
        if (LUCE_DENSE_FOLD)
            LUCE_FN(luce_dense_panel_)(x + j, 1, ldx, T, res, ldr, NULL, NULL, acc + j * kp, kp,
                                       LUCE_DENSE_ADD_WIDE, kp);
        else
            LUCE_FN(luce_dense_panel_)(x + j, 1, ldx, T, res, ldr, NULL, (LUCE_T *)(void *)(acc + j * kp), NULL,
                                       kp, LUCE_DENSE_ADD, kp);
    }
    for (; done < next_bytes; done += 64) __builtin_prefetch(pf + done, 0, 2);
    if (j < d && d >= LUCE_DENSE_ROWS) {
        /* the last d mod R features: the micro-kernel over the last R features from zero into tile
         * (the same FMA chains as the loop below), the new features' sums added */
        LUCE_T *zero = row, *tile = row + kp;
        for (ptrdiff_t c = 0; c < kp; c++) zero[c] = (LUCE_T)0;
        LUCE_FN(luce_dense_panel_)(x + d - LUCE_DENSE_ROWS, 1, ldx, T, res, ldr, zero, tile, NULL, kp,
                                   LUCE_DENSE_FROM_BIAS, kp);
        for (; j < d; j++)
            for (ptrdiff_t c = 0; c < kp; c++) acc[j * kp + c] += (double)tile[(j - d + LUCE_DENSE_ROWS) * kp + c];
    }
    for (; j < d; j++) {
        for (ptrdiff_t c = 0; c < kp; c++) row[c] = (LUCE_T)0;
        for (ptrdiff_t r = 0; r < T; r++) {
            const LUCE_T xr = x[r * ldx + j];
            for (ptrdiff_t c = 0; c < kp; c++) row[c] = LUCE_FMA_T(xr, res[r * ldr + c], row[c]);
        }
        for (ptrdiff_t c = 0; c < kp; c++) acc[j * kp + c] += (double)row[c];
    }
}

/* The tile's rows as the micro-kernel reads them: X itself for a whole tile, else the n < R rows
 * copied into xt (R × d) with zero rows after them (their logits and residuals are computed, never read). */
LUCE_INLINE const LUCE_T *LUCE_FN(luce_dense_tile_rows_)(const LUCE_T *X, ptrdiff_t ldx, ptrdiff_t n, ptrdiff_t d,
                                                          LUCE_T *xt, ptrdiff_t *ld)
{
    if (n == LUCE_DENSE_ROWS) {
        *ld = ldx;
        return X;
    }
    for (ptrdiff_t r = 0; r < LUCE_DENSE_ROWS; r++)
        for (ptrdiff_t j = 0; j < d; j++) xt[r * d + j] = r < n ? X[r * ldx + j] : (LUCE_T)0;
    *ld = d;
    return xt;
}

/* The logits of a panel's np rows into Z (row stride cw): per chunk of features whose rows of Wᵀ fit
 * in LUCE_DENSE_W_BYTES (L1), every tile of the panel, so that a wide Wᵀ is read from L2 once per panel
 * instead of once per tile (the loop order of a blocked GEMM). Each logit's FMA chain still runs over
 * the features in order: the result does not depend on the chunk size. xt: R × d scratch. */
LUCE_INLINE void LUCE_FN(luce_dense_panel_logits_)(const LUCE_T *X, ptrdiff_t ldx, ptrdiff_t np, ptrdiff_t d,
                                                   const LUCE_T *Wp, ptrdiff_t cw, const LUCE_T *bias, LUCE_T *Z,
                                                   LUCE_T *xt)
{
    const ptrdiff_t R = LUCE_DENSE_ROWS, whole = np / R * R;
    ptrdiff_t dc = LUCE_DENSE_W_BYTES / (cw * (ptrdiff_t)sizeof(LUCE_T)), ldt = d;
    dc = dc < R ? R : dc;
    if (whole < np) LUCE_FN(luce_dense_tile_rows_)(X + whole * ldx, ldx, np - whole, d, xt, &ldt);
    for (ptrdiff_t j0 = 0; j0 == 0 || j0 < d; j0 += dc) {
        const ptrdiff_t nj = d - j0 < dc ? d - j0 : dc;
        for (ptrdiff_t t0 = 0; t0 < np; t0 += R) {
            const LUCE_T *xs = t0 < whole ? X + t0 * ldx + j0 : xt + j0;
            const ptrdiff_t ld = t0 < whole ? ldx : ldt;
            if (j0 == 0)
                LUCE_FN(luce_dense_panel_)(xs, ld, 1, nj, Wp, cw, bias, Z + t0 * cw, NULL, cw,
                                           LUCE_DENSE_FROM_BIAS, cw);
            else
                LUCE_FN(luce_dense_panel_)(xs, ld, 1, nj, Wp + j0 * cw, cw, bias, Z + t0 * cw, NULL, cw,
                                           LUCE_DENSE_ADD, cw);
        }
    }
}

/* dst[j, off + 0:K] = src[j·lds + 0:K], zeros up to off + kp (the padded copy of Wᵀ or Vᵀ). */
LUCE_INLINE void LUCE_FN(luce_dense_pad_rows_)(const LUCE_T *src, ptrdiff_t lds, ptrdiff_t rows, ptrdiff_t K,
                                               ptrdiff_t kp, LUCE_T *dst, ptrdiff_t ldd)
{
    for (ptrdiff_t j = 0; j < rows; j++)
        for (ptrdiff_t k = 0; k < kp; k++) dst[j * ldd + k] = k < K && src ? src[j * lds + k] : (LUCE_T)0;
}

/* out[j, 0:K] = acc[j, 0:K] (rounded to LUCE_T): the block's d × K sums, without the padding. */
LUCE_INLINE void LUCE_FN(luce_dense_unpad_)(const double *acc, ptrdiff_t d, ptrdiff_t K, ptrdiff_t kp, LUCE_T *out)
{
    for (ptrdiff_t j = 0; j < d; j++)
        for (ptrdiff_t k = 0; k < K; k++) out[j * K + k] = (LUCE_T)acc[j * kp + k];
}

/* The softmax head on a tile's R rows of logits at once, SIMD across the rows (a row of K = 20 logits
 * is too short for SIMD within it: the row-at-a-time head of linear.h spends its time in horizontal
 * reductions, scalar tails and one libm log per row). T holds the tile transposed (K × R, T[k·R + r]
 * = logit k of row r). Numerics as luce_softmax_row_: max shift m, sums in float64, a NaN logit
 * makes its row's sum NaN; log s = log1p(s - 1), exact since s >= 1 (the max term is exp(0) = 1,
 * and 1 is a multiple of ulp(s)). Leaves e = exp(z - m) in T; lse[r] ← m + log s, inv[r] ← 1 / s,
 * zsum[r] ← Σ_k z (float64). */
LUCE_INLINE void LUCE_FN(luce_dense_tile_lse_)(LUCE_T *LUCE_RESTRICT T, ptrdiff_t K, double *LUCE_RESTRICT lse,
                                               double *LUCE_RESTRICT inv, double *LUCE_RESTRICT zsum)
{
    enum { R = LUCE_DENSE_ROWS };
    LUCE_T m[R];
    double s[R], zs[R];
    for (int r = 0; r < R; r++) m[r] = -INFINITY, s[r] = 0.0, zs[r] = 0.0;
    for (ptrdiff_t k = 0; k < K; k++)
        LUCE_ROW_LOOP
        for (int r = 0; r < R; r++) {
            const LUCE_T z = T[k * R + r];
            m[r] = z > m[r] ? z : m[r];
            zs[r] += (double)z;
        }
    for (ptrdiff_t k = 0; k < K; k++) {
        LUCE_T e[R];
        LUCE_ROW_LOOP
        for (int r = 0; r < R; r++) e[r] = LUCE_EXP(T[k * R + r] - m[r]);
        LUCE_ROW_LOOP
        for (int r = 0; r < R; r++) {
            s[r] += (double)e[r];
            T[k * R + r] = e[r];
        }
    }
    for (int r = 0; r < R; r++) {
        lse[r] = (double)m[r] + luce_log1p_f64(s[r] - 1.0);
        inv[r] = 1.0 / s[r];
        zsum[r] = zs[r];
    }
}

/* T[k·R + r] ← p = e / s, at least exp(log tiny) (as the reference's clamp of log p: no probability
 * is subnormal; NaN stays NaN). One rounding more than exp(z - lse), whose argument carries the
 * rounding of lse (|lse|·ε, larger for large logits). */
LUCE_INLINE void LUCE_FN(luce_dense_tile_probabilities_)(LUCE_T *LUCE_RESTRICT T, ptrdiff_t K,
                                                         const double *LUCE_RESTRICT inv)
{
    enum { R = LUCE_DENSE_ROWS };
    const LUCE_T floor = LUCE_EXP(LUCE_LOG_TINY);
    LUCE_T f[R];
    for (int r = 0; r < R; r++) f[r] = (LUCE_T)inv[r];
    for (ptrdiff_t k = 0; k < K; k++)
        LUCE_ROW_LOOP
        for (int r = 0; r < R; r++) {
            const LUCE_T p = T[k * R + r] * f[r];
            T[k * R + r] = p < floor ? floor : p;
        }
}

/* T (K × R) ← Z's first K columns of R rows (row stride ldz), transposed. */
LUCE_INLINE void LUCE_FN(luce_dense_to_cols_)(const LUCE_T *LUCE_RESTRICT Z, ptrdiff_t ldz, ptrdiff_t K,
                                              LUCE_T *LUCE_RESTRICT T)
{
    for (int r = 0; r < LUCE_DENSE_ROWS; r++)
        for (ptrdiff_t k = 0; k < K; k++) T[k * LUCE_DENSE_ROWS + r] = Z[r * ldz + k];
}

/* Z's first K columns of R rows ← T transposed back (the padding columns keep their zero logits:
 * zero columns of Wᵀ and of the bias). */
LUCE_INLINE void LUCE_FN(luce_dense_to_rows_)(const LUCE_T *LUCE_RESTRICT T, ptrdiff_t K, LUCE_T *LUCE_RESTRICT Z,
                                              ptrdiff_t ldz)
{
    for (int r = 0; r < LUCE_DENSE_ROWS; r++)
        for (ptrdiff_t k = 0; k < K; k++) Z[r * ldz + k] = T[k * LUCE_DENSE_ROWS + r];
}

/* The loss-and-gradient head on a tile of n <= R rows (logits in Z, row stride ldz; y, sw from the
 * tile's first row): returns Σ w_i CE_i over the tile (float64, added in row order) and, with grad,
 * leaves the residuals w_i (p_i - q_i) in Z's first n rows, their sum added into gb (may be NULL).
 * T: K·R scratch. Rows n..R (zero rows of x) are computed and never read. */
LUCE_INLINE double LUCE_FN(luce_dense_tile_head_)(LUCE_T *Z, ptrdiff_t ldz, ptrdiff_t K, ptrdiff_t n,
                                                  const intptr_t *y, const LUCE_T *sw, double eps, int grad,
                                                  LUCE_T *T, double *gb)
{
    enum { R = LUCE_DENSE_ROWS };
    double lse[R], inv[R], zsum[R], total = 0.0;
    LUCE_FN(luce_dense_to_cols_)(Z, ldz, K, T);
    LUCE_FN(luce_dense_tile_lse_)(T, K, lse, inv, zsum);
    for (ptrdiff_t r = 0; r < n; r++) {
        double loss = (1.0 - eps) * (lse[r] - (double)Z[r * ldz + y[r]]);
        if (eps != 0.0) loss += eps * (lse[r] - zsum[r] / (double)K);
        total += sw ? (double)sw[r] * loss : loss;
    }
    if (!grad) return total;
    LUCE_FN(luce_dense_tile_probabilities_)(T, K, inv);
    /* p - q, times w: in the transposed tile, SIMD across rows */
    if (eps != 0.0) {
        const LUCE_T share = (LUCE_T)(eps / (double)K);
        for (ptrdiff_t i = 0; i < K * R; i++) T[i] -= share;
    }
    for (ptrdiff_t r = 0; r < n; r++) T[y[r] * R + r] -= (LUCE_T)(1.0 - eps);
    if (sw) {
        LUCE_T w[R];
        for (int r = 0; r < R; r++) w[r] = r < n ? sw[r] : (LUCE_T)0;
        for (ptrdiff_t k = 0; k < K; k++)
            LUCE_ROW_LOOP
            for (int r = 0; r < R; r++) T[k * R + r] *= w[r];
    }
    LUCE_FN(luce_dense_to_rows_)(T, K, Z, ldz);
    if (gb)
        for (ptrdiff_t r = 0; r < n; r++)
            for (ptrdiff_t k = 0; k < K; k++) gb[k] += (double)Z[r * ldz + k];
    return total;
}

/* The probabilities of a tile's rows (logits in Z, row stride ldz) written over them. */
LUCE_INLINE void LUCE_FN(luce_dense_tile_softmax_)(LUCE_T *Z, ptrdiff_t ldz, ptrdiff_t K, LUCE_T *T)
{
    double lse[LUCE_DENSE_ROWS], inv[LUCE_DENSE_ROWS], zsum[LUCE_DENSE_ROWS];
    LUCE_FN(luce_dense_to_cols_)(Z, ldz, K, T);
    LUCE_FN(luce_dense_tile_lse_)(T, K, lse, inv, zsum);
    LUCE_FN(luce_dense_tile_probabilities_)(T, K, inv);
    LUCE_FN(luce_dense_to_rows_)(T, K, Z, ldz);
}

/* The bytes of the panel after the one at row p0 (none after the last). */
LUCE_INLINE ptrdiff_t LUCE_FN(luce_dense_next_bytes_)(ptrdiff_t rows, ptrdiff_t p0, ptrdiff_t ldx)
{
    const ptrdiff_t left = rows - p0 - LUCE_DENSE_PANEL_ROWS;
    return (left <= 0 ? 0 : left < LUCE_DENSE_PANEL_ROWS ? left : LUCE_DENSE_PANEL_ROWS) * ldx * (ptrdiff_t)sizeof(LUCE_T);
}

/* Loss and gradient sums of a dense row block X (rows × d, row stride ldx): returns Σ w_i CE_i
 * (float64); with grad, writes Σ_i x_i ⊗ w_i (p_i - q_i) into Gt (d × K) and adds Σ_i w_i (p_i - q_i)
 * into gb (K, float64; may be NULL). Wt: coefᵀ (d × K, C order). b, sw may be NULL. work: the
 * luce_dense_workspace_(d, K, 0) elements; acc: d·KP doubles (both scratch, contents ignored).
 * Panels of LUCE_DENSE_PANEL_ROWS rows: the logits and the head tile by tile into the panel's
 * residuals, then the panel's gradient (its rows of X again, from L1/L2). */
static LUCE_DISPATCH double LUCE_FN(luce_dense_sums_)(const LUCE_T *X, ptrdiff_t rows, ptrdiff_t d, ptrdiff_t ldx,
                                                     ptrdiff_t K, const LUCE_T *Wt, const LUCE_T *b,
                                                     const intptr_t *y, const LUCE_T *sw, double eps, int grad,
                                                     LUCE_T *work, double *acc, LUCE_T *Gt, double *gb)
{
    const ptrdiff_t kp = LUCE_FN(luce_dense_pad_)(K), R = LUCE_DENSE_ROWS, PR = LUCE_DENSE_PANEL_ROWS;
    LUCE_T *Wp = work, *bias = Wp + d * kp, *Z = bias + kp, *xt = Z + PR * kp, *T = xt + R * d, *row = T + R * kp;
    LUCE_FN(luce_dense_pad_rows_)(Wt, K, d, K, kp, Wp, kp);
    LUCE_FN(luce_dense_pad_rows_)(b, 0, 1, K, kp, bias, kp);
    if (grad)
        for (ptrdiff_t i = 0; i < d * kp; i++) acc[i] = 0.0;
    double total = 0.0;
    for (ptrdiff_t p0 = 0; p0 < rows; p0 += PR) {
        const ptrdiff_t np = rows - p0 < PR ? rows - p0 : PR;
        LUCE_FN(luce_dense_panel_logits_)(X + p0 * ldx, ldx, np, d, Wp, kp, bias, Z, xt);
        for (ptrdiff_t t0 = 0; t0 < np; t0 += R) {
            const ptrdiff_t i0 = p0 + t0, n = np - t0 < R ? np - t0 : R;
            LUCE_T *Zt = Z + t0 * kp;
            total += LUCE_FN(luce_dense_tile_head_)(Zt, kp, K, n, y + i0, sw ? sw + i0 : NULL, eps, grad, T, gb);
        }
        if (!grad) continue;
        LUCE_FN(luce_dense_panel_grad_)(X + p0 * ldx, ldx, np, d, Z, kp, acc, kp, row, X + (p0 + PR) * ldx,
                                        LUCE_FN(luce_dense_next_bytes_)(rows, p0, ldx));
    }
    if (grad) LUCE_FN(luce_dense_unpad_)(acc, d, K, kp, Gt);
    return total;
}

/* Hessian-vector sums of a dense row block: writes Σ_i x_i ⊗ w_i p_i ⊙ (u_i - p_iᵀu_i) into Ht (d × K)
 * and adds the rows' sum into hb (float64, may be NULL), u_i = V x_i + v. Feature j's weights are
 * Wt + j·ld and Vt + j·ld (the rows of [W; V]ᵀ: ld = 2K). With make_state the probabilities
 * p_i = softmax(W x_i + b) are computed (and stored in row i of P, rows × K, unless P is NULL);
 * without, they are read from P and Wt, b are not used (Newton-CG's later products at one point).
 * work: luce_dense_workspace_(d, K, make_state) elements; acc: d·KP doubles. */
static LUCE_DISPATCH void LUCE_FN(luce_dense_hessp_)(const LUCE_T *X, ptrdiff_t rows, ptrdiff_t d, ptrdiff_t ldx,
                                                    ptrdiff_t K, const LUCE_T *Wt, const LUCE_T *Vt, ptrdiff_t ld,
                                                    const LUCE_T *b, const LUCE_T *v, LUCE_T *P, int make_state,
                                                    const LUCE_T *sw, LUCE_T *work, double *acc, LUCE_T *Ht,
                                                    double *hb)
{
    const ptrdiff_t kp = LUCE_FN(luce_dense_pad_)(K), R = LUCE_DENSE_ROWS, PR = LUCE_DENSE_PANEL_ROWS;
    const ptrdiff_t cw = make_state ? 2 * kp : kp, uo = make_state ? kp : 0; /* u's offset in a row */
    LUCE_T *Wp = work, *bias = Wp + d * cw, *Z = bias + cw, *xt = Z + PR * cw, *T = xt + R * d, *row = T + R * kp;
    if (make_state) {
        LUCE_FN(luce_dense_pad_rows_)(Wt, ld, d, K, kp, Wp, cw);
        LUCE_FN(luce_dense_pad_rows_)(b, 0, 1, K, kp, bias, cw);
    }
    LUCE_FN(luce_dense_pad_rows_)(Vt, ld, d, K, kp, Wp + uo, cw);
    LUCE_FN(luce_dense_pad_rows_)(v, 0, 1, K, kp, bias + uo, cw);
    for (ptrdiff_t i = 0; i < d * kp; i++) acc[i] = 0.0;
    for (ptrdiff_t p0 = 0; p0 < rows; p0 += PR) {
        const ptrdiff_t np = rows - p0 < PR ? rows - p0 : PR;
        LUCE_FN(luce_dense_panel_logits_)(X + p0 * ldx, ldx, np, d, Wp, cw, bias, Z, xt);
        for (ptrdiff_t t0 = 0; t0 < np; t0 += R) {
            const ptrdiff_t i0 = p0 + t0, n = np - t0 < R ? np - t0 : R;
            LUCE_T *Zt = Z + t0 * cw;
            if (make_state) LUCE_FN(luce_dense_tile_softmax_)(Zt, cw, K, T);
            for (ptrdiff_t r = 0; r < n; r++) {
                const ptrdiff_t i = i0 + r;
                LUCE_T *u = Zt + r * cw + uo;
                const LUCE_T *p = make_state ? Zt + r * cw : P + i * K;
                if (make_state && P)
                    for (ptrdiff_t k = 0; k < K; k++) P[i * K + k] = p[k];
                LUCE_FN(luce_curvature_row_)(p, u, K, sw ? sw[i] : (LUCE_T)1);
                if (hb)
                    for (ptrdiff_t k = 0; k < K; k++) hb[k] += (double)u[k];
            }
        }
        LUCE_FN(luce_dense_panel_grad_)(X + p0 * ldx, ldx, np, d, Z + uo, cw, acc, kp, row, X + (p0 + PR) * ldx,
                                        LUCE_FN(luce_dense_next_bytes_)(rows, p0, ldx));
    }
    LUCE_FN(luce_dense_unpad_)(acc, d, K, kp, Ht);
}

#undef LUCE_FN
#undef LUCE_T
#undef LUCE_SFX
#undef LUCE_FMA_T
#undef LUCE_DENSE_VEC
#undef LUCE_DENSE_FOLD
#undef LUCE_DENSE_UNROLL_FMA
#undef LUCE_EXP
#undef LUCE_LOG_TINY
