// Written as plain loops over the channels, which the compiler vectorises (AVX2 here, as
// conv.cc); sums go through float blocks into double so that 100,000-row channels stay exact
// to float precision. Nothing in this file may run before addon.cc checked the CPU.
#include "bn.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernel_target.h"

namespace longtail {
namespace {

constexpr long kBlock = 64;  // rows summed in float before adding into double

thread_local std::vector<float> tF1, tF2, tCoef;
thread_local std::vector<double> tD1, tD2;
bool gVector = true;  // the AVX2 passes where C allows (bn_vector: tests compare both forms)

void zero(int C) {
  tF1.assign(C, 0.0f);
  tF2.assign(C, 0.0f);
  tD1.assign(C, 0.0);
  tD2.assign(C, 0.0);
}

// Two forms of each pass, bit-identical to each other: plain loops over the channels (any C),
// and AVX2 ones for C a multiple of 8, in groups of up to 64 channels whose sums stay in
// registers for a block of rows (the plain loops keep them in memory, where the compiler must
// assume they alias the data: 2-3x slower at 16 channels). Both add each channel's values in
// row order (float sums over blocks of kBlock rows, added into double), and both round every
// product and sum as the plain loops compile here (GCC contracts a * b + c into an FMA):
// bench/bn-kernels.cc compares them with an older bn.cc bit for bit.

// x * a + b as the forward pass rounds it (one FMA), before its ReLU: the backward pass of a
// batch norm + ReLU without a residual recomputes its mask (> 0) from x instead of reading y.
inline float pre_relu(float x, float a, float b) { return std::fma(x, a, b); }

// Sums over the rows of x - k and (x - k)^2 per channel, into D1, D2.
void shifted_sums(const float* x, const float* k, double* D1, double* D2, long M, int C) {
  float* s1 = tF1.data();
  float* s2 = tF2.data();
  for (long m0 = 0; m0 < M; m0 += kBlock) {
    const long m1 = std::min(M, m0 + kBlock);
    for (int c = 0; c < C; ++c) s1[c] = s2[c] = 0.0f;
    for (long m = m0; m < m1; ++m) {
      const float* xr = x + m * C;
      for (int c = 0; c < C; ++c) {
        const float d = xr[c] - k[c];
        s1[c] += d;
        s2[c] += d * d;
      }
    }
    for (int c = 0; c < C; ++c) {
      D1[c] += s1[c];
      D2[c] += s2[c];
    }
  }
}

// The gradient's sums: D1 = sum g, D2 = sum g * (x - mean), g = dy (where y > 0 when relu).
void grad_sums(const float* dy, const float* x, const float* y, const float* mean, double* D1, double* D2, long M,
               int C, bool relu, const float* sa, const float* sb) {
  float* s1 = tF1.data();
  float* s2 = tF2.data();
  for (long m0 = 0; m0 < M; m0 += kBlock) {
    const long m1 = std::min(M, m0 + kBlock);
    for (int c = 0; c < C; ++c) s1[c] = s2[c] = 0.0f;
    for (long m = m0; m < m1; ++m) {
      const float* g = dy + m * C;
      const float* xr = x + m * C;
      const float* yr = y + m * C;
      if (relu && sa != nullptr)
        for (int c = 0; c < C; ++c) {
          const float gi = pre_relu(xr[c], sa[c], sb[c]) > 0.0f ? g[c] : 0.0f;
          s1[c] += gi;
          s2[c] += gi * (xr[c] - mean[c]);
        }
      else if (relu)
        for (int c = 0; c < C; ++c) {
          const float gi = yr[c] > 0.0f ? g[c] : 0.0f;
          s1[c] += gi;
          s2[c] += gi * (xr[c] - mean[c]);
        }
      else
        for (int c = 0; c < C; ++c) {
          s1[c] += g[c];
          s2[c] += g[c] * (xr[c] - mean[c]);
        }
    }
    for (int c = 0; c < C; ++c) {
      D1[c] += s1[c];
      D2[c] += s2[c];
    }
  }
}

#ifdef LONGTAIL_X86
// NV vectors of 8 channels a row (C = 8 NV).
template <int NV>
void shifted_sums_v(const float* x, const float* k, double* D1, double* D2, long M, long ld) {
  constexpr int C = 8 * NV;
  __m256 kk[NV];
  for (int v = 0; v < NV; ++v) kk[v] = _mm256_loadu_ps(k + 8 * v);
  alignas(32) float t1[C], t2[C];
  for (long m0 = 0; m0 < M; m0 += kBlock) {
    const long m1 = std::min(M, m0 + kBlock);
    __m256 s1[NV], s2[NV];
    for (int v = 0; v < NV; ++v) s1[v] = s2[v] = _mm256_setzero_ps();
    for (long m = m0; m < m1; ++m) {
      const float* xr = x + m * ld;
      for (int v = 0; v < NV; ++v) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + 8 * v), kk[v]);
        s1[v] = _mm256_add_ps(s1[v], d);
        s2[v] = _mm256_fmadd_ps(d, d, s2[v]);
      }
    }
    for (int v = 0; v < NV; ++v) {
      _mm256_store_ps(t1 + 8 * v, s1[v]);
      _mm256_store_ps(t2 + 8 * v, s2[v]);
    }
    for (int c = 0; c < C; ++c) {
      D1[c] += t1[c];
      D2[c] += t2[c];
    }
  }
}

