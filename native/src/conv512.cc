// The gather product (gather.h) with 512-bit vectors: on CPUs whose FMA units take 512-bit
// operands at full rate (this machine: 222 GFLOP/s with zmm against 111 with ymm in a
// register-only loop), twice the arithmetic per instruction of conv.cc's AVX2 tiles, and 32
// registers for larger tiles. Masks (k registers) handle the column tail.
//
// Everything in this file is compiled for AVX-512F: none of it may run before addon.cc
// (compiled without it) checked the CPU.
#include <algorithm>
#include <array>
#include <utility>

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

namespace {

// Row tile of the forward product: RC consecutive output pixels of each of RR output rows x NV
// vectors of output channels. Pixel i's window starts PS floats after pixel i-1's (PS = stride *
// channels, a compile-time constant), so the broadcasts per k address off one pointer per output
// row with immediate displacements: gather_gemm's tiles keep a pointer per pixel and, from 12
// pixels, GCC 12 runs out of general registers (103 GFLOP/s at 16 output channels with all data
// in L1, 171 here). Each output is one FMA chain over k ascending from zero, as there: the same bits.
#if defined(__clang__)
#define LONGTAIL_UNROLL32 _Pragma("clang loop unroll(full)")
#else
#define LONGTAIL_UNROLL32 _Pragma("GCC unroll 32")
#endif

template <int RR, int RC, int NV, int PS>
void rowMicro(const float* x, int64_t xRow, const int32_t* kb, int K, const float* B, int ldb, float* c,
              int64_t cRow, int ldc) {
  __m512 acc[RR][RC][NV];
  LONGTAIL_UNROLL32
  for (int r = 0; r < RR; ++r) {
    LONGTAIL_UNROLL32
    for (int i = 0; i < RC; ++i) {
      LONGTAIL_UNROLL32
      for (int j = 0; j < NV; ++j) acc[r][i][j] = _mm512_setzero_ps();
    }
  }
  const float* b = B;
  for (int k = 0; k < K; ++k, b += ldb) {
    const float* xk = x + kb[k];
    __m512 bv[NV];
    LONGTAIL_UNROLL32
    for (int j = 0; j < NV; ++j) bv[j] = _mm512_loadu_ps(b + 16 * j);
    LONGTAIL_UNROLL32
    for (int r = 0; r < RR; ++r) {
      LONGTAIL_UNROLL32
      for (int i = 0; i < RC; ++i) {
        const __m512 a = _mm512_set1_ps(xk[r * xRow + i * PS]);
        LONGTAIL_UNROLL32
        for (int j = 0; j < NV; ++j) acc[r][i][j] = _mm512_fmadd_ps(a, bv[j], acc[r][i][j]);
      }
    }
  }
  LONGTAIL_UNROLL32
  for (int r = 0; r < RR; ++r) {
    LONGTAIL_UNROLL32
    for (int i = 0; i < RC; ++i) {
      LONGTAIL_UNROLL32
      for (int j = 0; j < NV; ++j) _mm512_storeu_ps(c + r * cRow + static_cast<int64_t>(i) * ldc + 16 * j, acc[r][i][j]);
    }
  }
}

using RowFn = void (*)(const float*, int64_t, const int32_t*, int, const float*, int, float*, int64_t, int);

// rowMicro for every RC in [1, RMAX] (RR * RMAX * NV accumulators + NV filter vectors + a
// broadcast within 32 registers), indexed by RC - 1.
template <int RR, int NV, int PS, int... I>
constexpr std::array<RowFn, sizeof...(I)> rowTable(std::integer_sequence<int, I...>) {
  return {&rowMicro<RR, I + 1, NV, PS>...};
}
template <int RR, int NV, int PS, int RMAX>
struct RowTiles {
  static constexpr std::array<RowFn, RMAX> fn = rowTable<RR, NV, PS>(std::make_integer_sequence<int, RMAX>{});
};

// Output rows [a0, a1) of one 16 * NV column block, RR rows at a time: each row split into as few
// tiles as fit, of nearly equal width (a row of 32 at 28 a tile runs as 16 + 16, not 28 + 4).
template <int RR, int NV, int PS, int RMAX>
void rowBlock(const Gather& g, int ow, int a0, int a1, int K, int n0) {
  const int t = (ow + RMAX - 1) / RMAX;
  const int base = ow / t, extra = ow % t;
  const int64_t xRow = a1 - a0 > 1 ? g.mb[(a0 + 1) * ow] - g.mb[a0 * ow] : 0;
  const int64_t cRow = a1 - a0 > 1 ? g.cb[(a0 + 1) * ow] - g.cb[a0 * ow] : 0;
  for (int a = a0; a + RR <= a1; a += RR) {
    const float* x = g.X + g.mb[a * ow];
    float* c = g.C + g.cb[a * ow] + n0;
    const float* B = g.B + n0;
    int c0 = 0;
    for (int q = 0; q < t; ++q) {
      const int r = base + (q < extra ? 1 : 0);
      RowTiles<RR, NV, PS, RMAX>::fn[r - 1](x + c0 * PS, xRow, g.kb, K, B, g.ldb, c + static_cast<int64_t>(c0) * g.N,
                                            cRow, g.N);
      c0 += r;
    }
  }
}

// One output row at a time where a row fills wide tiles, else two (the last alone when odd).
template <int NV, int PS, int RMAX>
void rowsOf(const Gather& g, int ow, int K, int n0) {
  const int oh = g.M / ow;
  const int t1 = (ow + RMAX - 1) / RMAX;
  if (ow / t1 >= RMAX * 3 / 4 || oh == 1) {
    rowBlock<1, NV, PS, RMAX>(g, ow, 0, oh, K, n0);
    return;
  }
  rowBlock<2, NV, PS, RMAX / 2>(g, ow, 0, oh - oh % 2, K, n0);
  if (oh % 2 != 0) rowBlock<1, NV, PS, RMAX>(g, ow, oh - 1, oh, K, n0);
}

}  // namespace

