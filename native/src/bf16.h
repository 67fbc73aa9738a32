// bf16 products with fp32 accumulation (bf16.cc, AVX512_BF16's vdpbf16ps): inputs rounded to
// bfloat16 (nearest even), sums in fp32. Only after addon.cc checked the CPU.
#pragma once

#include "conv.h"

namespace longtail {

// True when this build has the bf16 kernels (x86-64, a compiler that knows AVX512_BF16).
bool bf16_compiled();

// c [M, N] = bf16(a) [M, K] x bf16(b) [K, N], row-major, fp32 accumulation.
void matmul_bf16(const float* a, const float* b, float* c, int M, int K, int N);

// The forward convolution of conv.h with bf16(x) and bf16(w), fp32 accumulation.
void conv2d_forward_bf16(const float* x, const float* w, float* y, const ConvShape& s);

}  // namespace longtail
