// The three convolution kernels as one gather-matrix-product (an im2col that is never written
// out) with an AVX2 + FMA register-tiled micro-kernel. Why by hand: on the small channel counts
// of CIFAR ResNets (16-64) the wasm backend's XNNPACK ran 13-30 GFLOP/s and had no filter
// gradient at all; 256-bit FMA is what PyTorch's kernels use on this CPU.
//
// Everything after kernel_target.h is compiled for AVX2 + FMA: none of it may run before
// addon.cc (compiled without them) checked the CPU. check_shape comes before it, as plain code.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "conv.h"
#include "conv_grad.h"
#include "gather.h"

namespace longtail {

const char* check_shape(const ConvShape& s) {
  if (s.b < 0 || s.H <= 0 || s.W <= 0 || s.ci <= 0 || s.kh <= 0 || s.kw <= 0 || s.co <= 0 ||
      s.sh <= 0 || s.sw <= 0 || s.oh <= 0 || s.ow <= 0 || s.pt < 0 || s.pl < 0)
    return "sizes must be positive (batch and padding non-negative)";
  if (s.pt >= s.kh || s.pl >= s.kw) return "padding must be smaller than the filter";
  if ((s.oh - 1) * s.sh + s.kh > s.H + 2 * s.kh || (s.ow - 1) * s.sw + s.kw > s.W + 2 * s.kw)
    return "output size does not fit the input, filter and stride";
  return nullptr;
}

const char* check_program(const ConvBnStep* steps, int n) {
  if (n <= 0) return "an inference program needs at least one step";
  for (int i = 0; i < n; ++i) {
    const ConvShape& s = steps[i].s;
    if (const char* bad = check_shape(s)) return bad;
    if (steps[i].in < 0 || steps[i].in > i) return "a step reads a buffer no earlier step wrote";
    if (steps[i].res < -1 || steps[i].res > i) return "a step adds a buffer no earlier step wrote";
    if (steps[i].in > 0) {
      const ConvShape& p = steps[steps[i].in - 1].s;
      if (p.oh != s.H || p.ow != s.W || p.co != s.ci) return "a step's input does not have the shape it expects";
    } else if (s.H != steps[0].s.H || s.W != steps[0].s.W || s.ci != steps[0].s.ci) {
      return "a step's input does not have the shape it expects";
    }
    if (steps[i].res > 0) {
      const ConvShape& r = steps[steps[i].res - 1].s;
      if (r.oh != s.oh || r.ow != s.ow || r.co != s.co) return "a step's residual does not have its output's shape";
    } else if (steps[i].res == 0 && (s.oh != steps[0].s.H || s.ow != steps[0].s.W || s.co != steps[0].s.ci)) {
      return "a step's residual does not have its output's shape";
    }
  }
  return nullptr;
}

}  // namespace longtail

#include "kernel_target.h"

