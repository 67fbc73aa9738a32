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

}  // namespace longtail
