// bf16 products with fp32 accumulation (`vdpbf16ps`, AVX512_BF16): the inputs are rounded to
// bfloat16 (round to nearest even), each instruction adds two products per fp32 lane, and the
// sums stay fp32. Twice the arithmetic per instruction of the fp32 tiles (this machine:
// 418 GFLOP/s against 225 in bench/fma-peak.c's register-only loops).
//
// Layout: A's rows as bf16 with K padded to even, so one 32-bit broadcast carries the pair
// (a[m][2q], a[m][2q+1]); B packed as [K/2][N][2] (the pair of rows 2q, 2q+1 interleaved per
// column), so one 512-bit load carries 16 columns' pairs.
//
// Everything in this file after the target pragma is compiled for AVX-512F + BF16: none of it
// may run before addon.cc (compiled without them) checked the CPU (cpuHasBf16).
#include "bf16.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__clang__) || __GNUC__ >= 10)
#define LONGTAIL_X86_BF16 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512bf16,avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512bf16,avx2,fma")
#endif
#include <immintrin.h>
#endif

namespace longtail {

#ifdef LONGTAIL_X86_BF16
namespace {

#if defined(__clang__)
#define LONGTAIL_UNROLL _Pragma("clang loop unroll(full)")
#else
#define LONGTAIL_UNROLL _Pragma("GCC unroll 16")
#endif

// Scratch reused across calls (one set per thread).
thread_local std::vector<uint16_t> tA, tB;

// 16 floats -> 16 bf16, round to nearest even (the instruction's rounding).
inline __m256i to_bf16(__m512 v) { return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)); }

// `n` floats -> bf16 into dst (n need not be a multiple of 16).
void convert_row(const float* src, uint16_t* dst, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), to_bf16(_mm512_loadu_ps(src + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    alignas(32) uint16_t tmp[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), to_bf16(_mm512_maskz_loadu_ps(m, src + i)));
    std::memcpy(dst + i, tmp, sizeof(uint16_t) * (n - i));
  }
}

// Interleave two 16-lane bf16 halves: lane 2i from the first row, 2i + 1 from the second.
alignas(64) const uint16_t kIdx[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

// out[2i] = bf16(r0[i]), out[2i + 1] = bf16(r1[i]) for i < n, zeros for n <= i < end (a null row
// reads as zeros); writes exactly 2 * end values.
inline void interleave(const float* r0, const float* r1, int n, int end, uint16_t* out) {
  const __m512i idx = _mm512_load_si512(kIdx);
  for (int i = 0; i < end; i += 16) {
    const int w = std::min(16, n - i);
    const __mmask16 m = w <= 0 ? 0 : static_cast<__mmask16>(w >= 16 ? 0xFFFF : (1u << w) - 1u);
    const __m512 v0 = r0 != nullptr ? _mm512_maskz_loadu_ps(m, r0 + i) : _mm512_setzero_ps();
    const __m512 v1 = r1 != nullptr ? _mm512_maskz_loadu_ps(m, r1 + i) : _mm512_setzero_ps();
    // cvtne2ps_pbh(hi, lo): lanes 0-15 from lo, 16-31 from hi.
    const __m512i both = _mm512_permutexvar_epi16(idx, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(v1, v0)));
    const int e = std::min(16, end - i);
    const __mmask32 m2 = e >= 16 ? 0xFFFFFFFFu : static_cast<__mmask32>((1u << (2 * e)) - 1u);
    _mm512_mask_storeu_epi16(out + 2 * i, m2, both);
  }
}

// B [K, N] (row stride ldb) -> [Kp/2][Np][2] bf16, Np = N rounded up to 16, zeros outside.
void pack_b(const float* b, int ldb, int K, int N, int Np, uint16_t* out) {
  const int K2 = (K + 1) / 2;
  for (int q = 0; q < K2; ++q) {
    const float* r0 = b + static_cast<int64_t>(2 * q) * ldb;
    interleave(r0, 2 * q + 1 < K ? r0 + ldb : nullptr, N, Np, out + static_cast<int64_t>(q) * Np * 2);
  }
}