namespace longtail {

#ifdef LONGTAIL_X86
namespace {


// Fully unrolled small loops keep the accumulators in registers (without it GCC 12 stored every
// accumulator to the stack on every step of the sum: 2x slower).
#if defined(__clang__)
#define LONGTAIL_UNROLL _Pragma("clang loop unroll(full)")
#else
#define LONGTAIL_UNROLL _Pragma("GCC unroll 16")
#endif

// Set by set_avx512 (addon.cc, after it checked the CPU).
bool gUseAvx512 = false;

constexpr int kMR = 6;  // rows per tile: 6 x 2 accumulators + 2 B vectors + 1 broadcast = 15 ymm

template <int R, int NV, bool MASK>
inline void micro(const Gather& g, int m0, int n0, int k0, int k1, __m256i mask, bool accumulate) {
  __m256 acc[R][NV];
  LONGTAIL_UNROLL
  for (int i = 0; i < R; ++i) {
    const float* c = g.C + g.cb[m0 + i] + n0;
    LONGTAIL_UNROLL
    for (int j = 0; j < NV; ++j) {
      if (!accumulate) acc[i][j] = _mm256_setzero_ps();
      else if (MASK && j == NV - 1) acc[i][j] = _mm256_maskload_ps(c + 8 * j, mask);
      else acc[i][j] = _mm256_loadu_ps(c + 8 * j);
    }
  }
  const float* xr[R];
  LONGTAIL_UNROLL
  for (int i = 0; i < R; ++i) xr[i] = g.X + g.mb[m0 + i];
  const int ldb = g.ldb;
  const int32_t* kb = g.kb;
  const float* b = g.B + static_cast<int64_t>(k0) * ldb + n0;
  for (int k = k0; k < k1; ++k, b += ldb) {
    __m256 bv[NV];
    LONGTAIL_UNROLL
    for (int j = 0; j < NV; ++j)
      bv[j] = (MASK && j == NV - 1) ? _mm256_maskload_ps(b + 8 * j, mask) : _mm256_loadu_ps(b + 8 * j);
    const int32_t o = kb[k];
    LONGTAIL_UNROLL
    for (int i = 0; i < R; ++i) {
      const __m256 a = _mm256_broadcast_ss(xr[i] + o);
      LONGTAIL_UNROLL
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_fmadd_ps(a, bv[j], acc[i][j]);
    }
  }
  LONGTAIL_UNROLL
  for (int i = 0; i < R; ++i) {
    float* c = g.C + g.cb[m0 + i] + n0;
    LONGTAIL_UNROLL
    for (int j = 0; j < NV; ++j) {
      if (MASK && j == NV - 1) _mm256_maskstore_ps(c + 8 * j, mask, acc[i][j]);
      else _mm256_storeu_ps(c + 8 * j, acc[i][j]);
    }
  }
}

template <int NV, bool MASK>
void tiles(const Gather& g, int n0, int k0, int k1, __m256i mask, bool accumulate) {
  int m = 0;
  for (; m + kMR <= g.M; m += kMR) micro<kMR, NV, MASK>(g, m, n0, k0, k1, mask, accumulate);
  switch (g.M - m) {
    case 1: micro<1, NV, MASK>(g, m, n0, k0, k1, mask, accumulate); break;
    case 2: micro<2, NV, MASK>(g, m, n0, k0, k1, mask, accumulate); break;
    case 3: micro<3, NV, MASK>(g, m, n0, k0, k1, mask, accumulate); break;
    case 4: micro<4, NV, MASK>(g, m, n0, k0, k1, mask, accumulate); break;
    case 5: micro<5, NV, MASK>(g, m, n0, k0, k1, mask, accumulate); break;
    default: break;
  }
}

// Columns in blocks of 16 (two vectors), the last block masked when N is not a multiple of 8;
// the AVX-512 tiles (conv512.cc) instead where the CPU has them and they are switched on.
void gather_gemm(const Gather& g, int k0, int k1, bool accumulate) {
  if (gUseAvx512) {
    gather_gemm_avx512(g, k0, k1, accumulate);
    return;
  }
  for (int n0 = 0; n0 < g.N; n0 += 16) {
    const int width = std::min(16, g.N - n0);
    const int nv = (width + 7) / 8;
    const int tail = width - 8 * (nv - 1);  // lanes used in the last vector, 1..8
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (nv == 2) {
      if (tail == 8) tiles<2, false>(g, n0, k0, k1, mask, accumulate);
      else tiles<2, true>(g, n0, k0, k1, mask, accumulate);
    } else {
      if (tail == 8) tiles<1, false>(g, n0, k0, k1, mask, accumulate);
      else tiles<1, true>(g, n0, k0, k1, mask, accumulate);
    }
  }
}

// Scratch reused across calls (one set per thread: each worker thread has its own backend).
thread_local std::vector<float> tPad;
thread_local std::vector<int32_t> tMb, tKb, tCb;

// One phase of the strided input gradient: its packed filter rows and gather offsets.
struct Phase {
  std::vector<float> filter;
  std::vector<int32_t> kb, mb, cb, kofs;  // kofs: the planar product's offsets (stride 1)
  int reach = 0;                          // the largest offset within a plane in kofs
};
thread_local std::vector<Phase> tPhases;

// x [b, H, W, C] copied into zeros [b, Hp, Wp, C] at row pt, column pl (x itself when no
// padding is needed).
const float* pad(const float* x, int b, int H, int W, int C, int pt, int pl, int Hp, int Wp) {
  if (pt == 0 && pl == 0 && Hp == H && Wp == W) return x;
  tPad.assign(static_cast<size_t>(b) * Hp * Wp * C, 0.0f);
  for (int n = 0; n < b; ++n)
    for (int i = 0; i < H; ++i)
      std::memcpy(tPad.data() + ((static_cast<size_t>(n) * Hp + i + pt) * Wp + pl) * C,
                  x + (static_cast<size_t>(n) * H + i) * W * C, sizeof(float) * W * C);
  return tPad.data();
}

// x's g images [H, W, ci] into the interior of padded images [Hp, Wp, ci] at (pt, pl); the
// border is left as it is (zeroed once by the caller).
void padInterior(const float* x, int g, const ConvShape& s, int Hp, int Wp, float* xp) {
  for (int n = 0; n < g; ++n)
    for (int i = 0; i < s.H; ++i)
      std::memcpy(xp + ((static_cast<size_t>(n) * Hp + i + s.pt) * Wp + s.pl) * s.ci,
                  x + (static_cast<size_t>(n) * s.H + i) * s.W * s.ci, sizeof(float) * s.W * s.ci);
}

thread_local std::vector<float> tFwdPad;

// One image [H, W, C] into the forward pass's zero-bordered buffer [Hp, Wp, C] at (pt, pl): the
// border is zeroed for the first image of a call only (every image writes the same interior),
// where pad() clears the whole buffer again for each image (a third of the strided layers' time).
const float* padImage(const float* x, int H, int W, int C, int pt, int pl, int Hp, int Wp, bool first) {
  if (pt == 0 && pl == 0 && Hp == H && Wp == W) return x;
  if (first) tFwdPad.assign(static_cast<size_t>(Hp) * Wp * C, 0.0f);
  for (int i = 0; i < H; ++i)
    std::memcpy(tFwdPad.data() + (static_cast<size_t>(i + pt) * Wp + pl) * C, x + static_cast<size_t>(i) * W * C,
                sizeof(float) * W * C);
  return tFwdPad.data();
}

// The forward product of one image (k over all K from zero): by output rows where tiles for its
// shape are compiled (conv512.cc, the same bits), else the gather tiles.
void forwardProduct(const Gather& g, int ow, int sw, int ci, int K) {
  if (gUseAvx512 && gather_rows_avx512(g, ow, sw * ci, K)) return;
  gather_gemm(g, 0, K, false);
}

int paddedRows(int in, int pad, int out, int stride, int k) { return std::max(in + pad, (out - 1) * stride + k); }

// The pixel-vectorised product (conv512.cc) where its outputs have 16 channels and the pass is
// stride 1: the gather product there has one 16-lane vector per tile row and so a broadcast
// load per multiply-add (56 % of peak); over pixels, 8 x 3 tiles need 11 loads per 24.
int gPlanarMax = 16;  // the widest output the planar product takes (LONGTAIL_PLANAR_MAX while tuning)
// Measured: slower than the gather product for 1x1 filters and a 3-channel stem (too few
// multiply-adds per output to pay for the two transposes).
bool usePlanar(int outChannels, int inChannels, int taps) {
  return gUseAvx512 && outChannels % 16 == 0 && outChannels <= gPlanarMax && inChannels % 16 == 0 &&
         inChannels <= 64 && taps > 1;
}

// The planes' row pitch for a stride-1 planar product: W + pl where padding is symmetric (one
// zero column between rows, not two at pad 1): a tap that reads past a row's right end lands on
// the next row's left padding, also zero, and the last row's on the slack past the planes. The
// same operands for every output, so the same bits, and 2 fewer flattened positions a row
// (28 x 28: 51 vectors of 16 a plane instead of 53).
int planarWp(const ConvShape& s) { return std::max({s.W + s.pl, s.ow + s.kw - 1 - s.pl, s.ow}); }

thread_local std::vector<float> tPlanes, tOut;
thread_local std::vector<int32_t> tKofs;
thread_local std::vector<uint16_t> tValid;  // the filter gradient's taps inside the image, per pixel

// One image [rows, cols, C] into zero-padded planes [C][Hp * Wp (+ slack)] at (pt, pl): the
// interior only (the border was zeroed once for the call).
void toPlanes(const float* x, int rows, int cols, int C, int pt, int pl, int Wp, int64_t ps, float* planes) {
  if (C % 16 == 0) {
    for (int i = 0; i < rows; ++i)
      to_planes_avx512(x + static_cast<int64_t>(i) * cols * C, cols, C, planes + (i + pt) * Wp + pl, ps);
    return;
  }
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j)
      for (int c = 0; c < C; ++c) planes[c * ps + (i + pt) * Wp + j + pl] = x[(static_cast<int64_t>(i) * cols + j) * C + c];
}

// The planar product's output [C][ldy] at flattened padded positions i * Wp + j back to pixel
// rows `rowPitch` floats apart, pixels `pixelPitch` floats apart (C, or a multiple of it for
// one phase of a strided input gradient).
void fromPlanes(const float* out, int64_t ldy, int rows, int cols, int Wp, int C, float* y, int64_t rowPitch,
                int64_t pixelPitch) {
  for (int i = 0; i < rows; ++i)
    from_planes_avx512(out + static_cast<int64_t>(i) * Wp, ldy, cols, C, y + i * rowPitch, pixelPitch);
}

// Plane size for an image of Hp x Wp, with slack for the last tile's reads past the end.
int64_t planeSize(int Hp, int Wp) { return static_cast<int64_t>(Hp) * Wp + 64; }

thread_local std::vector<int32_t> tPos;

// The forward planar product of one image: where output rows are whole vectors (ow a multiple of
// 16: 32 x 32 images), row by row, skipping the padding columns the flattened product computes
// and drops (2 of 34 at 32 x 32); the same sums either way.
void planarForward(const Planar& p, int oh, int ow, int Wp) {
  if (ow % 16 != 0 || oh == 1) {
    planar_gemm_avx512(p);
    return;
  }
  tPos.clear();
  for (int a = 0; a < oh; ++a)
    for (int c = 0; c < ow; c += 16) tPos.push_back(a * Wp + c);
  planar_rows_gemm_avx512(p, tPos.data(), static_cast<int>(tPos.size()));
}

// planarForward with the evaluation program's epilogue in the product's stores (gather.h,
// PlanarTail): by rows, each row's vectors are all pixels (the padding columns are not written);
// flattened, keep[] zeroes the lanes on padding columns and past the last pixel.
void planarForwardTail(const Planar& p, const PlanarTail& t, int oh, int ow, int Wp) {
  if (ow % 16 != 0 || oh == 1) {
    planar_gemm_tail_avx512(p, t);
    return;
  }
  tPos.clear();
  for (int a = 0; a < oh; ++a)
    for (int c = 0; c < ow; c += 16) tPos.push_back(a * Wp + c);
  const PlanarTail rows{t.shift, t.res, nullptr, t.relu};  // every lane a pixel (keep is per flattened vector)
  planar_rows_gemm_tail_avx512(p, rows, tPos.data(), static_cast<int>(tPos.size()));
}

void forwardPlanar(const float* x, const float* w, float* y, const ConvShape& s, int Hp, int Wp) {
  const int64_t ps = planeSize(Hp, Wp);
  const int K = s.kh * s.kw * s.ci;
  tKofs.resize(K);
  for (int i = 0; i < s.kh; ++i)
    for (int j = 0; j < s.kw; ++j)
      for (int c = 0; c < s.ci; ++c) tKofs[(i * s.kw + j) * s.ci + c] = static_cast<int32_t>(c * ps + i * Wp + j);
  const int M = (s.oh - 1) * Wp + s.ow;  // flattened over the padded width: Wp - ow columns wasted a row
  const int64_t ldy = (M + 15) / 16 * 16;
  tPlanes.assign(static_cast<size_t>(s.ci * ps + 16), 0.0f);
  tOut.resize(static_cast<size_t>(s.co * ldy));
  const size_t xImage = static_cast<size_t>(s.H) * s.W * s.ci;
  const size_t yImage = static_cast<size_t>(s.oh) * s.ow * s.co;
  for (int n = 0; n < s.b; ++n) {
    toPlanes(x + n * xImage, s.H, s.W, s.ci, s.pt, s.pl, Wp, ps, tPlanes.data());
    const Planar p{tPlanes.data(), tKofs.data(), K, w, s.co, M, tOut.data(), static_cast<int>(ldy)};
    planarForward(p, s.oh, s.ow, Wp);
    fromPlanes(tOut.data(), ldy, s.oh, s.ow, Wp, s.co, y + n * yImage, static_cast<int64_t>(s.ow) * s.co, s.co);
  }
}

}  // namespace

