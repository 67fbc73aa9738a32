// The filter gradient's AVX-512 product for few input channels (conv_grad512.cc), beside the
// shared products in gather.h.
#pragma once

#include <cstdint>

namespace longtail {

// dw[r * 16 + o] (+)= sum over p in [0, P) of X[pix[p] + (r / (kw * ci)) * rowPitch + r % (kw * ci)]
// * dy[p * 16 + o] for the kh * kw * ci rows r of a filter with 16 output channels: dw in its
// own layout [kh][kw][ci][16], X a padded image (channels innermost, so one filter row's taps are
// kw * ci consecutive floats). The sum runs over p ascending, as the gather product's (so the
// same bits). Only kh = kw = 3 with ci 1 or 3 (the stems); false (nothing done) otherwise.
struct FilterRows {
  const float* X;
  const int32_t* pix;
  int P;
  int rowPitch;
  int kh, kw, ci;
  const float* dy;
  float* dw;
};
bool filter_rows_avx512(const FilterRows& f, bool accumulate);

// The input gradient's planar product (gather.h's Planar with N = 16 dx channels) written
// straight to dx's pixels: Y[n][m] = sum over k ascending of X[m + kofs[k]] * B[k * 16 + n], for
// each flattened position m = a * Wp + c with c < cols and m < M, stored as dx pixel
// dx[a * rowPitch + c * pixelPitch + n]. Blocks of 48 positions go through a buffer in L1 and a
// register transpose, where writing the whole image's Y and transposing it afterwards read it
// back from L2. When src is set, dy's rows (srcRows x srcCols pixels of C channels, pixel-major)
// are transposed into the planes (plane pitch ps, at row PT, column PL of width Wp) just before
// the first block that reads them, and the rest at the end; `reach` is the largest offset within
// a plane in kofs; `next` (nFloats floats: the next image's dy) is prefetched into L2 a share a
// vector, or nullptr. The same sums in the same order as planar_gemm_avx512 (the same bits).
struct PlanarDx {
  const float* X;
  const int32_t* kofs;
  int K;
  const float* B;
  int M, Wp, cols;
  float* dx;
  int64_t rowPitch, pixelPitch;
  const float* src;
  int srcRows, srcCols, C, PT, PL, reach;
  int64_t ps;
  float* planes;
  const float* next;
  int64_t nFloats;
};
void planar_dx_avx512(const PlanarDx& d);

}  // namespace longtail
