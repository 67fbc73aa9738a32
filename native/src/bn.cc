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

void zero(int C) {
  tF1.assign(C, 0.0f);
  tF2.assign(C, 0.0f);
  tD1.assign(C, 0.0);
  tD2.assign(C, 0.0);
}

// Two forms of each pass, bit-identical to each other: plain loops over the channels (any C),
// and AVX2 ones for C = 8, 16, ..., 64 (the CIFAR ResNets' widths) whose per-channel sums stay
// in registers for a block of rows (the plain loops keep them in memory, where the compiler must
// assume they alias the data: 2-3x slower at 16 channels). Both add each channel's values in
// row order (float sums over blocks of kBlock rows, added into double), and both round every
// product and sum as the plain loops compile here (GCC contracts a * b + c into an FMA):
// bench/bn-kernels.cc compares them with an older bn.cc bit for bit.

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
               int C, bool relu) {
  float* s1 = tF1.data();
  float* s2 = tF2.data();
  for (long m0 = 0; m0 < M; m0 += kBlock) {
    const long m1 = std::min(M, m0 + kBlock);
    for (int c = 0; c < C; ++c) s1[c] = s2[c] = 0.0f;
    for (long m = m0; m < m1; ++m) {
      const float* g = dy + m * C;
      const float* xr = x + m * C;
      const float* yr = y + m * C;
      if (relu)
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
void shifted_sums_v(const float* x, const float* k, double* D1, double* D2, long M) {
  constexpr int C = 8 * NV;
  __m256 kk[NV];
  for (int v = 0; v < NV; ++v) kk[v] = _mm256_loadu_ps(k + 8 * v);
  alignas(32) float t1[C], t2[C];
  for (long m0 = 0; m0 < M; m0 += kBlock) {
    const long m1 = std::min(M, m0 + kBlock);
    __m256 s1[NV], s2[NV];
    for (int v = 0; v < NV; ++v) s1[v] = s2[v] = _mm256_setzero_ps();
    for (long m = m0; m < m1; ++m) {
      const float* xr = x + m * C;
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

template <int NV, bool RELU>
void grad_sums_v(const float* dy, const float* x, const float* y, const float* mean, double* D1, double* D2, long M) {
  constexpr int C = 8 * NV;
  __m256 mu[NV];
  for (int v = 0; v < NV; ++v) mu[v] = _mm256_loadu_ps(mean + 8 * v);
  const __m256 zero = _mm256_setzero_ps();
  alignas(32) float t1[C], t2[C];
  for (long m0 = 0; m0 < M; m0 += kBlock) {
    const long m1 = std::min(M, m0 + kBlock);
    __m256 s1[NV], s2[NV];
    for (int v = 0; v < NV; ++v) s1[v] = s2[v] = zero;
    for (long m = m0; m < m1; ++m) {
      const float* g = dy + m * C;
      const float* xr = x + m * C;
      const float* yr = y + m * C;
      for (int v = 0; v < NV; ++v) {
        __m256 gi = _mm256_loadu_ps(g + 8 * v);
        if (RELU) gi = _mm256_and_ps(gi, _mm256_cmp_ps(_mm256_loadu_ps(yr + 8 * v), zero, _CMP_GT_OQ));
        s1[v] = _mm256_add_ps(s1[v], gi);
        s2[v] = _mm256_fmadd_ps(gi, _mm256_sub_ps(_mm256_loadu_ps(xr + 8 * v), mu[v]), s2[v]);
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
template <int NV, bool RELU, bool RES>
void grad_apply_v(const float* dy, const float* x, const float* y, const float* p, const float* q, const float* r,
                  float* dx, float* dres, long M) {
  constexpr int C = 8 * NV;
  __m256 pp[NV], pq[NV], pr[NV];
  for (int v = 0; v < NV; ++v) {
    pp[v] = _mm256_loadu_ps(p + 8 * v);
    pq[v] = _mm256_loadu_ps(q + 8 * v);
    pr[v] = _mm256_loadu_ps(r + 8 * v);
  }
  const __m256 zero = _mm256_setzero_ps();
  for (long m = 0; m < M; ++m) {
    const float* g = dy + m * C;
    const float* xr = x + m * C;
    const float* yr = y + m * C;
    float* out = dx + m * C;
    for (int v = 0; v < NV; ++v) {
      __m256 gi = _mm256_loadu_ps(g + 8 * v);
      if (RELU) gi = _mm256_and_ps(gi, _mm256_cmp_ps(_mm256_loadu_ps(yr + 8 * v), zero, _CMP_GT_OQ));
      if (RES) _mm256_storeu_ps(dres + m * C + 8 * v, gi);
      const __m256 t = _mm256_mul_ps(pq[v], _mm256_loadu_ps(xr + 8 * v));
      _mm256_storeu_ps(out + 8 * v, _mm256_add_ps(_mm256_fmsub_ps(pp[v], gi, t), pr[v]));
    }
  }
}

// y = x * a + b (+ res) (then ReLU).
template <int NV, bool RELU, bool RES>
void affine_v(const float* x, const float* a, const float* b, float* y, long M, const float* res) {
  constexpr int C = 8 * NV;
  __m256 aa[NV], bb[NV];
  for (int v = 0; v < NV; ++v) {
    aa[v] = _mm256_loadu_ps(a + 8 * v);
    bb[v] = _mm256_loadu_ps(b + 8 * v);
  }
  const __m256 zero = _mm256_setzero_ps();
  for (long m = 0; m < M; ++m) {
    const float* xr = x + m * C;
    float* yr = y + m * C;
    for (int v = 0; v < NV; ++v) {
      __m256 t = _mm256_fmadd_ps(_mm256_loadu_ps(xr + 8 * v), aa[v], bb[v]);
      if (RES) t = _mm256_add_ps(t, _mm256_loadu_ps(res + m * C + 8 * v));
      if (RELU) t = _mm256_max_ps(t, zero);
      _mm256_storeu_ps(yr + 8 * v, t);
    }
  }
}

template <int NV>
void affine_nv(const float* x, const float* a, const float* b, float* y, long M, bool relu, const float* res) {
  if (res != nullptr) {
    if (relu) affine_v<NV, true, true>(x, a, b, y, M, res);
    else affine_v<NV, false, true>(x, a, b, y, M, res);
  } else if (relu) {
    affine_v<NV, true, false>(x, a, b, y, M, nullptr);
  } else {
    affine_v<NV, false, false>(x, a, b, y, M, nullptr);
  }
}

template <int NV>
void grad_nv(const float* dy, const float* x, const float* y, const float* mean, double* D1, double* D2, long M,
             bool relu) {
  if (relu) grad_sums_v<NV, true>(dy, x, y, mean, D1, D2, M);
  else grad_sums_v<NV, false>(dy, x, y, mean, D1, D2, M);
}

template <int NV>
void grad_apply_nv(const float* dy, const float* x, const float* y, const float* p, const float* q, const float* r,
                   float* dx, float* dres, long M, bool relu) {
  if (relu && dres != nullptr) grad_apply_v<NV, true, true>(dy, x, y, p, q, r, dx, dres, M);
  else if (relu) grad_apply_v<NV, true, false>(dy, x, y, p, q, r, dx, nullptr, M);
  else if (dres != nullptr) grad_apply_v<NV, false, true>(dy, x, y, p, q, r, dx, dres, M);
  else grad_apply_v<NV, false, false>(dy, x, y, p, q, r, dx, nullptr, M);
}

// Calls F<NV> for C = 8 NV up to 64; false for other C (the plain loops then).
#define LONGTAIL_BN_VECTOR(C, CALL) \
  switch (C) {                      \
    case 8: CALL(1); return true;   \
    case 16: CALL(2); return true;  \
    case 24: CALL(3); return true;  \
    case 32: CALL(4); return true;  \
    case 40: CALL(5); return true;  \
    case 48: CALL(6); return true;  \
    case 56: CALL(7); return true;  \
    case 64: CALL(8); return true;  \
    default: return false;          \
  }

bool vec_shifted_sums(const float* x, const float* k, double* D1, double* D2, long M, int C) {
#define CALL(NV) shifted_sums_v<NV>(x, k, D1, D2, M)
  LONGTAIL_BN_VECTOR(C, CALL)
#undef CALL
}
bool vec_grad_sums(const float* dy, const float* x, const float* y, const float* mean, double* D1, double* D2, long M,
                   int C, bool relu) {
#define CALL(NV) grad_nv<NV>(dy, x, y, mean, D1, D2, M, relu)
  LONGTAIL_BN_VECTOR(C, CALL)
#undef CALL
}
bool vec_grad_apply(const float* dy, const float* x, const float* y, const float* p, const float* q, const float* r,
                    float* dx, float* dres, long M, int C, bool relu) {
#define CALL(NV) grad_apply_nv<NV>(dy, x, y, p, q, r, dx, dres, M, relu)
  LONGTAIL_BN_VECTOR(C, CALL)
#undef CALL
}
bool vec_affine(const float* x, const float* a, const float* b, float* y, long M, int C, bool relu,
                const float* res) {
#define CALL(NV) affine_nv<NV>(x, a, b, y, M, relu, res)
  LONGTAIL_BN_VECTOR(C, CALL)
#undef CALL
}
#else
bool vec_shifted_sums(const float*, const float*, double*, double*, long, int) { return false; }
bool vec_grad_sums(const float*, const float*, const float*, const float*, double*, double*, long, int, bool) {
  return false;
}
bool vec_grad_apply(const float*, const float*, const float*, const float*, const float*, const float*, float*,
                    float*, long, int, bool) {
  return false;
}
bool vec_affine(const float*, const float*, const float*, float*, long, int, bool, const float*) { return false; }
#endif

}  // namespace

void bn_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* var, long M,
                int C, float eps, bool relu, const float* res) {
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
        for (int c = 0; c < C; ++c) yr[c] = std::max(0.0f, xr[c] * pa[c] + pb[c] + rr[c]);
      else
        for (int c = 0; c < C; ++c) yr[c] = xr[c] * pa[c] + pb[c] + rr[c];
    } else if (relu) {
      for (int c = 0; c < C; ++c) yr[c] = std::max(0.0f, xr[c] * pa[c] + pb[c]);
    } else {
      for (int c = 0; c < C; ++c) yr[c] = xr[c] * pa[c] + pb[c];
    }
  }
}

void bn_backward(const float* dy, const float* x, const float* y, const float* mean, const float* invstd,
                 const float* gamma, float* dx, float* dgamma, float* dbeta, long M, int C, bool relu,
                 float* dres) {
  zero(C);
  if (!vec_grad_sums(dy, x, y, mean, tD1.data(), tD2.data(), M, C, relu))
    grad_sums(dy, x, y, mean, tD1.data(), tD2.data(), M, C, relu);
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
  if (vec_grad_apply(dy, x, y, p.data(), q.data(), r.data(), dx, dres, M, C, relu)) return;
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

}  // namespace longtail

#if defined(LONGTAIL_X86) && defined(__clang__)
#pragma clang attribute pop
#endif