bool kernels_compiled() { return true; }

void set_avx512(bool on) {
  gUseAvx512 = on && avx512_compiled();
  if (const char* v = std::getenv("LONGTAIL_PLANAR_MAX")) gPlanarMax = std::atoi(v);
}
bool using_avx512() { return gUseAvx512; }

void conv2d_forward(const float* x, const float* w, float* y, const ConvShape& s) {
  const int Hp = paddedRows(s.H, s.pt, s.oh, s.sh, s.kh);
  const int Wp = paddedRows(s.W, s.pl, s.ow, s.sw, s.kw);
  const int K = s.kh * s.kw * s.ci;
  const int M = s.oh * s.ow;
  tKb.resize(K);
  for (int i = 0; i < s.kh; ++i)
    for (int j = 0; j < s.kw; ++j)
      for (int c = 0; c < s.ci; ++c) tKb[(i * s.kw + j) * s.ci + c] = (i * Wp + j) * s.ci + c;
  tMb.resize(M);
  tCb.resize(M);
  for (int i = 0; i < s.oh; ++i)
    for (int j = 0; j < s.ow; ++j) {
      tMb[i * s.ow + j] = (i * s.sh * Wp + j * s.sw) * s.ci;
      tCb[i * s.ow + j] = (i * s.ow + j) * s.co;
    }
  const size_t xImage = static_cast<size_t>(s.H) * s.W * s.ci;
  if (s.sh == 1 && s.sw == 1 && usePlanar(s.co, s.ci, s.kh * s.kw)) {
    forwardPlanar(x, w, y, s, Hp, planarWp(s));
    return;
  }
  for (int n = 0; n < s.b; ++n) {
    // Per image (padded while it is in cache): [oh*ow, kh*kw*ci] (gathered) x w [kh*kw*ci, co].
    const float* xp = padImage(x + n * xImage, s.H, s.W, s.ci, s.pt, s.pl, Hp, Wp, n == 0);
    const Gather g{xp, tMb.data(), M, tKb.data(), w, s.co, s.co, y + static_cast<size_t>(n) * M * s.co, tCb.data()};
    forwardProduct(g, s.ow, s.sw, s.ci, K);
  }
}

namespace {

thread_local std::vector<float> tFolded, tShift;

// The batch norm folded into the filter, in the same float operations as the unfolded evaluation
// path (layers.ts): scale = gamma * (1 / sqrt(var + eps)), w' = w * scale, shift = beta - mean * scale.
void fold(const float* w, const float* gamma, const float* beta, const float* mean, const float* var, int K, int co,
          float eps, std::vector<float>& folded, std::vector<float>& shift) {
  shift.resize(co);
  std::vector<float> scale(co);
  for (int o = 0; o < co; ++o) {
    scale[o] = gamma[o] * (1.0f / std::sqrt(var[o] + eps));
    shift[o] = beta[o] - mean[o] * scale[o];
  }
  folded.resize(static_cast<size_t>(K) * co);
  for (int k = 0; k < K; ++k)
    for (int o = 0; o < co; ++o) folded[static_cast<size_t>(k) * co + o] = w[static_cast<size_t>(k) * co + o] * scale[o];
}

// y = y + shift (+ res) (then ReLU) over M pixels of co channels, each sum in that order.
void tailPixels(float* y, const float* res, const float* sh, int M, int co, bool relu) {
  for (int m = 0; m < M; ++m) {
    float* yr = y + static_cast<size_t>(m) * co;
    if (res != nullptr) {
      const float* rr = res + static_cast<size_t>(m) * co;
      if (relu)
        for (int o = 0; o < co; ++o) yr[o] = std::max(0.0f, yr[o] + sh[o] + rr[o]);
      else
        for (int o = 0; o < co; ++o) yr[o] = yr[o] + sh[o] + rr[o];
    } else if (relu) {
      for (int o = 0; o < co; ++o) yr[o] = std::max(0.0f, yr[o] + sh[o]);
    } else {
      for (int o = 0; o < co; ++o) yr[o] += sh[o];
    }
  }
}

}  // namespace

