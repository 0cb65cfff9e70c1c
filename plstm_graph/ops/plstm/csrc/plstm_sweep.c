/* The pLSTM recurrence, one DAG edge at a time in topological order, for CPU tensors, and
 * the direct term D_n (q_n . k_n) v_n.
 *
 * Per head h, for the DAG edges of one weakly connected component (one graph of a batch) at
 * positions p in level order:
 *
 *   C_p  = S_e k_a v_a^T + sum_{line l: p' -> p} T_l C_p'      a = src p, e = edge id of p
 *   h_n += M_e C_p^T q_n                                       n = dst p
 *
 * and the adjoint sweep, positions in reverse, after the component's cells are swept again:
 *
 *   G_p  = M_e q_n dh_n^T + sum_{line l: p -> p''} T_l G_p''    dT_l = <G_p'', C_p>
 *   dS_e = k_a^T G_p v_a   dk_a += S_e G_p v_a   dv_a += S_e G_p^T k_a
 *   dq_n += M_e C_p dh_n   dM_e = q_n^T C_p dh_n
 *
 * the arithmetic of the level sweep (plstm_graph/ops/plstm/levels.py), written as loops: at
 * molecule size the Python backends spend their time on operator calls and tiny batched matrix
 * products, while the recurrence itself is E * H * K * V multiply-adds per pass. Only one
 * component's cells and adjoints exist at a time (scratch of its size, which stays in cache);
 * nothing of size E * H * K * V is kept between the passes. Compiled once per scalar type with
 * -DSCALAR=float -DSCALAR_IS_FLOAT=1 or -DSCALAR=double.
 *
 * Layouts (row-major, contiguous): q, k [N, H, K]; v, out, grad_out [N, H, V]; S, M [E, H] and
 * T [L, H] indexed by edge / line id; the scratch cells, G [largest component, H, K, V] by
 * position within the component; the scratch gv, cdh [K]. comp_ptr[C + 1] delimits the components' positions; CSR per
 * position: in_ptr[E + 1] over (in_pos, in_line), the line edges ending at p, and
 * out_ptr[E + 1] over (out_pos, out_line), those starting at p.
 *
 * The sweeps are written once (forward_impl, backward_impl) and inlined into the entry points
 * once per common head size (SPECIALISED, at the end) and once for any size.
 */
#include "scalar.h"
#ifdef __AVX2__
#include <immintrin.h>
#endif
#if defined(__GNUC__) || defined(__clang__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif
/* Loops over a head's K or V entries: vectorised, never unrolled completely before (GCC unrolls
 * loops of a known small trip count before it vectorises, and the straight-line code it leaves
 * ran at half the loop's speed in the size-specific copies; the generic copy is as fast either
 * way). */
#define NO_UNROLL _Pragma("GCC unroll 1")
typedef const int64_t *restrict index_p;
typedef const scalar_t *restrict in_p;
typedef scalar_t *restrict out_p;

/* Sums split over LANES partial sums, so that the compiler vectorises them without
 * -ffast-math (which would also let it drop NaN and inf). */
#define LANES 8

INLINE scalar_t dot(in_p x, in_p y, int64_t size)
{
    scalar_t part[LANES] = {0};
    int64_t i = 0;
    NO_UNROLL
    for (; i + LANES <= size; i += LANES)
        for (int64_t u = 0; u < LANES; ++u)
            part[u] += x[i + u] * y[i + u];
    scalar_t sum = 0;
    NO_UNROLL
    for (; i < size; ++i)
        sum += x[i] * y[i];
    for (int64_t u = 0; u < LANES; ++u)
        sum += part[u];
    return sum;
}

/* out = (scale x) y^T, a [rows, cols] matrix; the reference multiplies in this order. */
INLINE void scaled_outer(out_p out, scalar_t scale, in_p x, int64_t rows, in_p y,
                         int64_t cols)
{
    NO_UNROLL
    for (int64_t i = 0; i < rows; ++i) {
        const scalar_t sx = scale * x[i];
        NO_UNROLL
        for (int64_t j = 0; j < cols; ++j)
            out[i * cols + j] = sx * y[j];
    }
}