bool gather_rows_avx512(const Gather& g, int ow, int ps, int K) {
  if (ow <= 0 || g.M % ow != 0) return false;
  if (g.N == 16 && ps == 1) rowsOf<1, 1, 28>(g, ow, K, 0);
  else if (g.N == 16 && ps == 3) rowsOf<1, 3, 28>(g, ow, K, 0);
  else if (g.N == 32 && ps == 32) rowsOf<2, 32, 14>(g, ow, K, 0);
  else return false;
  return true;
}

namespace {

// 16 x 16 floats transposed in registers (unpack, then 128-bit lane shuffles twice).
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
  // r[4i + j] now holds, in each 128-bit lane L, elements (4i .. 4i+3) x column 4L + j.
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

// Pixel-vectorised tile: O output channels x V vectors of 16 consecutive (flattened, padded)
// pixels; per k, V loads of the input plane and O broadcasts of the filter row: (O + V) loads
// for O * V multiply-adds (8 x 3: 11 for 24), where the gather product's 16-channel tiles
// need a broadcast per multiply-add. Each output is one FMA chain over k ascending from 0, as
// there, so the bits are the same (x * w is exact inside an FMA either way round).
// One output vector stored, with the evaluation program's epilogue when TAIL (gather.h, PlanarTail).
template <bool TAIL>
inline void planarStore(const Planar& p, const PlanarTail* t, int o, int64_t m, __m512 v) {
  const int64_t at = static_cast<int64_t>(o) * p.ldy + m;
  if (TAIL) {
    v = _mm512_add_ps(v, _mm512_set1_ps(t->shift[o]));
    if (t->res != nullptr) v = _mm512_add_ps(v, _mm512_loadu_ps(t->res + at));
    if (t->relu) v = _mm512_max_ps(v, _mm512_setzero_ps());  // (v > 0) ? v : 0, as std::max(0.0f, v)
    if (t->keep != nullptr) v = _mm512_maskz_mov_ps(t->keep[m / 16], v);
  }
  _mm512_storeu_ps(p.Y + at, v);
}

template <int O, int V, bool TAIL = false>
inline void planarMicro(const Planar& p, int o0, int m0, const PlanarTail* t = nullptr) {
  __m512 acc[O][V];
  LONGTAIL_UNROLL
  for (int o = 0; o < O; ++o) {
    LONGTAIL_UNROLL
    for (int v = 0; v < V; ++v) acc[o][v] = _mm512_setzero_ps();
  }
  const float* x = p.X + m0;
  const float* b = p.B + o0;
  const int32_t* kofs = p.kofs;
  const int N = p.N;
  for (int k = 0; k < p.K; ++k, b += N) {
    const float* xk = x + kofs[k];
    __m512 xv[V];
    LONGTAIL_UNROLL
    for (int v = 0; v < V; ++v) xv[v] = _mm512_loadu_ps(xk + 16 * v);
    LONGTAIL_UNROLL
    for (int o = 0; o < O; ++o) {
      const __m512 a = _mm512_set1_ps(b[o]);
      LONGTAIL_UNROLL
      for (int v = 0; v < V; ++v) acc[o][v] = _mm512_fmadd_ps(xv[v], a, acc[o][v]);
    }
  }
  LONGTAIL_UNROLL
  for (int o = 0; o < O; ++o) {
    LONGTAIL_UNROLL
    for (int v = 0; v < V; ++v) planarStore<TAIL>(p, t, o0 + o, m0 + 16 * v, acc[o][v]);
  }
}

// planarMicro over V vectors of 16 pixels starting at flattened positions pos[0..V) (not
// necessarily adjacent: output rows of 16 * n pixels skip their padding columns). Same sums.
template <int O, int V, bool TAIL = false>
inline void planarRowsMicro(const Planar& p, int o0, const int32_t* pos, const PlanarTail* t = nullptr) {
  __m512 acc[O][V];
  LONGTAIL_UNROLL
  for (int o = 0; o < O; ++o) {
    LONGTAIL_UNROLL
    for (int v = 0; v < V; ++v) acc[o][v] = _mm512_setzero_ps();
  }
  const float* xv0[V];
  LONGTAIL_UNROLL
  for (int v = 0; v < V; ++v) xv0[v] = p.X + pos[v];
  const float* b = p.B + o0;
  const int32_t* kofs = p.kofs;
  const int N = p.N;
  for (int k = 0; k < p.K; ++k, b += N) {
    const int32_t ko = kofs[k];
    __m512 xv[V];
    LONGTAIL_UNROLL
    for (int v = 0; v < V; ++v) xv[v] = _mm512_loadu_ps(xv0[v] + ko);
    LONGTAIL_UNROLL
    for (int o = 0; o < O; ++o) {
      const __m512 a = _mm512_set1_ps(b[o]);
      LONGTAIL_UNROLL
      for (int v = 0; v < V; ++v) acc[o][v] = _mm512_fmadd_ps(xv[v], a, acc[o][v]);
    }
  }
  LONGTAIL_UNROLL
  for (int o = 0; o < O; ++o) {
    LONGTAIL_UNROLL
    for (int v = 0; v < V; ++v) planarStore<TAIL>(p, t, o0 + o, pos[v], acc[o][v]);
  }
}

// Filter-gradient tile: O output channels x T taps (one row of the filter) x CV vectors of 16
// input channels; per pixel T * CV loads of x and O broadcasts of dy for O * T * CV
// multiply-adds (8 x 3 x 1: 11 for 24; 4 x 3 x 2: 10 for 24). One FMA chain per output over
// the pixels ascending, as the gather product's.
template <int O, int T, int CV>
inline void cvecMicro(const FilterCvec& f, int o0, int t0, int p0, int p1, bool accumulate) {
  const int K = f.taps * f.ci;
  __m512 acc[O][T][CV];
  LONGTAIL_UNROLL
  for (int o = 0; o < O; ++o) {
    LONGTAIL_UNROLL
    for (int t = 0; t < T; ++t) {
      LONGTAIL_UNROLL
      for (int c = 0; c < CV; ++c) {
        const float* d = f.dwT + static_cast<int64_t>(o0 + o) * K + (t0 + t) * f.ci + 16 * c;
        acc[o][t][c] = accumulate ? _mm512_loadu_ps(d) : _mm512_setzero_ps();
      }
    }
  }
  int32_t to[T];
  LONGTAIL_UNROLL
  for (int t = 0; t < T; ++t) to[t] = f.tofs[t0 + t];
  const int co = f.co;
  const float* dy = f.dy + static_cast<int64_t>(p0) * co + o0;
  constexpr unsigned kAll = (1u << T) - 1u;
  for (int p = p0; p < p1; ++p, dy += co) {
    const float* xb = f.X + f.pix[p];
    const unsigned bits = (static_cast<unsigned>(f.valid[p]) >> t0) & kAll;
    __m512 xv[T][CV];
    if (bits == kAll) {  // an interior pixel: every tap inside the image
      LONGTAIL_UNROLL
      for (int t = 0; t < T; ++t) {
        LONGTAIL_UNROLL
        for (int c = 0; c < CV; ++c) xv[t][c] = _mm512_loadu_ps(xb + to[t] + 16 * c);
      }
    } else {  // zeros where a tap falls outside (masked loads do not fault there)
      LONGTAIL_UNROLL
      for (int t = 0; t < T; ++t) {
        const __mmask16 m = static_cast<__mmask16>(-static_cast<int>((bits >> t) & 1u));
        LONGTAIL_UNROLL
        for (int c = 0; c < CV; ++c) xv[t][c] = _mm512_maskz_loadu_ps(m, xb + to[t] + 16 * c);
      }
    }
    LONGTAIL_UNROLL
    for (int o = 0; o < O; ++o) {
      const __m512 a = _mm512_set1_ps(dy[o]);
      LONGTAIL_UNROLL
      for (int t = 0; t < T; ++t) {
        LONGTAIL_UNROLL
        for (int c = 0; c < CV; ++c) acc[o][t][c] = _mm512_fmadd_ps(xv[t][c], a, acc[o][t][c]);
      }
    }
  }
  LONGTAIL_UNROLL
  for (int o = 0; o < O; ++o) {
    LONGTAIL_UNROLL
    for (int t = 0; t < T; ++t) {
      LONGTAIL_UNROLL
      for (int c = 0; c < CV; ++c)
        _mm512_storeu_ps(f.dwT + static_cast<int64_t>(o0 + o) * K + (t0 + t) * f.ci + 16 * c, acc[o][t][c]);
    }
  }
}

// All output channels of one tap row, O at a time, the remainder (co not a multiple of O) by
// smaller tiles.
template <int OMAX, int T, int CV>
void cvecRow(const FilterCvec& f, int t0, int p0, int p1, bool accumulate) {
  int o = 0;
  for (; o + OMAX <= f.co; o += OMAX) cvecMicro<OMAX, T, CV>(f, o, t0, p0, p1, accumulate);
  for (; o + 2 <= f.co; o += 2) cvecMicro<2, T, CV>(f, o, t0, p0, p1, accumulate);
  for (; o < f.co; ++o) cvecMicro<1, T, CV>(f, o, t0, p0, p1, accumulate);
}

}  // namespace