void conv2d_forward_bn(const float* x, const float* w, const float* gamma, const float* beta, const float* mean,
                       const float* var, const float* res, float* y, const ConvShape& s, float eps, bool relu) {
  const int co = s.co;
  const int K = s.kh * s.kw * s.ci;
  fold(w, gamma, beta, mean, var, K, co, eps, tFolded, tShift);
  const int Hp = paddedRows(s.H, s.pt, s.oh, s.sh, s.kh);
  const int Wp = paddedRows(s.W, s.pl, s.ow, s.sw, s.kw);
  const int M = s.oh * s.ow;
  tKb.resize(K);
  for (int i = 0; i < s.kh; ++i)
    for (int j = 0; j < s.kw; ++j)
      for (int c = 0; c < s.ci; ++c) tKb[(i * s.kw + j) * s.ci + c] = (i * Wp + j) * s.ci + c;
  tMb.resize(M);
  tCb.resize(M);
  for (int i = 0; i < s.oh; ++i)
    for (int j = 0; j < s.ow; ++j) {
      tMb[i * s.ow + j] = (i * s.sh * Wp + j * s.sw) * s.ci;
      tCb[i * s.ow + j] = (i * s.ow + j) * co;
    }
  const size_t xImage = static_cast<size_t>(s.H) * s.W * s.ci;
  const size_t yImage = static_cast<size_t>(M) * co;
  const float* sh = tShift.data();
  const bool planar = s.sh == 1 && s.sw == 1 && usePlanar(co, s.ci, s.kh * s.kw);
  const int Wq = planar ? planarWp(s) : Wp;  // the planes' row pitch
  const int64_t ps = planeSize(Hp, Wq);
  const int Mp = (s.oh - 1) * Wq + s.ow;
  const int64_t ldy = (Mp + 15) / 16 * 16;
  if (planar) {
    tKofs.resize(K);
    for (int i = 0; i < s.kh; ++i)
      for (int j = 0; j < s.kw; ++j)
        for (int c = 0; c < s.ci; ++c) tKofs[(i * s.kw + j) * s.ci + c] = static_cast<int32_t>(c * ps + i * Wq + j);
    tPlanes.assign(static_cast<size_t>(s.ci * ps + 16), 0.0f);
    tOut.resize(static_cast<size_t>(co * ldy));
  }
  for (int n = 0; n < s.b; ++n) {
    float* yn = y + n * yImage;
    if (planar) {  // as conv2d_forward's planar path, with the folded filter
      toPlanes(x + n * xImage, s.H, s.W, s.ci, s.pt, s.pl, Wq, ps, tPlanes.data());
      const Planar p{tPlanes.data(), tKofs.data(), K, tFolded.data(), co, Mp, tOut.data(), static_cast<int>(ldy)};
      planarForward(p, s.oh, s.ow, Wq);
      fromPlanes(tOut.data(), ldy, s.oh, s.ow, Wq, co, yn, static_cast<int64_t>(s.ow) * co, co);
    } else {
      const float* xp = padImage(x + n * xImage, s.H, s.W, s.ci, s.pt, s.pl, Hp, Wp, n == 0);
      const Gather g{xp, tMb.data(), M, tKb.data(), tFolded.data(), co, co, yn, tCb.data()};
      forwardProduct(g, s.ow, s.sw, s.ci, K);
    }
    // The tail on this image's output while it is in cache.
    tailPixels(yn, res != nullptr ? res + n * yImage : nullptr, sh, M, co, relu);
  }
}

namespace {

// Channel planes of one image: C planes of Hp x Wp (+ slack), the image at row pt, column pl, the
// border zero.
struct Geom {
  int C = 0, H = 0, W = 0, pt = 0, pl = 0, Hp = 0, Wp = 0;
  bool operator==(const Geom& o) const {
    return C == o.C && H == o.H && W == o.W && pt == o.pt && pl == o.pl && Hp == o.Hp && Wp == o.Wp;
  }
  bool operator!=(const Geom& o) const { return !(*this == o); }
  int64_t ps() const { return planeSize(Hp, Wp); }
  size_t floats() const { return static_cast<size_t>(C * ps() + 16); }
};

// A step prepared once per call: the folded filter, its offsets, and how it runs.
struct StepPlan {
  std::vector<float> folded, shift;
  std::vector<int32_t> kb, mb, cb, kofs;
  std::vector<uint16_t> keep;  // a chain step's lanes that are pixels, per vector of its flattened output
  int Hp = 0, Wp = 0, M = 0, Mp = 0;
  int64_t ldy = 0;
  Geom gin;             // its input as planes (planar steps)
  bool planar = false;  // the pixel-vectorised product
  bool chain = false;   // planar, output the input's size: its output is planes of gin's geometry (C = co)
  bool direct = false;  // a gather step reading its input's buffer in place (its border is the padding)
};

// Where one image's activation lives: pixel-major and/or channel planes of `g`.
struct BufPlan {
  bool nhwc = false;
  bool hasPlanes = false;
  Geom g;
  Geom pg;  // the pixel-major form: H x W x C inside a zero border (pt, pl; Hp x Wp in all)
  int nhwcSlot = -1, planesSlot = -1;
  int lastUse = -1;
};

}  // namespace