/* out += t x */
INLINE void axpy(out_p out, scalar_t t, in_p x, int64_t size)
{
    NO_UNROLL
    for (int64_t i = 0; i < size; ++i)
        out[i] += t * x[i];
}

/* out_i = x_i . y for the rows x_i of a [rows, cols] matrix (a cell times a vector, summed
 * over the cell's columns). One dot per row costs a horizontal sum per row; with AVX2 a group
 * of rows is summed into one vector of partial sums each, then the group's sums are transposed
 * together (hadd), which the compiler does not do by itself. */
INLINE void rowdots(out_p out, in_p x, in_p y, int64_t rows, int64_t cols)
{
    int64_t i = 0;
#if defined(__AVX2__) && SCALAR_IS_FLOAT
    if (cols % 8 == 0) {
        for (; i + 8 <= rows; i += 8) {
            __m256 acc[8];
            for (int r = 0; r < 8; ++r) {
                in_p row = x + (i + r) * cols;
                acc[r] = _mm256_setzero_ps();
                NO_UNROLL
                for (int64_t j = 0; j < cols; j += 8)
                    acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(_mm256_loadu_ps(row + j),
                                                                 _mm256_loadu_ps(y + j)));
            }
            const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]),
                                             _mm256_hadd_ps(acc[2], acc[3]));
            const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(acc[4], acc[5]),
                                             _mm256_hadd_ps(acc[6], acc[7]));
            _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                                                    _mm256_permute2f128_ps(u0, u1, 0x31)));
        }
    }
#elif defined(__AVX2__)
    if (cols % 4 == 0) {
        for (; i + 4 <= rows; i += 4) {
            __m256d acc[4];
            for (int r = 0; r < 4; ++r) {
                in_p row = x + (i + r) * cols;
                acc[r] = _mm256_setzero_pd();
                NO_UNROLL
                for (int64_t j = 0; j < cols; j += 4)
                    acc[r] = _mm256_add_pd(acc[r], _mm256_mul_pd(_mm256_loadu_pd(row + j),
                                                                 _mm256_loadu_pd(y + j)));
            }
            const __m256d t0 = _mm256_hadd_pd(acc[0], acc[1]), t1 = _mm256_hadd_pd(acc[2], acc[3]);
            _mm256_storeu_pd(out + i, _mm256_add_pd(_mm256_permute2f128_pd(t0, t1, 0x20),
                                                    _mm256_permute2f128_pd(t0, t1, 0x31)));
        }
    }
#endif
    NO_UNROLL
    for (; i < rows; ++i)
        out[i] = dot(x + i * cols, y, cols);
}

/* Cells of positions [begin, end), one weakly connected component, into `cells` (indexed from
 * `begin`: a component's line edges stay within it); with `out`, also the readout (`read`:
 * scratch of V). */
INLINE void component_cells(int64_t begin, int64_t end, int64_t H, int64_t K, int64_t V,
                            index_p edge, index_p src, index_p dst, index_p in_ptr, index_p in_pos,
                            index_p in_line, in_p q, in_p k, in_p v, in_p S, in_p T, in_p M,
                            out_p cells, out_p read, scalar_t *out)
{
    const int64_t KV = K * V;
    for (int64_t p = begin; p < end; ++p) {
        const int64_t e = edge[p], a = src[p], n = dst[p];
        for (int64_t h = 0; h < H; ++h) {
            out_p c = cells + ((p - begin) * H + h) * KV;
            scaled_outer(c, S[e * H + h], k + (a * H + h) * K, K, v + (a * H + h) * V, V);
            for (int64_t l = in_ptr[p]; l < in_ptr[p + 1]; ++l)
                axpy(c, T[in_line[l] * H + h], cells + ((in_pos[l] - begin) * H + h) * KV, KV);
            if (out == 0)
                continue;
            /* M_e (C^T q), in this order: with an infinite gate, NaN and inf come out where
             * the reference puts them. */
            in_p qn = q + (n * H + h) * K;
            NO_UNROLL
            for (int64_t j = 0; j < V; ++j)
                read[j] = 0;
            NO_UNROLL
            for (int64_t i = 0; i < K; ++i) {
                NO_UNROLL
                for (int64_t j = 0; j < V; ++j)
                    read[j] += qn[i] * c[i * V + j];
            }
            const scalar_t m = M[e * H + h];
            scalar_t *o = out + (n * H + h) * V;
            NO_UNROLL
            for (int64_t j = 0; j < V; ++j)
                o[j] += m * read[j];
        }
    }
}

