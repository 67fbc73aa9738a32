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

// The input gradient of conv.h in bf16: dy convolved with the turned filter by
// conv2d_forward_bf16; when strided, one stride-1 convolution per output phase (r mod sh,
// q mod sw) with only the taps that reach it (no products with inserted zeros).
void conv2d_backprop_input_bf16(const float* dy, const float* w, float* dx, const ConvShape& s);

// The filter gradient of conv.h in bf16: dw = sum over images and pixels of x (x) dy, with the
// pixels as the summed dimension (pairs of pixels per vdpbf16ps), fp32 sums. Input channels a
// multiple of 16: output channels as rows, x read as 16-channel vectors of pixel pairs;
// otherwise x's taps as rows (the stem's 3 channels).
void conv2d_backprop_filter_bf16(const float* x, const float* dy, float* dw, const ConvShape& s);

}  // namespace longtail
