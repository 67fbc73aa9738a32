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

}  // namespace longtail