INLINE void forward_impl(int64_t N, int64_t num_comps, int64_t H, int64_t K, int64_t V,
                         index_p comp_ptr, index_p edge, index_p src, index_p dst, index_p in_ptr,
                         index_p in_pos, index_p in_line, in_p q, in_p k, in_p v, in_p S, in_p T,
                         in_p M, in_p D, out_p cells, out_p read, out_p out)
{
    /* The direct term, D_n (q_n . k_n) v_n, in the reference's order of operations. */
    for (int64_t nh = 0; nh < N * H; ++nh) {
        const scalar_t gate = D[nh] * dot(q + nh * K, k + nh * K, K);
        NO_UNROLL
        for (int64_t j = 0; j < V; ++j)
            out[nh * V + j] = gate * v[nh * V + j];
    }
    for (int64_t comp = 0; comp < num_comps; ++comp)
        component_cells(comp_ptr[comp], comp_ptr[comp + 1], H, K, V, edge, src, dst, in_ptr,
                        in_pos, in_line, q, k, v, S, T, M, cells, read, out);
}

INLINE void backward_impl(int64_t N, int64_t num_comps, int64_t H, int64_t K, int64_t V,
                          index_p comp_ptr, index_p edge, index_p src, index_p dst,
                          index_p in_ptr, index_p in_pos, index_p in_line, index_p out_ptr,
                          index_p out_pos, index_p out_line, in_p q, in_p k, in_p v, in_p S,
                          in_p T, in_p M, in_p D, in_p grad_out, out_p cells, out_p G,
                          out_p gv, out_p cdh, out_p dq,
                          out_p dk, out_p dv, out_p dS, out_p dT, out_p dM, out_p dD)
{
    const int64_t KV = K * V;
    /* The direct term's gradients; they also initialise dq, dk and dv. */
    for (int64_t nh = 0; nh < N * H; ++nh) {
        const scalar_t score = dot(q + nh * K, k + nh * K, K);
        const scalar_t read = dot(grad_out + nh * V, v + nh * V, V);
        const scalar_t d_score = D[nh] * read, gate = D[nh] * score;
        NO_UNROLL
        for (int64_t i = 0; i < K; ++i) {
            dq[nh * K + i] = d_score * k[nh * K + i];
            dk[nh * K + i] = d_score * q[nh * K + i];
        }
        NO_UNROLL
        for (int64_t j = 0; j < V; ++j)
            dv[nh * V + j] = gate * grad_out[nh * V + j];
        dD[nh] = score * read;
    }
    for (int64_t comp = 0; comp < num_comps; ++comp) {
        const int64_t begin = comp_ptr[comp], end = comp_ptr[comp + 1];
        /* The component's cells again (not kept from the forward: one component at a time
         * stays in cache, and nothing of size E * H * K * V lives between the passes). */
        component_cells(begin, end, H, K, V, edge, src, dst, in_ptr, in_pos, in_line, q, k, v,
                        S, T, M, cells, 0, 0);
        for (int64_t p = end - 1; p >= begin; --p) {
            const int64_t e = edge[p], a = src[p], n = dst[p];
            for (int64_t h = 0; h < H; ++h) {
                out_p g = G + ((p - begin) * H + h) * KV;
                in_p c = cells + ((p - begin) * H + h) * KV;
                const scalar_t m = M[e * H + h], s = S[e * H + h];
                in_p qn = q + (n * H + h) * K;
                in_p dhn = grad_out + (n * H + h) * V;
                in_p ka = k + (a * H + h) * K;
                in_p va = v + (a * H + h) * V;
                scaled_outer(g, m, qn, K, dhn, V);
                /* Every successor comes later in level order: its G is final. */
                for (int64_t l = out_ptr[p]; l < out_ptr[p + 1]; ++l) {
                    in_p next = G + ((out_pos[l] - begin) * H + h) * KV;
                    dT[out_line[l] * H + h] = dot(next, c, KV);
                    axpy(g, T[out_line[l] * H + h], next, KV);
                }
                out_p dka = dk + (a * H + h) * K;
                out_p dva = dv + (a * H + h) * V;
                out_p dqn = dq + (n * H + h) * K;
                NO_UNROLL
                for (int64_t i = 0; i < K; ++i)
                    axpy(dva, s * ka[i], g + i * V, V);
                /* G v_a and C dh_n, for dk_a, dS_e and dq_n, dM_e */
                rowdots(gv, g, va, K, V);
                rowdots(cdh, c, dhn, K, V);
                NO_UNROLL
                for (int64_t i = 0; i < K; ++i) {
                    dka[i] += s * gv[i];
                    dqn[i] += m * cdh[i];
                }
                const scalar_t ds = dot(gv, ka, K), dm = dot(cdh, qn, K);
                dS[e * H + h] = ds;
                dM[e * H + h] = dm;
            }
        }
    }
}