void conv_bn_program(const float* x, int b, const ConvBnStep* steps, int n, float* y, float eps) {
  std::vector<StepPlan> plan(n);
  for (int i = 0; i < n; ++i) {
    StepPlan& P = plan[i];
    const ConvShape& s = steps[i].s;
    const int K = s.kh * s.kw * s.ci;
    fold(steps[i].w, steps[i].gamma, steps[i].beta, steps[i].mean, steps[i].var, K, s.co, eps, P.folded, P.shift);
    P.planar = s.sh == 1 && s.sw == 1 && usePlanar(s.co, s.ci, s.kh * s.kw);
    P.Hp = paddedRows(s.H, s.pt, s.oh, s.sh, s.kh);
    P.Wp = P.planar ? planarWp(s) : paddedRows(s.W, s.pl, s.ow, s.sw, s.kw);
    P.M = s.oh * s.ow;
    P.Mp = (s.oh - 1) * P.Wp + s.ow;
    P.ldy = (P.Mp + 15) / 16 * 16;
    P.chain = P.planar && s.oh == s.H && s.ow == s.W;
    P.gin = Geom{s.ci, s.H, s.W, s.pt, s.pl, P.Hp, P.Wp};
    P.kb.resize(K);
    for (int a = 0; a < s.kh; ++a)
      for (int c = 0; c < s.kw; ++c)
        for (int ch = 0; ch < s.ci; ++ch) P.kb[(a * s.kw + c) * s.ci + ch] = (a * P.Wp + c) * s.ci + ch;
    P.mb.resize(P.M);
    P.cb.resize(P.M);
    for (int a = 0; a < s.oh; ++a)
      for (int c = 0; c < s.ow; ++c) {
        P.mb[a * s.ow + c] = (a * s.sh * P.Wp + c * s.sw) * s.ci;
        P.cb[a * s.ow + c] = (a * s.ow + c) * s.co;
      }
    if (P.planar) {
      const int64_t ps = P.gin.ps();
      P.kofs.resize(K);
      for (int a = 0; a < s.kh; ++a)
        for (int c = 0; c < s.kw; ++c)
          for (int ch = 0; ch < s.ci; ++ch)
            P.kofs[(a * s.kw + c) * s.ci + ch] = static_cast<int32_t>(ch * ps + a * P.Wp + c);
      P.keep.assign(static_cast<size_t>(P.ldy / 16), 0);
      for (int m = 0; m < P.Mp; ++m)
        if (m % P.Wp < s.ow) P.keep[m / 16] = static_cast<uint16_t>(P.keep[m / 16] | (1u << (m % 16)));
    }
  }
  auto gout = [&](int i) {
    Geom g = plan[i].gin;
    g.C = steps[i].s.co;
    return g;
  };
  // Which buffers live as planes: a chain step's output always; another buffer when every planar
  // step reading it wants the same planes. A chain step whose residual is not in its output's
  // planes writes pixel-major instead; repeat until nothing changes.
  std::vector<BufPlan> buf(n + 1);
  for (bool changed = true; changed;) {
    changed = false;
    for (int id = 0; id <= n; ++id) {
      BufPlan& B = buf[id];
      B.hasPlanes = id > 0 && plan[id - 1].chain;
      if (B.hasPlanes) {
        B.g = gout(id - 1);
        continue;
      }
      bool any = false, agree = true;
      Geom want;
      for (int j = 0; j < n; ++j) {
        Geom g;
        if (steps[j].in == id && plan[j].planar) g = plan[j].gin;
        else if (steps[j].res == id && plan[j].chain) g = gout(j);
        else continue;
        if (!any) want = g;
        else if (g != want) agree = false;
        any = true;
      }
      B.hasPlanes = any && agree && want.C % 16 == 0;
      B.g = want;
    }
    for (int j = 0; j < n; ++j)
      if (plan[j].chain && steps[j].res >= 0 && (!buf[steps[j].res].hasPlanes || buf[steps[j].res].g != gout(j))) {
        plan[j].chain = false;
        changed = true;
      }
  }
  for (int id = 0; id <= n; ++id) {
    BufPlan& B = buf[id];
    // Every step but a chain step writes its output pixel-major.
    B.nhwc = id == 0 || id == n || !plan[id - 1].chain;
    for (int j = 0; j < n; ++j) {
      if (steps[j].in == id) {
        B.lastUse = j;
        if (!(plan[j].planar && B.hasPlanes && B.g == plan[j].gin)) B.nhwc = true;
      }
      if (steps[j].res == id) {
        B.lastUse = j;
        if (!plan[j].chain) B.nhwc = true;
      }
    }
  }
  // Pixel-major buffers between steps carry the widest border their gather readers pad with, so
  // those read them in place (no copy per image); the program's input and output have none.
  for (int id = 0; id <= n; ++id) {
    BufPlan& B = buf[id];
    const int H = id == 0 ? steps[0].s.H : steps[id - 1].s.oh;
    const int W = id == 0 ? steps[0].s.W : steps[id - 1].s.ow;
    const int C = id == 0 ? steps[0].s.ci : steps[id - 1].s.co;
    int top = 0, left = 0, bottom = 0, right = 0;
    if (id > 0 && id < n)
      for (int j = 0; j < n; ++j)
        if (steps[j].in == id && !plan[j].planar) {
          top = std::max(top, steps[j].s.pt);
          left = std::max(left, steps[j].s.pl);
          bottom = std::max(bottom, plan[j].Hp - H - steps[j].s.pt);
          right = std::max(right, plan[j].Wp - W - steps[j].s.pl);
        }
    B.pg = Geom{C, H, W, top, left, H + top + bottom, W + left + right};
  }
  for (int j = 0; j < n; ++j) {
    StepPlan& P = plan[j];
    const ConvShape& s = steps[j].s;
    if (P.planar) continue;
    const Geom& gi = buf[steps[j].in].pg;
    P.direct = gi.pt >= s.pt && gi.pl >= s.pl && gi.Hp - gi.pt - s.H >= P.Hp - s.pt - s.H &&
               gi.Wp - gi.pl - s.W >= P.Wp - s.pl - s.W;
    const Geom& go = buf[j + 1].pg;
    for (int a = 0; a < s.oh; ++a)
      for (int c = 0; c < s.ow; ++c) P.cb[a * s.ow + c] = (a * go.Wp + c) * s.co;
    if (!P.direct) continue;  // copied into its own padded buffer: kb and mb as planned
    // Offsets from the buffer's interior origin (its pixel (0, 0)).
    for (int a = 0; a < s.kh; ++a)
      for (int c = 0; c < s.kw; ++c)
        for (int ch = 0; ch < s.ci; ++ch) P.kb[(a * s.kw + c) * s.ci + ch] = (a * gi.Wp + c) * s.ci + ch;
    for (int a = 0; a < s.oh; ++a)
      for (int c = 0; c < s.ow; ++c) P.mb[a * s.ow + c] = ((a * s.sh - s.pt) * gi.Wp + c * s.sw - s.pl) * s.ci;
  }
  // Scratch slots per image, reused once a buffer is dead, by geometry (a border stays zero:
  // every writer writes the interior only, or re-zeroes what it wrote outside).
  std::vector<std::vector<float>> slots;
  std::vector<size_t> slotSize;
  std::vector<Geom> slotGeom;
  std::vector<char> slotPlanes, slotFree;
  auto take = [&](bool planes, size_t size, const Geom& g) {
    for (size_t k = 0; k < slots.size(); ++k)
      if (slotFree[k] && slotPlanes[k] == planes && slotGeom[k] == g && slotSize[k] == (planes ? g.floats() : size)) {
        slotFree[k] = 0;
        return static_cast<int>(k);
      }
    slots.emplace_back(planes ? g.floats() : size, 0.0f);
    slotSize.push_back(planes ? g.floats() : size);
    slotGeom.push_back(g);
    slotPlanes.push_back(planes);
    slotFree.push_back(0);
    return static_cast<int>(slots.size() - 1);
  };
  if (buf[0].hasPlanes) buf[0].planesSlot = take(true, 0, buf[0].g);
  for (int i = 0; i < n; ++i) {
    BufPlan& B = buf[i + 1];
    const ConvShape& s = steps[i].s;
    if (B.nhwc && i + 1 < n) B.nhwcSlot = take(false, static_cast<size_t>(B.pg.Hp) * B.pg.Wp * s.co, B.pg);
    if (B.hasPlanes) B.planesSlot = take(true, 0, B.g);
    for (int id = 0; id <= i; ++id)
      if (buf[id].lastUse == i) {
        if (buf[id].nhwcSlot >= 0) slotFree[buf[id].nhwcSlot] = 1;
        if (buf[id].planesSlot >= 0) slotFree[buf[id].planesSlot] = 1;
      }
  }
  // A planar step whose input has no planes of its geometry converts it (as conv2d_forward_bn).
  std::vector<std::vector<float>> inPlanes(n);
  for (int j = 0; j < n; ++j)
    if (plan[j].planar && !(buf[steps[j].in].hasPlanes && buf[steps[j].in].g == plan[j].gin))
      inPlanes[j].assign(plan[j].gin.floats(), 0.0f);
  // A gather step whose input needs padding copies it into its own zero-bordered buffer.
  std::vector<std::vector<float>> padded(n);
  for (int j = 0; j < n; ++j) {
    const ConvShape& s = steps[j].s;
    if (!plan[j].planar && !plan[j].direct)
      padded[j].assign(static_cast<size_t>(plan[j].Hp) * plan[j].Wp * s.ci, 0.0f);
  }
  size_t outFloats = 0;
  for (int j = 0; j < n; ++j)
    if (plan[j].planar && !plan[j].chain) outFloats = std::max(outFloats, static_cast<size_t>(steps[j].s.co * plan[j].ldy));
  std::vector<float> out(outFloats);

  const ConvShape& s0 = steps[0].s;
  const size_t xImage = static_cast<size_t>(s0.H) * s0.W * s0.ci;
  const ConvShape& sl = steps[n - 1].s;
  const size_t yImage = static_cast<size_t>(sl.oh) * sl.ow * sl.co;
  // A pixel-major buffer's pixel (0, 0) and its row pitch in floats.
  auto nhwcOf = [&](int id, int img) -> float* {
    if (id == 0) return const_cast<float*>(x) + img * xImage;
    if (id == n) return y + img * yImage;
    const Geom& g = buf[id].pg;
    return slots[buf[id].nhwcSlot].data() + (static_cast<size_t>(g.pt) * g.Wp + g.pl) * g.C;
  };
  auto pitchOf = [&](int id) { return static_cast<int64_t>(buf[id].pg.Wp) * buf[id].pg.C; };
  // The tail of one image's output, row by row (rows may have borders between them).
  auto tailRows = [&](int id, int img, int res, const float* sh, bool relu) {
    const Geom& g = buf[id].pg;
    float* yo = nhwcOf(id, img);
    const float* ro = res >= 0 ? nhwcOf(res, img) : nullptr;
    for (int r = 0; r < g.H; ++r)
      tailPixels(yo + r * pitchOf(id), ro != nullptr ? ro + r * pitchOf(res) : nullptr, sh, g.W, g.C, relu);
  };
  // toPlanes from a pixel-major buffer with a border.
  auto planesFrom = [&](int id, int img, const Geom& to, float* planes) {
    const Geom& g = buf[id].pg;
    const float* src = nhwcOf(id, img);
    if (g.Wp == g.W) {
      toPlanes(src, g.H, g.W, g.C, to.pt, to.pl, to.Wp, to.ps(), planes);
      return;
    }
    for (int r = 0; r < g.H; ++r)
      toPlanes(src + r * pitchOf(id), 1, g.W, g.C, to.pt + r, to.pl, to.Wp, to.ps(), planes);
  };
  auto planesOf = [&](int id) { return slots[buf[id].planesSlot].data(); };
  for (int img = 0; img < b; ++img) {
    if (buf[0].hasPlanes) planesFrom(0, img, buf[0].g, planesOf(0));
    for (int i = 0; i < n; ++i) {
      const ConvBnStep& st = steps[i];
      const ConvShape& s = st.s;
      StepPlan& P = plan[i];
      const int K = s.kh * s.kw * s.ci;
      const int co = s.co;
      const int id = i + 1;
      const float* sh = P.shift.data();
      if (P.planar) {
        const float* xin;
        const BufPlan& In = buf[st.in];
        if (In.hasPlanes && In.g == P.gin) {
          xin = planesOf(st.in);
        } else {
          planesFrom(st.in, img, P.gin, inPlanes[i].data());
          xin = inPlanes[i].data();
        }
        if (P.chain) {
          // Output pixel (a, c) at flattened position a * Wp + c of the product lands at
          // (a + pt) * Wp + c + pl of the output planes: one offset. The shift, residual and ReLU
          // are applied to the accumulators as they are stored, and the padding columns (and the
          // positions past the last pixel) stay zero: stored as zeros, or not written by rows.
          const Geom g = gout(i);
          const int64_t ps = g.ps();
          const int64_t base = static_cast<int64_t>(g.pt) * g.Wp + g.pl;
          float* yp = planesOf(id);
          const Planar p{xin, P.kofs.data(), K, P.folded.data(), co, P.Mp, yp + base, static_cast<int>(ps)};
          const float* rp = st.res >= 0 ? planesOf(st.res) + base : nullptr;
          const PlanarTail t{sh, rp, P.keep.data(), st.relu};
          planarForwardTail(p, t, s.oh, s.ow, g.Wp);
          if (buf[id].nhwc) fromPlanes(yp + base, ps, s.oh, s.ow, g.Wp, co, nhwcOf(id, img), pitchOf(id), co);
        } else {
          const Planar p{xin, P.kofs.data(), K, P.folded.data(), co, P.Mp, out.data(), static_cast<int>(P.ldy)};
          planarForward(p, s.oh, s.ow, P.Wp);
          float* yn = nhwcOf(id, img);
          fromPlanes(out.data(), P.ldy, s.oh, s.ow, P.Wp, co, yn, pitchOf(id), co);
          tailRows(id, img, st.res, sh, st.relu);
        }
      } else {
        float* yn = nhwcOf(id, img);
        // The padded image in the step's own buffer, its border zeroed once per call.
        const float* xp = nhwcOf(st.in, img);
        if (!P.direct) {
          float* dst = padded[i].data();
          for (int r = 0; r < s.H; ++r)
            std::memcpy(dst + (static_cast<size_t>(r + s.pt) * P.Wp + s.pl) * s.ci, xp + r * pitchOf(st.in),
                        sizeof(float) * s.W * s.ci);
          xp = dst;
        }
        const Gather g{xp, P.mb.data(), P.M, P.kb.data(), P.folded.data(), co, co, yn, P.cb.data()};
        forwardProduct(g, s.ow, s.sw, s.ci, K);
        tailRows(id, img, st.res, sh, st.relu);
      }
      if (buf[id].hasPlanes && !P.chain) {
        const Geom& g = buf[id].g;
        planesFrom(id, img, g, planesOf(id));
      }
    }
  }
}

