// The gather product shared by the convolution kernels (conv.cc, AVX2) and its AVX-512 twin
// (conv512.cc): C[cb[m] + n] (+)= sum_k X[mb[m] + kb[k]] * B[k * ldb + n].
#pragma once

#include <cstdint>

namespace longtail {

// The forward convolution reads X = input at pixel m's window offset mb[m] plus tap offset
// kb[k]; the filter gradient swaps the two roles (taps are rows, pixels are the sum).
struct Gather {
  const float* X;
  const int32_t* mb;
  int M;
  const int32_t* kb;
  const float* B;
  int ldb;
  int N;
  float* C;
  const int32_t* cb;
};

// True when this build has the AVX-512 kernels (x86-64 with a compiler that knows AVX-512F).
bool avx512_compiled();

// The AVX-512F version of conv.cc's gather_gemm: the same sums in the same order (one FMA per
// k per output, k ascending), so the results are bit-identical; only the tiles are wider.
void gather_gemm_avx512(const Gather& g, int k0, int k1, bool accumulate);

// The forward product by output rows (conv512.cc), for g.M = oh * ow pixels whose windows and
// outputs advance linearly along a row (mb[m + 1] = mb[m] + ps, cb[m + 1] = cb[m] + N within a
// row of ow; ps = stride * input channels), k over all K taps from zero: tiles of up to 28
// pixels of one row address their inputs off one pointer. The gather product's sums in its
// order (the same bits). False, and nothing written, where no tiles are compiled for (N, ps):
// N 16 with ps 1 or 3 (stems), N 32 with ps 32, N a multiple of 64 with ps 64.
bool gather_rows_avx512(const Gather& g, int ow, int ps, int K);

// The product vectorised over pixels (conv512.cc), for few output channels (16) where the gather
// product has one vector per tile row and a broadcast per multiply-add: the input in planar
// layout (one plane per channel, rows padded), outputs at flattened padded positions m:
// Y[n * ldy + m] = sum_k X[m + kofs[k]] * B[k * N + n] for m in [0, M), n in [0, N), k
// ascending from 0 (the gather product's order, so the same bits). N a multiple of 8; X and Y
// are read and written up to M rounded up to 16 (the caller's slack).
struct Planar {
  const float* X;
  const int32_t* kofs;
  int K;
  const float* B;
  int N;
  int M;
  float* Y;
  int ldy;
};
void planar_gemm_avx512(const Planar& p);
// The same product over nvec vectors of 16 outputs starting at flattened positions pos[]
// (ascending; p.M unused): for output rows of 16 * n pixels, the vectors of each row alone, not
// the padding columns between rows. Outputs past a row's end may be written (the next positions'
// own vectors overwrite them); Y and X as planar_gemm_avx512's, up to pos[nvec - 1] + 16.
void planar_rows_gemm_avx512(const Planar& p, const int32_t* pos, int nvec);
// The evaluation program's epilogue applied to the accumulators before they are stored (no
// second pass over the output): Y = relu?(product + shift[n] (+ res[n * ldy + m])), in that
// order (the tail loop's operations, so the same bits); lanes whose bit in keep[m / 16] is clear
// are stored as zeros (the padding columns and the positions past M). res and keep may be null.
struct PlanarTail {
  const float* shift;
  const float* res;
  const uint16_t* keep;
  bool relu;
};
void planar_gemm_tail_avx512(const Planar& p, const PlanarTail& t);
void planar_rows_gemm_tail_avx512(const Planar& p, const PlanarTail& t, const int32_t* pos, int nvec);

// The filter gradient vectorised over input channels (conv512.cc): dwT[o * K + t * ci + c] (+)=
// sum over p in [p0, p1) of X[pix[p] + tofs[t] + c] * dy[p * co + o], K = taps * ci, taps in
// rows of kw (tofs ascending within a row). The sum runs over p ascending, as the gather product's.
// ci a multiple of 16 (at most 32), kw <= 3, taps <= 16. Bit t of valid[p] clear: X there is
// outside the image and read as zeros (a masked load, so X needs no padded copy; the same FMA
// with a zero operand as a padded copy would give, so the same bits).
struct FilterCvec {
  const float* X;
  const int32_t* pix;
  const int32_t* tofs;
  int taps, kw, ci;
  const float* dy;
  int co;
  float* dwT;
  const uint16_t* valid;
};
void filter_cvec_avx512(const FilterCvec& f, int p0, int p1, bool accumulate);

// x [rows, C] -> planes[c * ps + r], and back (to rows `pitch` floats apart); C a multiple of 16
// (16 x 16 register transposes).
void to_planes_avx512(const float* x, int rows, int C, float* planes, int64_t ps);
void from_planes_avx512(const float* planes, int64_t ps, int rows, int C, float* y, int64_t pitch);

}  // namespace longtail