/* The entry points. Common head sizes get their own copies of the sweeps, with K and V known to
 * the compiler: a row of a cell becomes a few vector instructions without loop control and
 * remainder code (1.5x faster in float at 16 x 16); other sizes run the generic copy. */
#define SPECIALISED(impl, ARGS)                                 \
    switch (K == V ? K : 0) {                                   \
    case 8: impl(ARGS(8, 8)); break;                            \
    case 16: impl(ARGS(16, 16)); break;                         \
    case 24: impl(ARGS(24, 24)); break;                         \
    case 32: impl(ARGS(32, 32)); break;                         \
    default: impl(ARGS(K, V));                                  \
    }

#define FORWARD_ARGS(K_, V_) N, num_comps, H, K_, V_, comp_ptr, edge, src, dst, in_ptr, in_pos, \
    in_line, q, k, v, S, T, M, D, cells, read, out

void plstm_sweep_forward(int64_t N, int64_t num_comps, int64_t H, int64_t K, int64_t V,
                         index_p comp_ptr, index_p edge, index_p src, index_p dst, index_p in_ptr,
                         index_p in_pos, index_p in_line, in_p q, in_p k, in_p v, in_p S, in_p T,
                         in_p M, in_p D, out_p cells, out_p read, out_p out)
{
    SPECIALISED(forward_impl, FORWARD_ARGS)
}

#define BACKWARD_ARGS(K_, V_) N, num_comps, H, K_, V_, comp_ptr, edge, src, dst, in_ptr, \
    in_pos, in_line, out_ptr, out_pos, out_line, q, k, v, S, T, M, D, grad_out, cells, G, gv, \
    cdh, dq, dk, dv, dS, dT, dM, dD

void plstm_sweep_backward(int64_t N, int64_t num_comps, int64_t H, int64_t K, int64_t V,
                          index_p comp_ptr, index_p edge, index_p src, index_p dst,
                          index_p in_ptr, index_p in_pos, index_p in_line, index_p out_ptr,
                          index_p out_pos, index_p out_line, in_p q, in_p k, in_p v, in_p S,
                          in_p T, in_p M, in_p D, in_p grad_out, out_p cells, out_p G,
                          out_p gv, out_p cdh, out_p dq,
                          out_p dk, out_p dv, out_p dS, out_p dT, out_p dM, out_p dD)
{
    SPECIALISED(backward_impl, BACKWARD_ARGS)
}