// A gathered, as conv.cc's fp32 product: row m's pair q is the two bf16 values at A + mb[m] +
// kb[q] (offsets in bf16 values, so a pair may start at an odd one), so a convolution reads its
// padded bf16 image in place (no im2col), and a dense matrix is mb[m] = m * 2 * K2, kb[q] = 2q.
struct PairGather {
  const uint16_t* A;
  const int32_t* mb;
  const int32_t* kb;
};

// R rows x NV vectors: c[m][n0 + 16j ...] (+)= sum_q pair(A, m, q) . pair(B, q, n).
template <int R, int NV>
inline void micro(const PairGather& g, const uint16_t* B, int Np, int K2, float* C, int64_t ldc, int m0, int n0,
                  int N, bool accumulate) {
  __m512 acc[R][NV];
  const int w = N - n0;
  LONGTAIL_UNROLL
  for (int i = 0; i < R; ++i)
    LONGTAIL_UNROLL
  for (int j = 0; j < NV; ++j) {
    const int lanes = w - 16 * j;
    const __mmask16 m = lanes >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << lanes) - 1u);
    acc[i][j] = accumulate ? _mm512_maskz_loadu_ps(m, C + (m0 + i) * ldc + n0 + 16 * j) : _mm512_setzero_ps();
  }
  const uint16_t* a[R];
  LONGTAIL_UNROLL
  for (int i = 0; i < R; ++i) a[i] = g.A + g.mb[m0 + i];
  const int32_t* kb = g.kb;
  const uint16_t* b = B + static_cast<int64_t>(n0) * 2;
  for (int q = 0; q < K2; ++q, b += 2 * Np) {
    __m512bh bv[NV];
    LONGTAIL_UNROLL
    for (int j = 0; j < NV; ++j) bv[j] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(b + 32 * j));
    const int32_t o = kb[q];
    LONGTAIL_UNROLL
    for (int i = 0; i < R; ++i) {
      uint32_t pair;
      std::memcpy(&pair, a[i] + o, sizeof pair);  // one (possibly unaligned) 32-bit load
      const __m512bh av = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(pair)));
      LONGTAIL_UNROLL
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av, bv[j]);
    }
  }
  LONGTAIL_UNROLL
  for (int i = 0; i < R; ++i)
    LONGTAIL_UNROLL
  for (int j = 0; j < NV; ++j) {
    const int lanes = w - 16 * j;
    const __mmask16 m = lanes >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << lanes) - 1u);
    _mm512_mask_storeu_ps(C + (m0 + i) * ldc + n0 + 16 * j, m, acc[i][j]);
  }
}

template <int MR, int NV>
void rows(const PairGather& g, const uint16_t* B, int Np, int K2, float* C, int64_t ldc, int M, int n0, int N,
          bool accumulate) {
  int m = 0;
  for (; m + MR <= M; m += MR) micro<MR, NV>(g, B, Np, K2, C, ldc, m, n0, N, accumulate);
  for (; m + 4 <= M; m += 4) micro<4, NV>(g, B, Np, K2, C, ldc, m, n0, N, accumulate);
  for (; m < M; ++m) micro<1, NV>(g, B, Np, K2, C, ldc, m, n0, N, accumulate);
}

// C [M, N] (+)= A (gathered pairs) x B (packed).
void gemm_packed(const PairGather& g, const uint16_t* B, int Np, int K2, float* C, int64_t ldc, int M, int N,
                 bool accumulate) {
  for (int n0 = 0; n0 < N; n0 += 64) {
    const int nv = std::min(4, (N - n0 + 15) / 16);
    // Accumulators R x NV + NV B vectors + 1 broadcast within 32 registers.
    switch (nv) {
      case 1: rows<12, 1>(g, B, Np, K2, C, ldc, M, n0, N, accumulate); break;
      case 2: rows<12, 2>(g, B, Np, K2, C, ldc, M, n0, N, accumulate); break;
      case 3: rows<6, 3>(g, B, Np, K2, C, ldc, M, n0, N, accumulate); break;
      default: rows<5, 4>(g, B, Np, K2, C, ldc, M, n0, N, accumulate); break;
    }
  }
}

thread_local std::vector<int32_t> tMb, tKb;

}  // namespace

bool bf16_compiled() { return true; }