namespace {

template <bool TAIL>
void planarGemm(const Planar& p, const PlanarTail* t) {
  // Pixels outer: the output-channel groups of one pixel block reuse its input rows in L1.
  const int mr = (p.M + 15) / 16 * 16;
  int m = 0;
  for (; m + 48 <= mr; m += 48)
    for (int o0 = 0; o0 < p.N; o0 += 8) planarMicro<8, 3, TAIL>(p, o0, m, t);
  for (int o0 = 0; o0 < p.N; o0 += 8) {
    if (mr - m == 32) planarMicro<8, 2, TAIL>(p, o0, m, t);
    else if (mr - m == 16) planarMicro<8, 1, TAIL>(p, o0, m, t);
  }
}

template <bool TAIL>
void planarRowsGemm(const Planar& p, const PlanarTail* t, const int32_t* pos, int nvec) {
  // In ascending positions, so a vector that runs past its row into the next row's first columns
  // is overwritten there by that row's own vector (stored later).
  int v = 0;
  for (; v + 3 <= nvec; v += 3)
    for (int o0 = 0; o0 < p.N; o0 += 8) planarRowsMicro<8, 3, TAIL>(p, o0, pos + v, t);
  for (int o0 = 0; o0 < p.N; o0 += 8) {
    if (nvec - v == 2) planarRowsMicro<8, 2, TAIL>(p, o0, pos + v, t);
    else if (nvec - v == 1) planarRowsMicro<8, 1, TAIL>(p, o0, pos + v, t);
  }
}

}  // namespace

