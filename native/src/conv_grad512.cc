// The filter gradient of the stems (3x3 filters over 1 or 3 input channels, 16 output
// channels), AVX-512F.
//
// Why not the shared gather tiles: there the filter's 9 or 27 rows (taps x channels) split into
// tiles of 12, 4 and 1 rows, and every row needs its own pointer (GCC kept some in xmm
// registers and on the stack); the 1-channel stem ran at a quarter of peak. Here one tile holds
// every row: per pixel one load of dy's 16 channels and one multiply-add per row whose x operand
// is a broadcast at a fixed displacement from one of three row pointers. Each output is one FMA
// chain over the pixels ascending, as in the gather product, so the bits are the same.
//
// Everything in this file is compiled for AVX-512F: none of it may run before addon.cc
// (compiled without it) checked the CPU.
#include "conv_grad.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define LONGTAIL_X86_512G 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx2,fma")
#endif
#include <immintrin.h>
#endif

namespace longtail {

#ifdef LONGTAIL_X86_512G
namespace {

#if defined(__clang__)
#define LONGTAIL_UNROLL_G _Pragma("clang loop unroll(full)")
#else
#define LONGTAIL_UNROLL_G _Pragma("GCC unroll 32")
#endif

template <int KH, int KW, int CI>
void rows(const FilterRows& f, bool accumulate) {
  constexpr int R = KH * KW * CI;  // at most 27 accumulators + dy's vector
  __m512 acc[R];
  LONGTAIL_UNROLL_G
  for (int r = 0; r < R; ++r) acc[r] = accumulate ? _mm512_loadu_ps(f.dw + 16 * r) : _mm512_setzero_ps();
  const float* dy = f.dy;
  const int64_t pitch = f.rowPitch;
  for (int p = 0; p < f.P; ++p, dy += 16) {
    const __m512 d = _mm512_loadu_ps(dy);
    const float* x0 = f.X + f.pix[p];
    LONGTAIL_UNROLL_G
    for (int a = 0; a < KH; ++a) {
      const float* xa = x0 + a * pitch;
      LONGTAIL_UNROLL_G
      for (int e = 0; e < KW * CI; ++e) {
        // The gather product's order of operands: x (broadcast) times dy, added to the sum.
        acc[a * KW * CI + e] = _mm512_fmadd_ps(_mm512_set1_ps(xa[e]), d, acc[a * KW * CI + e]);
      }
    }
  }
  LONGTAIL_UNROLL_G
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(f.dw + 16 * r, acc[r]);
}

}  // namespace

bool filter_rows_avx512(const FilterRows& f, bool accumulate) {
  if (f.kh != 3 || f.kw != 3) return false;
  if (f.ci == 1) rows<3, 3, 1>(f, accumulate);
  else if (f.ci == 3) rows<3, 3, 3>(f, accumulate);
  else return false;
  return true;
}

#else

bool filter_rows_avx512(const FilterRows&, bool) { return false; }

#endif

}  // namespace longtail

#if defined(LONGTAIL_X86_512G) && defined(__clang__)
#pragma clang attribute pop
#endif