// dx[y, x, c] = sum over taps (kh, kw) and o of dy[(y + pt - kh) / sh, (x + pl - kw) / sw, o] *
// w[kh, kw, c, o], where the divisions are exact. Output pixels of one phase (y mod sh, x mod sw)
// share their taps, so each phase is one gather product over zero-padded dy: no zeros inserted.
void conv2d_backprop_input(const float* dy, const float* w, float* dx, const ConvShape& s) {
  auto range = [](int stride, int pad, int k, int& lo, int& hi) {
    lo = 1 << 30;
    hi = -(1 << 30);
    for (int r = 0; r < stride; ++r)
      for (int t = 0; t < k; ++t) {
        const int v = r + pad - t;
        if (((v % stride) + stride) % stride != 0) continue;
        lo = std::min(lo, v / stride);
        hi = std::max(hi, v / stride);
      }
  };
  int dlo, dhi, elo, ehi;
  range(s.sh, s.pt, s.kh, dlo, dhi);
  range(s.sw, s.pl, s.kw, elo, ehi);
  const int U = (s.H + s.sh - 1) / s.sh;
  const int V = (s.W + s.sw - 1) / s.sw;
  const size_t dxSize = static_cast<size_t>(s.b) * s.H * s.W * s.ci;
  if (dlo > dhi || elo > ehi) {  // no tap reaches any pixel (stride larger than the filter)
    std::memset(dx, 0, sizeof(float) * dxSize);
    return;
  }
  const int PT = std::max(0, -dlo);
  const int PL = std::max(0, -elo);
  const int Hp = std::max(s.oh + PT, U + dhi + PT);
  const bool planar = usePlanar(s.ci, s.co, s.kh * s.kw);
  // The planar product reads positions flattened over the padded width, so a read past a row's
  // end lands on the next row's left padding: one zero column can serve as both a row's right
  // and the next row's left padding (29 columns instead of 30 at 28 wide: 3 % fewer positions).
  const int Wp = planar ? std::max(s.ow + PL, V + ehi) : std::max(s.ow + PL, V + ehi + PL);
  // A phase no tap reaches (a stride larger than the filter) stays zero: clear dx first.
  auto reached = [](int stride, int pad, int k, int r) {
    for (int t = 0; t < k; ++t)
      if ((((r + pad - t) % stride) + stride) % stride == 0) return true;
    return false;
  };
  bool gaps = false;
  for (int r = 0; r < s.sh; ++r) gaps = gaps || !reached(s.sh, s.pt, s.kh, r);
  for (int q = 0; q < s.sw; ++q) gaps = gaps || !reached(s.sw, s.pl, s.kw, q);
  // Each image's dx is cleared just before its phases write into it (while it is in cache): a
  // clear of the whole batch first left the phases re-reading it from memory (the 1x1 stride-2
  // shortcut's input gradient, three quarters zeros, ran at a third of peak).
  const size_t dxImage = static_cast<size_t>(s.H) * s.W * s.ci;
  const int64_t ps = planeSize(Hp, Wp);
  tPhases.clear();
  for (int r = 0; r < s.sh && r < s.H; ++r)
    for (int q = 0; q < s.sw && q < s.W; ++q) {
      // Taps of this phase, packed as B [(tap, o), c] = w[kh, kw, c, o], and their dy offsets.
      Phase ph;
      for (int kh = 0; kh < s.kh; ++kh) {
        const int v = r + s.pt - kh;
        if (((v % s.sh) + s.sh) % s.sh != 0) continue;
        for (int kw = 0; kw < s.kw; ++kw) {
          const int u = q + s.pl - kw;
          if (((u % s.sw) + s.sw) % s.sw != 0) continue;
          const int d = v / s.sh;
          const int e = u / s.sw;
          const float* wt = w + static_cast<size_t>(kh * s.kw + kw) * s.ci * s.co;
          for (int o = 0; o < s.co; ++o) {
            ph.kb.push_back((d * Wp + e) * s.co + o);
            ph.kofs.push_back(static_cast<int32_t>(o * ps + (d + PT) * Wp + e + PL));
            ph.reach = std::max(ph.reach, (d + PT) * Wp + e + PL);
            for (int c = 0; c < s.ci; ++c) ph.filter.push_back(wt[c * s.co + o]);
          }
        }
      }
      if (ph.kb.empty()) continue;
      const int rows = (s.H - r + s.sh - 1) / s.sh;
      const int cols = (s.W - q + s.sw - 1) / s.sw;
      for (int a = 0; a < rows; ++a)
        for (int c = 0; c < cols; ++c) {
          ph.mb.push_back(((a + PT) * Wp + c + PL) * s.co);
          ph.cb.push_back(((a * s.sh + r) * s.W + c * s.sw + q) * s.ci);
        }
      tPhases.push_back(std::move(ph));
    }
  const size_t dyImage = static_cast<size_t>(s.oh) * s.ow * s.co;
  if (planar) {
    // Per phase (r, q), dx[a * sh + r, c * sw + q] at flattened padded position a * Wp + c of
    // dy's planes. Each block of positions goes straight from the product to dx's pixels, and
    // the first phase transposes dy's rows into the planes as its blocks come to read them, so
    // planes and outputs are still in L1 when used (a whole image of each lived in L2), with the
    // next image's dy prefetched meanwhile: 1.01-1.06x on the 16-channel layers.
    tPlanes.assign(static_cast<size_t>(s.co * ps + 16), 0.0f);
    for (int n = 0; n < s.b; ++n) {
      if (gaps) std::memset(dx + n * dxImage, 0, sizeof(float) * dxImage);
      bool first = true;
      for (const Phase& ph : tPhases) {
        const int r = ph.cb[0] / s.ci / s.W;  // the phase's first pixel is (r, q)
        const int q = ph.cb[0] / s.ci % s.W;
        const int rows = (s.H - r + s.sh - 1) / s.sh;
        const int cols = (s.W - q + s.sw - 1) / s.sw;
        const PlanarDx d{tPlanes.data(), ph.kofs.data(), static_cast<int>(ph.kofs.size()), ph.filter.data(),
                         (rows - 1) * Wp + cols, Wp, cols, dx + n * dxImage + (static_cast<size_t>(r) * s.W + q) * s.ci,
                         static_cast<int64_t>(s.sh) * s.W * s.ci, static_cast<int64_t>(s.sw) * s.ci,
                         first ? dy + n * dyImage : nullptr, s.oh, s.ow, s.co, PT, PL, ph.reach, ps, tPlanes.data(),
                         first && n + 1 < s.b ? dy + (n + 1) * dyImage : nullptr, static_cast<int64_t>(dyImage)};
        planar_dx_avx512(d);
        first = false;
      }
    }
    return;
  }
  // dy's padded image: its border zeroed once per call, each image copies only its interior.
  const bool padded = PT != 0 || PL != 0 || Hp != s.oh || Wp != s.ow;
  if (padded) tPad.assign(static_cast<size_t>(Hp) * Wp * s.co, 0.0f);
  for (int n = 0; n < s.b; ++n) {
    if (gaps) std::memset(dx + n * dxImage, 0, sizeof(float) * dxImage);
    const float* dyp = dy + n * dyImage;
    if (padded) {
      for (int i = 0; i < s.oh; ++i)
        std::memcpy(tPad.data() + (static_cast<size_t>(i + PT) * Wp + PL) * s.co, dyp + static_cast<size_t>(i) * s.ow * s.co,
                    sizeof(float) * s.ow * s.co);
      dyp = tPad.data();
    }
    for (const Phase& ph : tPhases) {
      const Gather g{dyp, ph.mb.data(), static_cast<int>(ph.mb.size()), ph.kb.data(), ph.filter.data(),
                     s.ci, s.ci, dx + static_cast<size_t>(n) * s.H * s.W * s.ci, ph.cb.data()};
      gather_gemm(g, 0, static_cast<int>(ph.kb.size()), false);
    }
  }
}