void matmul_bf16(const float* a, const float* b, float* c, int M, int K, int N) {
  if (K == 0) {
    std::fill(c, c + static_cast<int64_t>(M) * N, 0.0f);
    return;
  }
  const int K2 = (K + 1) / 2;
  const int Np = (N + 15) / 16 * 16;
  tA.assign(static_cast<size_t>(M) * K2 * 2, 0);
  for (int m = 0; m < M; ++m) convert_row(a + static_cast<int64_t>(m) * K, tA.data() + static_cast<size_t>(m) * K2 * 2, K);
  tB.resize(static_cast<size_t>(K2) * Np * 2);
  pack_b(b, N, K, N, Np, tB.data());
  tMb.resize(M);
  for (int m = 0; m < M; ++m) tMb[m] = m * K2 * 2;
  tKb.resize(K2);
  for (int q = 0; q < K2; ++q) tKb[q] = 2 * q;
  const PairGather g{tA.data(), tMb.data(), tKb.data()};
  gemm_packed(g, tB.data(), Np, K2, c, N, M, N, false);
}

void conv2d_forward_bf16(const float* x, const float* w, float* y, const ConvShape& s) {
  // Channels padded to even (the stem's 1 or 3), so a tap's channel pairs are whole 32-bit words.
  const int ce = (s.ci + 1) / 2 * 2;
  const int Hp = std::max(s.H + s.pt, (s.oh - 1) * s.sh + s.kh);
  const int Wp = std::max(s.W + s.pl, (s.ow - 1) * s.sw + s.kw);
  const int K2 = s.kh * s.kw * ce / 2;
  const int Np = (s.co + 15) / 16 * 16;
  // The filter [kh, kw, ci, co] with zero rows for the padded channels, then packed.
  std::vector<float> wf;
  const float* wsrc = w;
  if (ce != s.ci) {
    wf.assign(static_cast<size_t>(s.kh) * s.kw * ce * s.co, 0.0f);
    for (int t = 0; t < s.kh * s.kw; ++t)
      std::memcpy(wf.data() + static_cast<size_t>(t) * ce * s.co, w + static_cast<size_t>(t) * s.ci * s.co,
                  sizeof(float) * s.ci * s.co);
    wsrc = wf.data();
  }
  tB.resize(static_cast<size_t>(K2) * Np * 2);
  pack_b(wsrc, s.co, 2 * K2, s.co, Np, tB.data());
  // One image at a time: a padded bf16 copy, read in place by the gather offsets (pixel
  // window mb, tap pair kb, both in 32-bit words).
  std::vector<uint16_t> img(static_cast<size_t>(Hp) * Wp * ce);
  const int M = s.oh * s.ow;
  const int tapWords = ce / 2;
  tKb.resize(K2);
  for (int i = 0; i < s.kh; ++i)
    for (int j = 0; j < s.kw; ++j)
      for (int c = 0; c < tapWords; ++c) tKb[(i * s.kw + j) * tapWords + c] = ((i * Wp + j) * tapWords + c) * 2;
  tMb.resize(M);
  for (int i = 0; i < s.oh; ++i)
    for (int j = 0; j < s.ow; ++j) tMb[i * s.ow + j] = (i * s.sh * Wp + j * s.sw) * tapWords * 2;
  const size_t xImage = static_cast<size_t>(s.H) * s.W * s.ci;
  std::vector<float> pix(ce, 0.0f);
  for (int n = 0; n < s.b; ++n) {
    std::fill(img.begin(), img.end(), 0);
    const float* xi = x + n * xImage;
    for (int i = 0; i < s.H; ++i) {
      uint16_t* dst = img.data() + (static_cast<size_t>(i + s.pt) * Wp + s.pl) * ce;
      if (ce == s.ci) {
        convert_row(xi + static_cast<size_t>(i) * s.W * s.ci, dst, s.W * s.ci);
      } else {
        for (int j = 0; j < s.W; ++j) {
          std::memcpy(pix.data(), xi + (static_cast<size_t>(i) * s.W + j) * s.ci, sizeof(float) * s.ci);
          convert_row(pix.data(), dst + static_cast<size_t>(j) * ce, ce);
        }
      }
    }
    const PairGather g{img.data(), tMb.data(), tKb.data()};
    gemm_packed(g, tB.data(), Np, K2, y + static_cast<size_t>(n) * M * s.co, s.co, M, s.co, false);
  }
}