// FROMX: the ReLU's mask from x * a + b (sa, sb) instead of y.
template <int NV, bool RELU, bool FROMX>
void grad_sums_v(const float* dy, const float* x, const float* y, const float* mean, double* D1, double* D2, long M,
                 long ld, const float* sa, const float* sb) {
  constexpr int C = 8 * NV;
  __m256 mu[NV], aa[NV], bb[NV];
  for (int v = 0; v < NV; ++v) {
    mu[v] = _mm256_loadu_ps(mean + 8 * v);
    if (FROMX) {
      aa[v] = _mm256_loadu_ps(sa + 8 * v);
      bb[v] = _mm256_loadu_ps(sb + 8 * v);
    }
  }
  const __m256 zero = _mm256_setzero_ps();
  alignas(32) float t1[C], t2[C];
  for (long m0 = 0; m0 < M; m0 += kBlock) {
    const long m1 = std::min(M, m0 + kBlock);
    __m256 s1[NV], s2[NV];
    for (int v = 0; v < NV; ++v) s1[v] = s2[v] = zero;
    for (long m = m0; m < m1; ++m) {
      const float* g = dy + m * ld;
      const float* xr = x + m * ld;
      const float* yr = y + m * ld;
      for (int v = 0; v < NV; ++v) {
        __m256 gi = _mm256_loadu_ps(g + 8 * v);
        const __m256 xv = _mm256_loadu_ps(xr + 8 * v);
        if (RELU && FROMX)
          gi = _mm256_and_ps(gi, _mm256_cmp_ps(_mm256_fmadd_ps(xv, aa[v], bb[v]), zero, _CMP_GT_OQ));
        else if (RELU)
          gi = _mm256_and_ps(gi, _mm256_cmp_ps(_mm256_loadu_ps(yr + 8 * v), zero, _CMP_GT_OQ));
        s1[v] = _mm256_add_ps(s1[v], gi);
        s2[v] = _mm256_fmadd_ps(gi, _mm256_sub_ps(xv, mu[v]), s2[v]);
      }
    }
    for (int v = 0; v < NV; ++v) {
      _mm256_store_ps(t1 + 8 * v, s1[v]);
      _mm256_store_ps(t2 + 8 * v, s2[v]);
    }
    for (int c = 0; c < C; ++c) {
      D1[c] += t1[c];
      D2[c] += t2[c];
    }
  }
}