// dw[kh, kw, c, o] = sum over pixels p = (n, i, j) of xpad[n, i*sh + kh, j*sw + kw, c] * dy[p, o]:
// rows are taps, the sum runs over the whole batch in chunks that keep dy's rows in cache.
void conv2d_backprop_filter(const float* x, const float* dy, float* dw, const ConvShape& s) {
  const int Hp = paddedRows(s.H, s.pt, s.oh, s.sh, s.kh);
  const int Wp = paddedRows(s.W, s.pl, s.ow, s.sw, s.kw);
  const int M = s.kh * s.kw * s.ci;
  tMb.resize(M);
  tCb.resize(M);
  for (int i = 0; i < s.kh; ++i)
    for (int j = 0; j < s.kw; ++j)
      for (int c = 0; c < s.ci; ++c) {
        const int r = (i * s.kw + j) * s.ci + c;
        tMb[r] = (i * Wp + j) * s.ci + c;
        tCb[r] = r * s.co;
      }
  const int pixels = s.oh * s.ow;
  if (s.b == 0) {
    std::memset(dw, 0, sizeof(float) * M * s.co);
    return;
  }
  // Images in groups (padded while in cache), the sum over their pixels in chunks whose dy
  // rows stay in L1; dw accumulates across chunks.
  const int chunk = std::clamp(16384 / s.co, 64, 512);
  const int group = std::max(1, std::min(s.b, chunk / pixels));
  tKb.resize(static_cast<size_t>(group) * pixels);
  for (int n = 0, p = 0; n < group; ++n)
    for (int i = 0; i < s.oh; ++i)
      for (int j = 0; j < s.ow; ++j, ++p) tKb[p] = ((n * Hp + i * s.sh) * Wp + j * s.sw) * s.ci;
  const size_t xImage = static_cast<size_t>(s.H) * s.W * s.ci;
  if (gUseAvx512 && s.ci == 16 && s.kw == 3 && s.kh * s.kw <= 16) {
    // Vectorised over input channels (conv512.cc): x's channels are contiguous, so a tile
    // holds 8 (or 4) output channels x a filter row's taps x 16 (or 32) input channels and
    // broadcasts dy once per output channel; the result is dw transposed, [co][taps * ci].
    // x is read in place (no padded copy: the copy and its zeroing were 17 % of the pass); taps
    // outside the image are masked to zeros, pixel by pixel (tValid).
    const int taps = s.kh * s.kw;
    tOut.resize(static_cast<size_t>(M) * s.co);
    tKofs.resize(taps);
    for (int i = 0; i < s.kh; ++i)
      for (int j = 0; j < s.kw; ++j) tKofs[i * s.kw + j] = (i * s.W + j) * s.ci;
    tValid.resize(static_cast<size_t>(group) * pixels);
    for (int n = 0, p = 0; n < group; ++n)
      for (int i = 0; i < s.oh; ++i)
        for (int j = 0; j < s.ow; ++j, ++p) {
          const int r = i * s.sh - s.pt;
          const int c = j * s.sw - s.pl;
          tKb[p] = ((n * s.H + r) * s.W + c) * s.ci;
          unsigned bits = 0;
          for (int a = 0; a < s.kh; ++a)
            for (int e = 0; e < s.kw; ++e)
              if (r + a >= 0 && r + a < s.H && c + e >= 0 && c + e < s.W) bits |= 1u << (a * s.kw + e);
          tValid[p] = static_cast<uint16_t>(bits);
        }
    for (int n0 = 0; n0 < s.b; n0 += group) {
      const int g = std::min(group, s.b - n0);
      const FilterCvec f{x + n0 * xImage, tKb.data(), tKofs.data(), taps, s.kw, s.ci,
                         dy + static_cast<size_t>(n0) * pixels * s.co, s.co, tOut.data(), tValid.data()};
      const int P = g * pixels;
      for (int k0 = 0; k0 < P; k0 += chunk) filter_cvec_avx512(f, k0, std::min(P, k0 + chunk), n0 > 0 || k0 > 0);
    }
    for (int k = 0; k < M; ++k)
      for (int o = 0; o < s.co; ++o) dw[static_cast<size_t>(k) * s.co + o] = tOut[static_cast<size_t>(o) * M + k];
    return;
  }
  if (gUseAvx512 && s.co == 16 && s.kh == 3 && s.kw == 3 && (s.ci == 1 || s.ci == 3)) {
    // The stems: every filter row in one tile (conv_grad512.cc), dw accumulating across groups.
    tPad.assign(static_cast<size_t>(group) * Hp * Wp * s.ci, 0.0f);
    for (int n0 = 0; n0 < s.b; n0 += group) {
      const int g = std::min(group, s.b - n0);
      padInterior(x + n0 * xImage, g, s, Hp, Wp, tPad.data());
      const FilterRows f{tPad.data(), tKb.data(), g * pixels, Wp * s.ci, s.kh, s.kw, s.ci,
                         dy + static_cast<size_t>(n0) * pixels * s.co, dw};
      filter_rows_avx512(f, n0 > 0);
    }
    return;
  }
  // A padded group's border is zeroed once per call; each group copies only its interior.
  const bool padded = s.pt != 0 || s.pl != 0 || Hp != s.H || Wp != s.W;
  if (padded) tPad.assign(static_cast<size_t>(group) * Hp * Wp * s.ci, 0.0f);
  for (int n0 = 0; n0 < s.b; n0 += group) {
    const int g = std::min(group, s.b - n0);
    if (padded) padInterior(x + n0 * xImage, g, s, Hp, Wp, tPad.data());
    const float* xp = padded ? tPad.data() : x + n0 * xImage;
    const Gather gather{xp, tMb.data(), M, tKb.data(), dy + static_cast<size_t>(n0) * pixels * s.co, s.co, s.co, dw,
                        tCb.data()};
    const int P = g * pixels;
    for (int k0 = 0; k0 < P; k0 += chunk) gather_gemm(gather, k0, std::min(P, k0 + chunk), n0 > 0 || k0 > 0);
  }
}

