/* The element-wise stages of the attention cascades (plstm_graph/ops/attention/rows.py), fused
 * per row of a step's scores, for CPU tensors: what SDPA's CPU kernel fuses too. Between the
 * score and value products (GEMMs, left to torch) each row is read and written once, where the
 * PyTorch reference makes a pass over the scores per operator (max, subtract, exp2, sum).
 *
 * Scores S [H, R, L] (heads, rows of a head, keys), row-major and contiguous. A per-row vector
 * (running max m, denominator d, shift, delta) holds row i of head h at x[h * stride + i]: a
 * slice of query tiles of the [H, T, C] layout without a copy. All exponentials are base 2.
 *
 *   online_softmax:  m' = max(m, max_j S_ij)   c = (m' == -inf ? 0 : m')   S_ij = 2^(S_ij - c)
 *                    first step: d = sum_j S_ij;  later: prm_i = 2^(m_i - c), d = d prm + sum_j S_ij
 *   exp2_shifted:    S_ij = 2^(S_ij - shift_i)
 *   delta_times:     dP_ij = P_ij (dP_ij - delta_i)
 *
 * Float builds with AVX2 and FMA take 2^x from a polynomial eight lanes at a time (below);
 * otherwise libm's exp2. Compiled once per scalar type (scalar.h).
 */
#include <math.h>

#include "scalar.h"

#if defined(__AVX2__) && defined(__FMA__) && SCALAR_IS_FLOAT
#include <immintrin.h>
#define VECTOR_EXP2 1
#else
#define VECTOR_EXP2 0
#endif

#if SCALAR_IS_FLOAT
#define EXP2 exp2f
#else
#define EXP2 exp2
#endif

#if VECTOR_EXP2
/* 2^x = 2^n 2^f, n = round(x), f in [-1/2, 1/2], 2^f by Cephes' exp2f polynomial (relative
 * error about 2e-7 on that interval). 0 below -126 (so that masked -inf scores give exactly 0;
 * torch gives subnormals down to -149), +inf from 128 on, NaN kept. The cascades call it on
 * x <= 0 (scores minus at least their row's maximum); on (127, 128) it gives 2^127. */
static inline __m256 exp2_8(__m256 x) {
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
    __m256 n = _mm256_round_ps(xc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(xc, n);
    __m256 p = _mm256_set1_ps(1.535336188319500e-4f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887440266574e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437357674640e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332471162809e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264791363012e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931472028550421e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 r = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    r = _mm256_blendv_ps(r, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-126.0f), _CMP_LT_OQ));
    r = _mm256_blendv_ps(r, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(128.0f), _CMP_GE_OQ));
    return _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

static inline float sum_8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}

static inline float max_8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_shuffle_ps(s, s, 1)));
}

/* The tail of a row (fewer than eight keys) through the same polynomial, so that a row's
 * values do not depend on where its keys fall. */
static inline float exp2_1(float x) {
    float lane[8] = {x};
    _mm256_storeu_ps(lane, exp2_8(_mm256_loadu_ps(lane)));
    return lane[0];
}
#endif

/* row[j] = 2^(row[j] - c) for all j; returns the sum of the new values. */
static inline scalar_t exp2_row(scalar_t *restrict row, int64_t L, scalar_t c) {
    int64_t j = 0;
    scalar_t sum = 0;
#if VECTOR_EXP2
    __m256 shift = _mm256_set1_ps(c), acc = _mm256_setzero_ps();
    for (; j + 8 <= L; j += 8) {
        __m256 e = exp2_8(_mm256_sub_ps(_mm256_loadu_ps(row + j), shift));
        _mm256_storeu_ps(row + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    sum = sum_8(acc);
    for (; j < L; j++) {
        row[j] = exp2_1(row[j] - c);
        sum += row[j];
    }
#else
    for (; j < L; j++) {
        row[j] = EXP2(row[j] - c);
        sum += row[j];
    }
#endif
    return sum;
}

/* max(m, row[0], ..., row[L - 1]), NaN if any of them is NaN (as torch.amax). */
static inline scalar_t max_row(const scalar_t *restrict row, int64_t L, scalar_t m) {
    int64_t j = 0;
#if VECTOR_EXP2
    __m256 acc = _mm256_set1_ps(m), nan = _mm256_cmp_ps(acc, acc, _CMP_UNORD_Q);
    for (; j + 8 <= L; j += 8) {
        __m256 x = _mm256_loadu_ps(row + j);
        acc = _mm256_max_ps(acc, x);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    }
    m = _mm256_movemask_ps(nan) ? NAN : max_8(acc);
#endif
    for (; j < L; j++) m = (row[j] > m || row[j] != row[j]) ? row[j] : m;
    return m;
}

void online_softmax(int64_t H, int64_t R, int64_t L, int64_t stride, int64_t first,
                    scalar_t *restrict S, scalar_t *restrict m, scalar_t *restrict d,
                    scalar_t *restrict prm) {
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < R; i++) {
            scalar_t *row = S + (h * R + i) * L;
            int64_t at = h * stride + i;
            scalar_t old = first ? -INFINITY : m[at];
            scalar_t top = max_row(row, L, old);
            scalar_t c = top == -INFINITY ? 0 : top;  /* a row without keys yet: no inf - inf */
            scalar_t sum = exp2_row(row, L, c);
            if (first) {
                d[at] = sum;
            } else {
                scalar_t rescale = EXP2(old - c);
                prm[h * R + i] = rescale;
                d[at] = d[at] * rescale + sum;
            }
            m[at] = top;
        }
}

void exp2_shifted(int64_t H, int64_t R, int64_t L, int64_t stride, scalar_t *restrict S,
                  const scalar_t *restrict shift) {
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < R; i++) exp2_row(S + (h * R + i) * L, L, shift[h * stride + i]);
}

void delta_times(int64_t H, int64_t R, int64_t L, int64_t stride, scalar_t *restrict dP,
                 const scalar_t *restrict P, const scalar_t *restrict delta) {
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < R; i++) {
            scalar_t *restrict row = dP + (h * R + i) * L;
            const scalar_t *restrict p = P + (h * R + i) * L;
            scalar_t c = delta[h * stride + i];
            for (int64_t j = 0; j < L; j++) row[j] = p[j] * (row[j] - c);
        }
}
