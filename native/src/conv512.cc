// The gather product (gather.h) with 512-bit vectors: on CPUs whose FMA units take 512-bit
// operands at full rate (this machine: 222 GFLOP/s with zmm against 111 with ymm in a
// register-only loop), twice the arithmetic per instruction of conv.cc's AVX2 tiles, and 32
// registers for larger tiles. Masks (k registers) handle the column tail.
//
// Everything in this file is compiled for AVX-512F: none of it may run before addon.cc
// (compiled without it) checked the CPU.
#include <algorithm>

#include "gather.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define LONGTAIL_X86_512 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx2,fma")
#endif
#include <immintrin.h>
#endif

#ifndef LONGTAIL_MR1
#define LONGTAIL_MR1 12
#endif
#ifndef LONGTAIL_MR2
#define LONGTAIL_MR2 12
#endif

namespace longtail {

#ifdef LONGTAIL_X86_512
namespace {

#if defined(__clang__)
#define LONGTAIL_UNROLL _Pragma("clang loop unroll(full)")
#else
#define LONGTAIL_UNROLL _Pragma("GCC unroll 16")
#endif

// R rows x NV 16-lane vectors of accumulators; the last vector masked by `mask` when MASK.
template <int R, int NV, bool MASK>
inline void micro(const Gather& g, int m0, int n0, int k0, int k1, __mmask16 mask, bool accumulate) {
  __m512 acc[R][NV];
  LONGTAIL_UNROLL
  for (int i = 0; i < R; ++i) {
    const float* c = g.C + g.cb[m0 + i] + n0;
    LONGTAIL_UNROLL
    for (int j = 0; j < NV; ++j) {
      if (!accumulate) acc[i][j] = _mm512_setzero_ps();
      else if (MASK && j == NV - 1) acc[i][j] = _mm512_maskz_loadu_ps(mask, c + 16 * j);
      else acc[i][j] = _mm512_loadu_ps(c + 16 * j);
    }
  }
  const float* xr[R];
  LONGTAIL_UNROLL
  for (int i = 0; i < R; ++i) xr[i] = g.X + g.mb[m0 + i];
  const int ldb = g.ldb;
  const int32_t* kb = g.kb;
  const float* b = g.B + static_cast<int64_t>(k0) * ldb + n0;
  for (int k = k0; k < k1; ++k, b += ldb) {
    __m512 bv[NV];
    LONGTAIL_UNROLL
    for (int j = 0; j < NV; ++j)
      bv[j] = (MASK && j == NV - 1) ? _mm512_maskz_loadu_ps(mask, b + 16 * j) : _mm512_loadu_ps(b + 16 * j);
    const int32_t o = kb[k];
    LONGTAIL_UNROLL
    for (int i = 0; i < R; ++i) {
      const __m512 a = _mm512_set1_ps(xr[i][o]);
      LONGTAIL_UNROLL
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(a, bv[j], acc[i][j]);
    }
  }
  LONGTAIL_UNROLL
  for (int i = 0; i < R; ++i) {
    float* c = g.C + g.cb[m0 + i] + n0;
    LONGTAIL_UNROLL
    for (int j = 0; j < NV; ++j) {
      if (MASK && j == NV - 1) _mm512_mask_storeu_ps(c + 16 * j, mask, acc[i][j]);
      else _mm512_storeu_ps(c + 16 * j, acc[i][j]);
    }
  }
}

// All rows of one column block: tiles of MR rows, then the remainder.
template <int MR, int NV, bool MASK>
void tiles(const Gather& g, int n0, int k0, int k1, __mmask16 mask, bool accumulate) {
  int m = 0;
  for (; m + MR <= g.M; m += MR) micro<MR, NV, MASK>(g, m, n0, k0, k1, mask, accumulate);
  // The remainder in tiles of at most 4 rows (fewer instantiations; the remainder is small).
  for (; m + 4 <= g.M; m += 4) micro<4, NV, MASK>(g, m, n0, k0, k1, mask, accumulate);
  switch (g.M - m) {
    case 1: micro<1, NV, MASK>(g, m, n0, k0, k1, mask, accumulate); break;
    case 2: micro<2, NV, MASK>(g, m, n0, k0, k1, mask, accumulate); break;
    case 3: micro<3, NV, MASK>(g, m, n0, k0, k1, mask, accumulate); break;
    default: break;
  }
}

template <int NV>
void block(const Gather& g, int n0, int k0, int k1, __mmask16 mask, bool masked, bool accumulate) {
  // Rows per tile: accumulators R x NV plus NV B vectors and one broadcast within 32 registers,
  // and few enough row pointers to stay in general registers.
  constexpr int MR = NV == 1 ? LONGTAIL_MR1 : NV == 2 ? LONGTAIL_MR2 : NV == 3 ? 6 : 5;
  if (masked) tiles<MR, NV, true>(g, n0, k0, k1, mask, accumulate);
  else tiles<MR, NV, false>(g, n0, k0, k1, mask, accumulate);
}

}  // namespace

bool avx512_compiled() { return true; }

// Columns in blocks of up to 64 (four vectors), the last vector masked when N is not a multiple
// of 16.
void gather_gemm_avx512(const Gather& g, int k0, int k1, bool accumulate) {
  for (int n0 = 0; n0 < g.N; n0 += 64) {
    const int width = std::min(64, g.N - n0);
    const int nv = (width + 15) / 16;
    const int tail = width - 16 * (nv - 1);  // lanes used in the last vector, 1..16
    const __mmask16 mask = static_cast<__mmask16>((1u << tail) - 1u);
    const bool masked = tail != 16;
    switch (nv) {
      case 1: block<1>(g, n0, k0, k1, mask, masked, accumulate); break;
      case 2: block<2>(g, n0, k0, k1, mask, masked, accumulate); break;
      case 3: block<3>(g, n0, k0, k1, mask, masked, accumulate); break;
      default: block<4>(g, n0, k0, k1, mask, masked, accumulate); break;
    }
  }
}

#else

bool avx512_compiled() { return false; }
void gather_gemm_avx512(const Gather&, int, int, bool) {}

#endif

}  // namespace longtail

#if defined(LONGTAIL_X86_512) && defined(__clang__)
#pragma clang attribute pop
#endif