namespace {

// The input gradient is a forward convolution of dy by the filter turned 180 degrees with in and
// out channels swapped: wt [th][tw][co][ci] holds the taps di = di0 - sh * t, dj = dj0 - sw * u
// (zeros where that falls outside the filter).
void turned_filter(const float* w, const ConvShape& s, int di0, int th, int sh, int dj0, int tw, int sw,
                   std::vector<float>& wt) {
  wt.assign(static_cast<size_t>(th) * tw * s.co * s.ci, 0.0f);
  for (int t = 0; t < th; ++t)
    for (int u = 0; u < tw; ++u) {
      const int di = di0 - sh * t;
      const int dj = dj0 - sw * u;
      if (di < 0 || di >= s.kh || dj < 0 || dj >= s.kw) continue;
      for (int c = 0; c < s.ci; ++c)
        for (int o = 0; o < s.co; ++o)
          wt[((static_cast<size_t>(t) * tw + u) * s.co + o) * s.ci + c] =
              w[((static_cast<size_t>(di) * s.kw + dj) * s.ci + c) * s.co + o];
    }
}

// Output phase a of a strided input gradient along one axis (stride st, padding p, filter k):
// input rows r = a + st * R take the taps di = a + p - st * e from dy rows R + e. Sets the first
// tap di0 (at e = eLo), the tap count th (e = eLo ... eLo + th - 1; a tap outside the filter is a
// zero) and eLo <= 0 (the sub-convolution's top padding is -eLo); th = 0 when no tap reaches it.
void phase_taps(int a, int p, int st, int k, int& di0, int& th, int& eLo) {
  int eMin = 1 << 30, eMax = -(1 << 30);
  for (int di = 0; di < k; ++di) {
    const int d = a + p - di;
    if (((d % st) + st) % st != 0) continue;
    eMin = std::min(eMin, d / st);
    eMax = std::max(eMax, d / st);
  }
  th = 0;
  if (eMax < eMin) return;
  eLo = std::min(eMin, 0);  // a positive first offset: leading zero taps keep the padding >= 0
  th = eMax - eLo + 1;
  di0 = a + p - st * eLo;
}

}  // namespace

void conv2d_backprop_input_bf16(const float* dy, const float* w, float* dx, const ConvShape& s) {
  std::vector<float> wt;
  if (s.sh == 1 && s.sw == 1) {
    // dx = dy convolved with the turned filter, padded kh - 1 - pt on top.
    turned_filter(w, s, s.kh - 1, s.kh, 1, s.kw - 1, s.kw, 1, wt);
    const ConvShape t{s.b, s.oh, s.ow, s.co, s.kh, s.kw, s.ci, 1, 1, s.kh - 1 - s.pt, s.kw - 1 - s.pl, s.H, s.W};
    conv2d_forward_bf16(dy, wt.data(), dx, t);
    return;
  }
  // Strided: split dx by output phase (r mod sh, q mod sw); each phase is a stride-1 convolution
  // of dy with the taps that reach it, so no product with an inserted zero is computed.
  std::vector<float> part;
  for (int a = 0; a < s.sh && a < s.H; ++a)
    for (int b = 0; b < s.sw && b < s.W; ++b) {
      const int ha = (s.H - a + s.sh - 1) / s.sh;
      const int wb = (s.W - b + s.sw - 1) / s.sw;
      int di0 = 0, th = 0, eTop = 0, dj0 = 0, tw = 0, eLeft = 0;
      phase_taps(a, s.pt, s.sh, s.kh, di0, th, eTop);
      phase_taps(b, s.pl, s.sw, s.kw, dj0, tw, eLeft);
      part.assign(static_cast<size_t>(s.b) * ha * wb * s.ci, 0.0f);
      if (th > 0 && tw > 0) {
        turned_filter(w, s, di0, th, s.sh, dj0, tw, s.sw, wt);
        const ConvShape t{s.b, s.oh, s.ow, s.co, th, tw, s.ci, 1, 1, -eTop, -eLeft, ha, wb};
        conv2d_forward_bf16(dy, wt.data(), part.data(), t);
      }
      for (int n = 0; n < s.b; ++n)
        for (int i = 0; i < ha; ++i)
          for (int j = 0; j < wb; ++j)
            std::memcpy(dx + ((static_cast<size_t>(n) * s.H + a + i * s.sh) * s.W + b + j * s.sw) * s.ci,
                        part.data() + ((static_cast<size_t>(n) * ha + i) * wb + j) * s.ci, sizeof(float) * s.ci);
    }
}