// dx = p * g - q * x + r (and dres = g), g as in grad_sums_v.
template <int NV, bool RELU, bool RES, bool FROMX>
void grad_apply_v(const float* dy, const float* x, const float* y, const float* p, const float* q, const float* r,
                  float* dx, float* dres, long M, long ld, const float* sa, const float* sb) {
  __m256 pp[NV], pq[NV], pr[NV], aa[NV], bb[NV];
  for (int v = 0; v < NV; ++v) {
    pp[v] = _mm256_loadu_ps(p + 8 * v);
    pq[v] = _mm256_loadu_ps(q + 8 * v);
    pr[v] = _mm256_loadu_ps(r + 8 * v);
    if (FROMX) {
      aa[v] = _mm256_loadu_ps(sa + 8 * v);
      bb[v] = _mm256_loadu_ps(sb + 8 * v);
    }
  }
  const __m256 zero = _mm256_setzero_ps();
  for (long m = 0; m < M; ++m) {
    const float* g = dy + m * ld;
    const float* xr = x + m * ld;
    const float* yr = y + m * ld;
    float* out = dx + m * ld;
    for (int v = 0; v < NV; ++v) {
      __m256 gi = _mm256_loadu_ps(g + 8 * v);
      const __m256 xv = _mm256_loadu_ps(xr + 8 * v);
      if (RELU && FROMX)
        gi = _mm256_and_ps(gi, _mm256_cmp_ps(_mm256_fmadd_ps(xv, aa[v], bb[v]), zero, _CMP_GT_OQ));
      else if (RELU)
        gi = _mm256_and_ps(gi, _mm256_cmp_ps(_mm256_loadu_ps(yr + 8 * v), zero, _CMP_GT_OQ));
      if (RES) _mm256_storeu_ps(dres + m * ld + 8 * v, gi);
      const __m256 t = _mm256_mul_ps(pq[v], xv);
      _mm256_storeu_ps(out + 8 * v, _mm256_add_ps(_mm256_fmsub_ps(pp[v], gi, t), pr[v]));
    }
  }
}

// y = x * a + b (+ res) (then ReLU).
template <int NV, bool RELU, bool RES>
void affine_v(const float* x, const float* a, const float* b, float* y, long M, long ld, const float* res) {
  __m256 aa[NV], bb[NV];
  for (int v = 0; v < NV; ++v) {
    aa[v] = _mm256_loadu_ps(a + 8 * v);
    bb[v] = _mm256_loadu_ps(b + 8 * v);
  }
  const __m256 zero = _mm256_setzero_ps();
  for (long m = 0; m < M; ++m) {
    const float* xr = x + m * ld;
    float* yr = y + m * ld;
    for (int v = 0; v < NV; ++v) {
      __m256 t = _mm256_fmadd_ps(_mm256_loadu_ps(xr + 8 * v), aa[v], bb[v]);
      if (RES) t = _mm256_add_ps(t, _mm256_loadu_ps(res + m * ld + 8 * v));
      if (RELU) t = _mm256_max_ps(t, zero);
      _mm256_storeu_ps(yr + 8 * v, t);
    }
  }
}

template <int NV>
void affine_nv(const float* x, const float* a, const float* b, float* y, long M, long ld, bool relu,
               const float* res) {
  if (res != nullptr) {
    if (relu) affine_v<NV, true, true>(x, a, b, y, M, ld, res);
    else affine_v<NV, false, true>(x, a, b, y, M, ld, res);
  } else if (relu) {
    affine_v<NV, true, false>(x, a, b, y, M, ld, nullptr);
  } else {
    affine_v<NV, false, false>(x, a, b, y, M, ld, nullptr);
  }
}

template <int NV>
void grad_nv(const float* dy, const float* x, const float* y, const float* mean, double* D1, double* D2, long M,
             long ld, bool relu, const float* sa, const float* sb) {
  if (relu && sa != nullptr) grad_sums_v<NV, true, true>(dy, x, y, mean, D1, D2, M, ld, sa, sb);
  else if (relu) grad_sums_v<NV, true, false>(dy, x, y, mean, D1, D2, M, ld, nullptr, nullptr);
  else grad_sums_v<NV, false, false>(dy, x, y, mean, D1, D2, M, ld, nullptr, nullptr);
}