void planar_gemm_avx512(const Planar& p) { planarGemm<false>(p, nullptr); }
void planar_gemm_tail_avx512(const Planar& p, const PlanarTail& t) { planarGemm<true>(p, &t); }
void planar_rows_gemm_avx512(const Planar& p, const int32_t* pos, int nvec) {
  planarRowsGemm<false>(p, nullptr, pos, nvec);
}
void planar_rows_gemm_tail_avx512(const Planar& p, const PlanarTail& t, const int32_t* pos, int nvec) {
  planarRowsGemm<true>(p, &t, pos, nvec);
}

void filter_cvec_avx512(const FilterCvec& f, int p0, int p1, bool accumulate) {
  for (int t0 = 0; t0 < f.taps; t0 += f.kw) {
    if (f.ci == 16 && f.kw == 3) cvecRow<8, 3, 1>(f, t0, p0, p1, accumulate);
    else if (f.ci == 32 && f.kw == 3) cvecRow<4, 3, 2>(f, t0, p0, p1, accumulate);
    else if (f.ci == 16) {
      for (int t = t0; t < t0 + f.kw; ++t) cvecRow<8, 1, 1>(f, t, p0, p1, accumulate);
    } else {
      for (int t = t0; t < t0 + f.kw; ++t) cvecRow<8, 1, 2>(f, t, p0, p1, accumulate);
    }
  }
}