namespace {

// One image x [H][W][ci] (fp32) into the filter gradient's bf16 planes: channel c, padded row
// r + pt, padded column qp = q + pl at [c][r + pt][qp mod sw][qp / sw] of dst (zeros elsewhere
// left as they are). The columns of one phase are every sw-th input column, so each row of a
// plane is 16 gathered values (stride sw * ci floats) rounded by one instruction, nearest even
// as vdpbf16ps's own conversion; a scalar loop per value was about as slow as the products it
// feeds at 16 channels.
void to_planes(const float* x, const ConvShape& s, int Wq, int Wp, int64_t plane, uint16_t* dst) {
  for (int ph = 0; ph < s.sw; ++ph) {
    const int q0 = ((ph - s.pl) % s.sw + s.sw) % s.sw;  // the first input column of phase ph
    if (q0 >= s.W) continue;
    const int count = (s.W - q0 + s.sw - 1) / s.sw;
    const int col0 = (q0 + s.pl) / s.sw;  // its place in the phase's columns
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(s.sw * s.ci));
    for (int r = 0; r < s.H; ++r) {
      const float* row = x + (static_cast<int64_t>(r) * s.W + q0) * s.ci;
      uint16_t* out = dst + static_cast<int64_t>(r + s.pt) * Wp + ph * Wq + col0;
      for (int c = 0; c < s.ci; ++c, out += plane) {
        int u = 0;
        for (; u + 16 <= count; u += 16) {
          const __m512 v = _mm512_i32gather_ps(idx, row + static_cast<int64_t>(u) * s.sw * s.ci + c, 4);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + u), to_bf16(v));
        }
        if (u < count) {
          const __mmask16 m = static_cast<__mmask16>((1u << (count - u)) - 1u);
          const __m512 v =
              _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, row + static_cast<int64_t>(u) * s.sw * s.ci + c, 4);
          alignas(32) uint16_t tmp[16];
          _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), to_bf16(v));
          std::memcpy(out + u, tmp, sizeof(uint16_t) * (count - u));
        }
      }
    }
  }
}

}  // namespace

namespace {

// The filter gradient with the output channels as rows, for ci a multiple of 16:
// dwT [co][kh kw ci] = sum over pixel pairs of dy (broadcast, one channel's pair) times x (one
// 16-lane vector of 16 input channels' pairs at a tap). x is held as "pair planes" P [n][r][c]
// [ci][2]: at padded row r, column c, each channel's two values (x[r][c], x[r][c + sw]), i.e. the
// inputs that the output pixels (j, j + 1) of a pair see at a tap; built by one conversion and
// interleave a vector (about 1 % of the products), read in place by offsets. Each broadcast feeds
// 3 vectors and each vector 8 rows (24 vdpbf16ps per 11 loads), where the x-as-rows layout below
// fed one vector per broadcast at 16 output channels and was bound by its loads.
constexpr int kPairRows = 8;  // output channels per tile
constexpr int kPairVecs = 3;  // 16-channel vectors per tile
constexpr int kPairBlock = 64;  // pixel pairs per pass over the tiles

// Rows o0 ... o0 + R - 1 of C [co][ldc] += the pairs q0 ... q1 - 1 for the vectors v0 ... v0 + NV - 1.
template <int R, int NV>
inline void pair_tile(const uint16_t* A, int Np, const uint16_t* P, const int32_t* xq, const int32_t* xv, float* C,
                      int ldc, int o0, int v0, int q0, int q1) {
  __m512 acc[R][NV];
  LONGTAIL_UNROLL
  for (int i = 0; i < R; ++i)
    LONGTAIL_UNROLL
  for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_loadu_ps(C + static_cast<int64_t>(o0 + i) * ldc + 16 * (v0 + j));
  int32_t off[NV];
  LONGTAIL_UNROLL
  for (int j = 0; j < NV; ++j) off[j] = xv[v0 + j];
  const uint16_t* a = A + static_cast<int64_t>(q0) * Np * 2 + 2 * o0;
  for (int q = q0; q < q1; ++q, a += 2 * Np) {
    const uint16_t* xb = P + xq[q];
    __m512bh bv[NV];
    LONGTAIL_UNROLL
    for (int j = 0; j < NV; ++j) bv[j] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(xb + off[j]));
    LONGTAIL_UNROLL
    for (int i = 0; i < R; ++i) {
      uint32_t pair;
      std::memcpy(&pair, a + 2 * i, sizeof pair);
      const __m512bh av = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(pair)));
      LONGTAIL_UNROLL
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av, bv[j]);
    }
  }
  LONGTAIL_UNROLL
  for (int i = 0; i < R; ++i)
    LONGTAIL_UNROLL
  for (int j = 0; j < NV; ++j) _mm512_storeu_ps(C + static_cast<int64_t>(o0 + i) * ldc + 16 * (v0 + j), acc[i][j]);
}

