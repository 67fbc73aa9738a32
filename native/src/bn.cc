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

void flush(int C) {
  for (int c = 0; c < C; ++c) {
    tD1[c] += tF1[c];
    tD2[c] += tF2[c];
    tF1[c] = 0.0f;
    tF2[c] = 0.0f;
  }
}

}  // namespace

void bn_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* var, long M,
                int C, float eps, bool relu, const float* res) {
  // Sums of x - K and (x - K)^2 with K = the first row: shifted, so the variance does not
  // cancel when the mean is large against the spread.
  zero(C);
  std::vector<float>& shift = tCoef;
  shift.assign(x, x + C);
  float* s1 = tF1.data();
  float* s2 = tF2.data();
  const float* k = shift.data();
  for (long m = 0; m < M; ++m) {
    const float* xr = x + m * C;
    for (int c = 0; c < C; ++c) {
      const float d = xr[c] - k[c];
      s1[c] += d;
      s2[c] += d * d;
    }
    if ((m + 1) % kBlock == 0) flush(C);
  }
  flush(C);
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
  float* s1 = tF1.data();
  float* s2 = tF2.data();
  for (long m = 0; m < M; ++m) {
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
    if ((m + 1) % kBlock == 0) flush(C);
  }
  flush(C);
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