template <int NV>
void grad_apply_nv(const float* dy, const float* x, const float* y, const float* p, const float* q, const float* r,
                   float* dx, float* dres, long M, long ld, bool relu, const float* sa, const float* sb) {
  if (relu && dres != nullptr) {
    if (sa != nullptr) grad_apply_v<NV, true, true, true>(dy, x, y, p, q, r, dx, dres, M, ld, sa, sb);
    else grad_apply_v<NV, true, true, false>(dy, x, y, p, q, r, dx, dres, M, ld, nullptr, nullptr);
  } else if (relu) {
    if (sa != nullptr) grad_apply_v<NV, true, false, true>(dy, x, y, p, q, r, dx, nullptr, M, ld, sa, sb);
    else grad_apply_v<NV, true, false, false>(dy, x, y, p, q, r, dx, nullptr, M, ld, nullptr, nullptr);
  } else if (dres != nullptr) {
    grad_apply_v<NV, false, true, false>(dy, x, y, p, q, r, dx, dres, M, ld, nullptr, nullptr);
  } else {
    grad_apply_v<NV, false, false, false>(dy, x, y, p, q, r, dx, nullptr, M, ld, nullptr, nullptr);
  }
}

// Runs CALL(NV, c0) over the channels in groups of up to 64 (NV = 8 a group; rows ld = C apart):
// each channel's sums are independent of the others', so any grouping gives the same bits. C not a
// multiple of 8, or the AVX2 passes switched off: false (the plain loops then).
#define LONGTAIL_BN_GROUPS(C, CALL)                 \
  if (!gVector || (C) % 8 != 0) return false;       \
  for (int c0 = 0; c0 < (C); c0 += 64) {            \
    switch (std::min(64, (C) - c0) / 8) {           \
      case 1: CALL(1, c0); break;                   \
      case 2: CALL(2, c0); break;                   \
      case 3: CALL(3, c0); break;                   \
      case 4: CALL(4, c0); break;                   \
      case 5: CALL(5, c0); break;                   \
      case 6: CALL(6, c0); break;                   \
      case 7: CALL(7, c0); break;                   \
      default: CALL(8, c0); break;                  \
    }                                               \
  }                                                 \
  return true;

bool vec_shifted_sums(const float* x, const float* k, double* D1, double* D2, long M, int C) {
#define CALL(NV, c0) shifted_sums_v<NV>(x + c0, k + c0, D1 + c0, D2 + c0, M, C)
  LONGTAIL_BN_GROUPS(C, CALL)
#undef CALL
}
bool vec_grad_sums(const float* dy, const float* x, const float* y, const float* mean, double* D1, double* D2, long M,
                   int C, bool relu, const float* sa, const float* sb) {
#define CALL(NV, c0)                                                                                  \
  grad_nv<NV>(dy + c0, x + c0, y + c0, mean + c0, D1 + c0, D2 + c0, M, C, relu, sa ? sa + c0 : nullptr, \
              sb ? sb + c0 : nullptr)
  LONGTAIL_BN_GROUPS(C, CALL)
#undef CALL
}
bool vec_grad_apply(const float* dy, const float* x, const float* y, const float* p, const float* q, const float* r,
                    float* dx, float* dres, long M, int C, bool relu, const float* sa, const float* sb) {
#define CALL(NV, c0)                                                                                     \
  grad_apply_nv<NV>(dy + c0, x + c0, y + c0, p + c0, q + c0, r + c0, dx + c0, dres ? dres + c0 : nullptr, M, C, \
                    relu, sa ? sa + c0 : nullptr, sb ? sb + c0 : nullptr)
  LONGTAIL_BN_GROUPS(C, CALL)
#undef CALL
}
bool vec_affine(const float* x, const float* a, const float* b, float* y, long M, int C, bool relu,
                const float* res) {
#define CALL(NV, c0) affine_nv<NV>(x + c0, a + c0, b + c0, y + c0, M, C, relu, res ? res + c0 : nullptr)
  LONGTAIL_BN_GROUPS(C, CALL)
#undef CALL
}
#else
bool vec_shifted_sums(const float*, const float*, double*, double*, long, int) { return false; }
bool vec_grad_sums(const float*, const float*, const float*, const float*, double*, double*, long, int, bool,
                   const float*, const float*) {
  return false;
}
bool vec_grad_apply(const float*, const float*, const float*, const float*, const float*, const float*, float*,
                    float*, long, int, bool, const float*, const float*) {
  return false;
}
bool vec_affine(const float*, const float*, const float*, float*, long, int, bool, const float*) { return false; }
#endif

}  // namespace