// x [rows, C] (row pitch C floats) -> planes[c * ps + r] for r < rows, C a multiple of 16:
// 16 x 16 blocks transposed in registers.
void to_planes_avx512(const float* x, int rows, int C, float* planes, int64_t ps) {
  for (int c0 = 0; c0 < C; c0 += 16) {
    for (int r0 = 0; r0 < rows; r0 += 16) {
      const int n = std::min(16, rows - r0);
      __m512 v[16];
      for (int i = 0; i < 16; ++i)
        v[i] = i < n ? _mm512_loadu_ps(x + static_cast<int64_t>(r0 + i) * C + c0) : _mm512_setzero_ps();
      transpose16(v);
      const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1u);
      for (int i = 0; i < 16; ++i) _mm512_mask_storeu_ps(planes + (c0 + i) * ps + r0, mask, v[i]);
    }
  }
}

// planes[c * ps + r] (c < C, a multiple of 16) -> y[r * pitch + c] for r < rows.
void from_planes_avx512(const float* planes, int64_t ps, int rows, int C, float* y, int64_t pitch) {
  for (int c0 = 0; c0 < C; c0 += 16) {
    for (int r0 = 0; r0 < rows; r0 += 16) {
      const int n = std::min(16, rows - r0);
      const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1u);
      __m512 v[16];
      for (int i = 0; i < 16; ++i) v[i] = _mm512_maskz_loadu_ps(mask, planes + (c0 + i) * ps + r0);
      transpose16(v);
      for (int i = 0; i < n; ++i) _mm512_storeu_ps(y + (r0 + i) * pitch + c0, v[i]);
    }
  }
}

#else

bool avx512_compiled() { return false; }
void gather_gemm_avx512(const Gather&, int, int, bool) {}
bool gather_rows_avx512(const Gather&, int, int, int) { return false; }

#endif

}  // namespace longtail

#if defined(LONGTAIL_X86_512) && defined(__clang__)
#pragma clang attribute pop
#endif