template <int R>
void pair_row_tiles(const uint16_t* A, int Np, const uint16_t* P, const int32_t* xq, const int32_t* xv, float* C,
                    int ldc, int o0, int V, int q0, int q1) {
  int v = 0;
  for (; v + kPairVecs <= V; v += kPairVecs) pair_tile<R, kPairVecs>(A, Np, P, xq, xv, C, ldc, o0, v, q0, q1);
  for (; v + 2 <= V; v += 2) pair_tile<R, 2>(A, Np, P, xq, xv, C, ldc, o0, v, q0, q1);
  for (; v < V; ++v) pair_tile<R, 1>(A, Np, P, xq, xv, C, ldc, o0, v, q0, q1);
}

thread_local std::vector<float> tC;
thread_local std::vector<int32_t> tXq, tXv;

void filter_grad_pairs(const float* x, const float* dy, float* dw, const ConvShape& s) {
  const int J2 = (s.ow + 1) / 2;
  const int Np = (s.co + 15) / 16 * 16;
  const int V = s.kh * s.kw * s.ci / 16;  // 16-channel vectors of a dw row
  const int N = 16 * V;
  // Padded rows and columns of the pair planes: every tap of every pair (the odd row's closing
  // fake pixel included, its dy is zero) lands inside; outside x reads as zeros.
  const int Hp = std::max(s.H + s.pt, (s.oh - 1) * s.sh + s.kh);
  const int Wp = std::max(s.W + s.pl, (2 * J2 - 2) * s.sw + s.kw);
  const int E = 2 * s.ci;  // bf16 values of one (r, c) entry
  const int64_t imageP = static_cast<int64_t>(Hp) * Wp * E;
  const int pairsImage = s.oh * J2;
  // Images per chunk: the pair planes and packed dy of a chunk within about 512 KiB (L2).
  const int64_t perImage = 2 * (imageP + static_cast<int64_t>(pairsImage) * Np * 2);
  const int chunk = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(s.b, (int64_t{1} << 19) / perImage)));
  tC.assign(static_cast<size_t>(s.co) * N, 0.0f);
  tXv.resize(V);
  for (int di = 0; di < s.kh; ++di)
    for (int dj = 0; dj < s.kw; ++dj)
      for (int cb = 0; cb < s.ci / 16; ++cb)
        tXv[(di * s.kw + dj) * (s.ci / 16) + cb] = static_cast<int32_t>((di * Wp + dj) * E + 32 * cb);
  const size_t xImage = static_cast<size_t>(s.H) * s.W * s.ci;
  for (int n0 = 0; n0 < s.b; n0 += chunk) {
    const int nb = std::min(chunk, s.b - n0);
    // 64-byte aligned, so no vector load of the products crosses a cache line.
    tA.resize(static_cast<size_t>(nb) * imageP + 32);
    uint16_t* planes = tA.data() + (-(reinterpret_cast<uintptr_t>(tA.data()) / 2) & 31);
    const __m512i idx = _mm512_load_si512(kIdx);
    for (int n = 0; n < nb; ++n) {
      const float* xi = x + (n0 + n) * xImage;
      uint16_t* out = planes + n * imageP;
      for (int r = 0; r < Hp; ++r) {
        const int xr = r - s.pt;
        if (xr < 0 || xr >= s.H) {
          std::memset(out, 0, sizeof(uint16_t) * Wp * E);
          out += static_cast<int64_t>(Wp) * E;
          continue;
        }
        const float* row = xi + static_cast<size_t>(xr) * s.W * s.ci;
        for (int c = 0; c < Wp; ++c, out += E) {
          const int c0 = c - s.pl;
          const int c1 = c0 + s.sw;
          if (c0 >= 0 && c1 < s.W) {
            // Both inside: 16 channels a step, no masks.
            const float* p0 = row + static_cast<size_t>(c0) * s.ci;
            const float* p1 = p0 + static_cast<size_t>(s.sw) * s.ci;
            for (int k = 0; k < s.ci; k += 16) {
              const __m512bh both = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(p1 + k), _mm512_loadu_ps(p0 + k));
              _mm512_store_si512(out + 2 * k, _mm512_permutexvar_epi16(idx, reinterpret_cast<__m512i>(both)));
            }
          } else {
            interleave(c0 >= 0 && c0 < s.W ? row + static_cast<size_t>(c0) * s.ci : nullptr,
                       c1 >= 0 && c1 < s.W ? row + static_cast<size_t>(c1) * s.ci : nullptr, s.ci, s.ci, out);
          }
        }
      }
    }
    const int K2 = nb * pairsImage;
    tB.resize(static_cast<size_t>(K2) * Np * 2);
    tXq.resize(K2);
    for (int n = 0; n < nb; ++n)
      for (int i = 0; i < s.oh; ++i)
        for (int jp = 0; jp < J2; ++jp) {
          const int q = (n * s.oh + i) * J2 + jp;
          const float* r0 = dy + ((static_cast<size_t>(n0 + n) * s.oh + i) * s.ow + 2 * jp) * s.co;
          uint16_t* out = tB.data() + static_cast<size_t>(q) * Np * 2;
          if (s.co == Np && 2 * jp + 1 < s.ow) {
            for (int k = 0; k < s.co; k += 16) {
              const __m512bh both = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(r0 + s.co + k), _mm512_loadu_ps(r0 + k));
              _mm512_storeu_si512(out + 2 * k, _mm512_permutexvar_epi16(idx, reinterpret_cast<__m512i>(both)));
            }
          } else {
            interleave(r0, 2 * jp + 1 < s.ow ? r0 + s.co : nullptr, s.co, Np, out);
          }
          tXq[q] = static_cast<int32_t>(n * imageP + (static_cast<int64_t>(i) * s.sh * Wp + 2 * jp * s.sw) * E);
        }
    // Blocks of pairs small enough that their x rows and dy stay in L1 across the tiles.
    for (int q0 = 0; q0 < K2; q0 += kPairBlock) {
      const int q1 = std::min(K2, q0 + kPairBlock);
      int o = 0;
      for (; o + kPairRows <= s.co; o += kPairRows)
        pair_row_tiles<kPairRows>(tB.data(), Np, planes, tXq.data(), tXv.data(), tC.data(), N, o, V, q0, q1);
      for (; o + 4 <= s.co; o += 4)
        pair_row_tiles<4>(tB.data(), Np, planes, tXq.data(), tXv.data(), tC.data(), N, o, V, q0, q1);
      for (; o < s.co; ++o)
        pair_row_tiles<1>(tB.data(), Np, planes, tXq.data(), tXv.data(), tC.data(), N, o, V, q0, q1);
    }
  }
  // dwT [co][N] -> dw [N][co].
  for (int k = 0; k < N; ++k)
    for (int o = 0; o < s.co; ++o) dw[static_cast<size_t>(k) * s.co + o] = tC[static_cast<size_t>(o) * N + k];
}

}  // namespace