void bn_vector(bool on) { gVector = on; }

void bn_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* var, long M,
                int C, float eps, bool relu, const float* res, const BnTrainExtras* extras) {
  // Sums of x - K and (x - K)^2 with K = the first row: shifted, so the variance does not
  // cancel when the mean is large against the spread.
  zero(C);
  std::vector<float>& shift = tCoef;
  shift.assign(x, x + C);
  const float* k = shift.data();
  if (!vec_shifted_sums(x, k, tD1.data(), tD2.data(), M, C)) shifted_sums(x, k, tD1.data(), tD2.data(), M, C);
  std::vector<float> a(C), b(C);
  for (int c = 0; c < C; ++c) {
    const double m1 = tD1[c] / static_cast<double>(M);
    const double v = std::max(0.0, tD2[c] / static_cast<double>(M) - m1 * m1);
    mean[c] = static_cast<float>(k[c] + m1);
    var[c] = static_cast<float>(v);
    const float inv = 1.0f / std::sqrt(static_cast<float>(v) + eps);
    a[c] = gamma[c] * inv;
    b[c] = beta[c] - mean[c] * a[c];
    if (extras != nullptr) extras->invstd[c] = inv;
  }
  if (extras != nullptr) {
    std::copy(a.begin(), a.end(), extras->scale);
    std::copy(b.begin(), b.end(), extras->shift);
    bn_running_update(mean, var, extras, C);
  }
  bn_affine(x, a.data(), b.data(), y, M, C, relu, res);
}

void bn_affine(const float* x, const float* scale, const float* shift, float* y, long M, int C, bool relu,
               const float* res) {
  if (vec_affine(x, scale, shift, y, M, C, relu, res)) return;
  const float* pa = scale;
  const float* pb = shift;
  for (long m = 0; m < M; ++m) {
    const float* xr = x + m * C;
    float* yr = y + m * C;
    if (res != nullptr) {
      const float* rr = res + m * C;
      if (relu)
        for (int c = 0; c < C; ++c) yr[c] = std::max(0.0f, pre_relu(xr[c], pa[c], pb[c]) + rr[c]);
      else
        for (int c = 0; c < C; ++c) yr[c] = pre_relu(xr[c], pa[c], pb[c]) + rr[c];
    } else if (relu) {
      for (int c = 0; c < C; ++c) yr[c] = std::max(0.0f, pre_relu(xr[c], pa[c], pb[c]));
    } else {
      for (int c = 0; c < C; ++c) yr[c] = pre_relu(xr[c], pa[c], pb[c]);
    }
  }
}

