// The gradients' own AVX-512F kernels: the filter gradient of the stems (3x3 filters over 1 or
// 3 input channels, 16 output channels), and the 16-channel input gradient's planar product
// written straight to dx (planar_dx_avx512, below).
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

#include <algorithm>

#include "gather.h"

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


// 16 x 16 floats transposed in registers (as conv512.cc's, which is private to that file).
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0x88);
      t[8 * i + 4 + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0xDD);
    }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
  }
}

constexpr int kBlock = 48;  // positions a block: three vectors

// 8 dx channels from o0 x V vectors of 16 positions from m0, into buf[channel][kBlock]: the
// planar tile (conv512.cc's planarMicro), one FMA chain per output over k ascending from 0.
template <int V>
inline void dxMicro(const PlanarDx& d, int o0, int m0, float* buf) {
  __m512 acc[8][V];
  LONGTAIL_UNROLL_G
  for (int o = 0; o < 8; ++o) {
    LONGTAIL_UNROLL_G
    for (int v = 0; v < V; ++v) acc[o][v] = _mm512_setzero_ps();
  }
  const float* x = d.X + m0;
  const float* b = d.B + o0;
  const int32_t* kofs = d.kofs;
  for (int k = 0; k < d.K; ++k, b += 16) {
    const float* xk = x + kofs[k];
    __m512 xv[V];
    LONGTAIL_UNROLL_G
    for (int v = 0; v < V; ++v) xv[v] = _mm512_loadu_ps(xk + 16 * v);
    LONGTAIL_UNROLL_G
    for (int o = 0; o < 8; ++o) {
      const __m512 a = _mm512_set1_ps(b[o]);
      LONGTAIL_UNROLL_G
      for (int v = 0; v < V; ++v) acc[o][v] = _mm512_fmadd_ps(xv[v], a, acc[o][v]);
    }
  }
  LONGTAIL_UNROLL_G
  for (int o = 0; o < 8; ++o) {
    LONGTAIL_UNROLL_G
    for (int v = 0; v < V; ++v) _mm512_store_ps(buf + (o0 + o) * kBlock + 16 * v, acc[o][v]);
  }
}

}  // namespace

void planar_dx_avx512(const PlanarDx& d) {
  alignas(64) float buf[16 * kBlock];
  const int mr = (d.M + 15) / 16 * 16;
  int filled = 0;  // dy rows already in the planes
  auto fill = [&](int upTo) {
    for (; filled < upTo; ++filled)
      to_planes_avx512(d.src + static_cast<int64_t>(filled) * d.srcCols * d.C, d.srcCols, d.C,
                       d.planes + static_cast<int64_t>(filled + d.PT) * d.Wp + d.PL, d.ps);
  };
  int a = 0, c = 0;  // the next position's row and column
  // Memory, not arithmetic, is what the fused form still waits on: the next image's dy is
  // prefetched into L2 a share per vector, and dx's lines one block ahead of their stores.
  const int vectors = mr / 16;
  const int64_t lines = d.next ? (d.nFloats + 15) / 16 : 0;
  int64_t fetched = 0;
  int vec = 0;
  // About a block's positions further on in dx (a hint: may point past dx, prefetches do not fault).
  const int64_t ahead = static_cast<int64_t>(kBlock / d.Wp) * d.rowPitch + (kBlock % d.Wp) * d.pixelPitch;
  for (int m = 0; m < mr; m += kBlock) {
    const int V = std::min(3, (mr - m) / 16);
    if (d.src) fill(std::min(d.srcRows, (m + 16 * V - 1 + d.reach) / d.Wp - d.PT + 1));
    if (V == 3) {
      dxMicro<3>(d, 0, m, buf);
      dxMicro<3>(d, 8, m, buf);
    } else if (V == 2) {
      dxMicro<2>(d, 0, m, buf);
      dxMicro<2>(d, 8, m, buf);
    } else {
      dxMicro<1>(d, 0, m, buf);
      dxMicro<1>(d, 8, m, buf);
    }
    for (int v = 0; v < V; ++v) {
      for (const int64_t upTo = lines * ++vec / vectors; fetched < upTo; ++fetched)
        _mm_prefetch(reinterpret_cast<const char*>(d.next + 16 * fetched), _MM_HINT_T1);
      __m512 r[16];
      for (int n = 0; n < 16; ++n) r[n] = _mm512_load_ps(buf + n * kBlock + 16 * v);
      transpose16(r);  // r[i]: position m + 16 v + i's 16 channels
      const int m1 = std::min(16, d.M - (m + 16 * v));
      float* out = d.dx + a * d.rowPitch + c * d.pixelPitch;
      LONGTAIL_UNROLL_G
      for (int i = 0; i < 16; ++i) {
        if (i < m1) {
          if (c < d.cols) {
            __builtin_prefetch(reinterpret_cast<const char*>(out) + 4 * ahead, 1, 3);
            _mm512_storeu_ps(out, r[i]);
          }
          out += d.pixelPitch;
          if (++c == d.Wp) {
            c = 0;
            ++a;
            out = d.dx + a * d.rowPitch;
          }
        }
      }
    }
  }
  if (d.src) fill(d.srcRows);
}

bool filter_rows_avx512(const FilterRows& f, bool accumulate) {
  if (f.kh != 3 || f.kw != 3) return false;
  if (f.ci == 1) rows<3, 3, 1>(f, accumulate);
  else if (f.ci == 3) rows<3, 3, 3>(f, accumulate);
  else return false;
  return true;
}

#else

bool filter_rows_avx512(const FilterRows&, bool) { return false; }
void planar_dx_avx512(const PlanarDx&) {}

#endif

}  // namespace longtail

#if defined(LONGTAIL_X86_512G) && defined(__clang__)
#pragma clang attribute pop
#endif