// The gather product with mb[m] = m * K and kb[k] = k. Rows in blocks whose slice of a stays in
// L2 while every 16-column block of b streams past it.
void matmul(const float* a, const float* b, float* c, int M, int K, int N) {
  if (K == 0) {
    std::memset(c, 0, sizeof(float) * static_cast<size_t>(M) * N);
    return;
  }
  // (Capped so that the row offsets i * K and i * N stay in int32.)
  const int rows = std::max(kMR, std::min((65536 / K) / kMR * kMR, (1 << 30) / std::max(K, N)));
  tKb.resize(K);
  for (int k = 0; k < K; ++k) tKb[k] = k;
  tMb.resize(rows);
  tCb.resize(rows);
  for (int m0 = 0; m0 < M; m0 += rows) {
    const int r = std::min(rows, M - m0);
    for (int i = 0; i < r; ++i) {
      tMb[i] = i * K;
      tCb[i] = i * N;
    }
    const Gather g{a + static_cast<size_t>(m0) * K, tMb.data(), r, tKb.data(), b, N, N,
                   c + static_cast<size_t>(m0) * N, tCb.data()};
    gather_gemm(g, 0, K, false);
  }
}

#else  // not x86-64: the caller never gets here (kernels_compiled() is false)

bool kernels_compiled() { return false; }
void set_avx512(bool) {}
bool using_avx512() { return false; }
void conv2d_forward(const float*, const float*, float*, const ConvShape&) {}
void conv2d_backprop_input(const float*, const float*, float*, const ConvShape&) {}
void conv2d_backprop_filter(const float*, const float*, float*, const ConvShape&) {}
void conv2d_forward_bn(const float*, const float*, const float*, const float*, const float*, const float*,
                       const float*, float*, const ConvShape&, float, bool) {}
void conv_bn_program(const float*, int, const ConvBnStep*, int, float*, float) {}
void matmul(const float*, const float*, float*, int, int, int) {}

#endif

}  // namespace longtail

#if defined(LONGTAIL_X86) && defined(__clang__)
#pragma clang attribute pop
#endif