void bn_backward(const float* dy, const float* x, const float* y, const float* mean, const float* invstd,
                 const float* gamma, float* dx, float* dgamma, float* dbeta, long M, int C, bool relu,
                 float* dres, const float* scale, const float* shift) {
  zero(C);
  // The mask from x needs no residual: with one, y > 0 depends on it too.
  const float* sa = relu && dres == nullptr ? scale : nullptr;
  const float* sb = sa != nullptr ? shift : nullptr;
  if (!vec_grad_sums(dy, x, y, mean, tD1.data(), tD2.data(), M, C, relu, sa, sb))
    grad_sums(dy, x, y, mean, tD1.data(), tD2.data(), M, C, relu, sa, sb);
  // dx = p * g - q * x + r per channel, with a = gamma * invstd, p = a,
  // q = a * invstd^2 * sum(g * xc) / M, r = q * mean - a * sum(g) / M.
  std::vector<float> p(C), q(C), r(C);
  for (int c = 0; c < C; ++c) {
    const double a = static_cast<double>(gamma[c]) * invstd[c];
    const double qc = a * invstd[c] * invstd[c] * tD2[c] / static_cast<double>(M);
    p[c] = static_cast<float>(a);
    q[c] = static_cast<float>(qc);
    r[c] = static_cast<float>(qc * mean[c] - a * tD1[c] / static_cast<double>(M));
    dbeta[c] = static_cast<float>(tD1[c]);
    dgamma[c] = static_cast<float>(tD2[c] * invstd[c]);
  }
  if (vec_grad_apply(dy, x, y, p.data(), q.data(), r.data(), dx, dres, M, C, relu, sa, sb)) return;
  const float* pp = p.data();
  const float* pq = q.data();
  const float* pr = r.data();
  for (long m = 0; m < M; ++m) {
    const float* g = dy + m * C;
    const float* xr = x + m * C;
    const float* yr = y + m * C;
    float* out = dx + m * C;
    if (relu && dres != nullptr) {
      float* dr = dres + m * C;
      for (int c = 0; c < C; ++c) {
        const float gi = yr[c] > 0.0f ? g[c] : 0.0f;
        dr[c] = gi;
        out[c] = pp[c] * gi - pq[c] * xr[c] + pr[c];
      }
    } else if (relu && sa != nullptr) {
      for (int c = 0; c < C; ++c) {
        const float gi = pre_relu(xr[c], sa[c], sb[c]) > 0.0f ? g[c] : 0.0f;
        out[c] = pp[c] * gi - pq[c] * xr[c] + pr[c];
      }
    } else if (relu) {
      for (int c = 0; c < C; ++c) {
        const float gi = yr[c] > 0.0f ? g[c] : 0.0f;
        out[c] = pp[c] * gi - pq[c] * xr[c] + pr[c];
      }
    } else if (dres != nullptr) {
      float* dr = dres + m * C;
      for (int c = 0; c < C; ++c) {
        dr[c] = g[c];
        out[c] = pp[c] * g[c] - pq[c] * xr[c] + pr[c];
      }
    } else
      for (int c = 0; c < C; ++c) out[c] = pp[c] * g[c] - pq[c] * xr[c] + pr[c];
  }
}

#if defined(__clang__)
#define LONGTAIL_NO_CONTRACT
#else
#define LONGTAIL_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#endif

LONGTAIL_NO_CONTRACT void sgd_momentum(const float* p, const float* g, const float* buf, float* pOut, float* bufOut,
                                       long n, float lr, float momentum, float wd) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  for (long i = 0; i < n; ++i) {
    const float wdp = p[i] * wd;
    const float d = wd == 0.0f ? g[i] : g[i] + wdp;
    const float b = buf[i] * momentum + d;
    const float step = b * lr;
    bufOut[i] = b;
    pOut[i] = p[i] - step;
  }
}

void channel_mean(const float* x, float* y, long B, long P, int C) {
  const float n = static_cast<float>(P);
  std::vector<float>& acc = tCoef;
  for (long b = 0; b < B; ++b) {
    acc.assign(C, 0.0f);
    float* s = acc.data();
    const float* xb = x + b * P * C;
    for (long p = 0; p < P; ++p) {
      const float* xr = xb + p * C;
      for (int c = 0; c < C; ++c) s[c] += xr[c];
    }
    for (int c = 0; c < C; ++c) y[b * C + c] = s[c] / n;
  }
}

LONGTAIL_NO_CONTRACT void bn_running_update(const float* mean, const float* var, const BnTrainExtras* e, int C) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  // The constants as float32 scalars, as tfjs makes them from the same doubles.
  const float keep = static_cast<float>(1.0 - e->momentum);
  const float take = static_cast<float>(e->momentum);
  const float unbias = static_cast<float>(e->unbias);
  for (int c = 0; c < C; ++c) {
    const float unbiased = var[c] * unbias;
    const float m1 = e->runningMean[c] * keep;
    const float m2 = mean[c] * take;
    const float v1 = e->runningVar[c] * keep;
    const float v2 = unbiased * take;
    e->runningMeanOut[c] = m1 + m2;
    e->runningVarOut[c] = v1 + v2;
  }
}

}  // namespace longtail

#if defined(LONGTAIL_X86) && defined(__clang__)
#pragma clang attribute pop
#endif