void conv2d_backprop_filter_bf16(const float* x, const float* dy, float* dw, const ConvShape& s) {
  if (s.ci % 16 == 0 && s.b > 0) {
    filter_grad_pairs(x, dy, dw, s);
    return;
  }
  // dw [kh kw ci][co] = sum over pixels of x at the tap (x) dy: a product whose summed dimension
  // is the output pixels, taken in pairs (j, j + 1) along each output row as vdpbf16ps wants.
  // x is converted once per image to bf16 planes [ci][Hp][sw][Wq] (padded column q' = sw * u + ph
  // in phase ph), where the pixel pair's two inputs at any tap are adjacent, so A is read in place
  // (no im2col); B is dy packed by pixel pairs, a zero for the odd pixel closing an odd row.
  const int cols = s.kh * s.kw * s.ci;
  const int owp = (s.ow + 1) / 2 * 2;
  const int J2 = owp / 2;
  const int Np = (s.co + 15) / 16 * 16;
  if (s.b == 0) {
    std::fill(dw, dw + static_cast<size_t>(cols) * s.co, 0.0f);
    return;
  }
  const int Hp = std::max(s.H + s.pt, (s.oh - 1) * s.sh + s.kh);
  const int Wq = owp + (s.kw + s.sw - 1) / s.sw + 1;  // the fake pixel's taps stay inside
  const int Wp = Wq * s.sw;
  const int64_t plane = static_cast<int64_t>(Hp) * Wp;  // one channel's values
  const int64_t image = plane * s.ci;
  const int pairsImage = s.oh * J2;
  // Images per product: B about 512 KiB (cache-resident while the rows stream), at least one.
  const int chunk = std::max(1, std::min(s.b, (1 << 17) / (pairsImage * Np)));
  tMb.resize(cols);
  for (int di = 0; di < s.kh; ++di)
    for (int dj = 0; dj < s.kw; ++dj)
      for (int c = 0; c < s.ci; ++c)
        tMb[(di * s.kw + dj) * s.ci + c] =
            static_cast<int32_t>(c * plane + static_cast<int64_t>(di) * Wp + (dj % s.sw) * Wq + dj / s.sw);
  const size_t xImage = static_cast<size_t>(s.H) * s.W * s.ci;
  for (int n0 = 0; n0 < s.b; n0 += chunk) {
    const int nb = std::min(chunk, s.b - n0);
    const int K2 = nb * pairsImage;
    // x of the chunk in bf16 planes (zeros in the padding).
    tA.assign(static_cast<size_t>(nb) * image, 0);
    for (int n = 0; n < nb; ++n) to_planes(x + (n0 + n) * xImage, s, Wq, Wp, plane, tA.data() + n * image);
    tB.resize(static_cast<size_t>(K2) * Np * 2);
    tKb.resize(K2);
    for (int n = 0; n < nb; ++n)
      for (int i = 0; i < s.oh; ++i)
        for (int jp = 0; jp < J2; ++jp) {
          const int q = (n * s.oh + i) * J2 + jp;
          const float* r0 = dy + ((static_cast<size_t>(n0 + n) * s.oh + i) * s.ow + 2 * jp) * s.co;
          interleave(r0, 2 * jp + 1 < s.ow ? r0 + s.co : nullptr, s.co, Np, tB.data() + static_cast<size_t>(q) * Np * 2);
          tKb[q] = static_cast<int32_t>(n * image + static_cast<int64_t>(i) * s.sh * Wp + 2 * jp);
        }
    const PairGather g{tA.data(), tMb.data(), tKb.data()};
    gemm_packed(g, tB.data(), Np, K2, dw, s.co, cols, s.co, n0 > 0);
  }
}

#else

bool bf16_compiled() { return false; }
void matmul_bf16(const float*, const float*, float*, int, int, int) {}
void conv2d_forward_bf16(const float*, const float*, float*, const ConvShape&) {}
void conv2d_backprop_input_bf16(const float*, const float*, float*, const ConvShape&) {}
void conv2d_backprop_filter_bf16(const float*, const float*, float*, const ConvShape&) {}

#endif

}  // namespace longtail

#if defined(LONGTAIL_X86_BF16) && defined(__clang__)
#pragma clang attribute pop
#endif
