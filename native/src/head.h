// Fused kernels of a stage-2 head step (src/classifiers/head-shard.ts): the logits are kept
// class-major, [Cw, B] (row c holds class c's logit for every batch row), so every per-row
// statistic is a vertical reduction over contiguous lanes.
#pragma once

#include <node_api.h>

#include <cstddef>
#include <cstdint>

namespace longtail {

// Adds headTranspose, headMatmul, headForward, headBackward and headSgd to `exports`
// (Float32Array arguments; src/backend/native-head.ts); false when Node-API failed.
bool register_head(napi_env env, napi_value exports);

// True when this build has the head kernels (x86-64, AVX2 + FMA).
bool head_kernels_compiled();

// xt [d, B] = x [B, d] transposed.
void head_transpose(const float* x, float* xt, int B, int d);

// c [M, N] = a [M, K] x b [K, N], row-major: a packed AVX-512 product where the CPU has it and
// the AVX-512 tiles are on (bit-identical to conv.h's matmul, which runs otherwise).
void head_matmul(const float* a, const float* b, float* c, int M, int K, int N);

// Whether the packed AVX-512 product runs here (the CPU has AVX-512 and its tiles are on): only
// then does head_pack_a's layout mean anything.
bool head_packed_available();

// Floats of a [M, K] packed by head_pack_a.
size_t head_packed_a_size(int M, int K);

// a [M, K] packed once for head_matmul_nt (a frozen weight: LWS's W), head_packed_a_size floats.
void head_pack_a(const float* a, float* packed, int M, int K);

// c [M, N] = a [M, K] x^T with x [N, K] row-major (the batch as it comes: no transpose kept), a
// given plain or (aPacked, only where head_packed_available) packed by head_pack_a. The same sums
// in the same order as head_matmul(a, x^T), so bit-identical to it.
void head_matmul_nt(const float* a, bool aPacked, const float* x, float* c, int M, int K, int N);

// head_matmul_nt with X's row j the row rows[j] of x (every index valid): the batch gathered
// while the product packs it, not copied first. The same sums, bit for bit.
void head_matmul_nt_rows(const float* a, bool aPacked, const float* x, const int32_t* rows, float* c, int M, int K,
                         int N);

// In place a [Cw, B] = products + bias[c]; z = a * scale[c] + offset[c] (either may be null);
// max[r] = max_c z, e [Cw, B] = exp(z - max[r]), sum[r] = sum_c e.
void head_forward(float* a, const float* bias, const float* scale, const float* offset, float* e, float* max,
                  float* sum, int Cw, int B);

// In place g = e [Cw, B] * f[r] - (hot[r] == c ? hv[r] : 0); out[c] = sum_r g (a null) or
// sum_r g * a [Cw, B].
void head_backward(float* e, const float* f, const int32_t* hot, const float* hv, const float* a, float* out,
                   int Cw, int B);

// SGD with momentum and weight decay over n values (PyTorch's rule, each op rounded to float):
// d = g + wd * p; buf = momentum * buf + d; p = p - lr * buf.
void head_sgd(float* p, const float* g, float* buf, int64_t n, float momentum, float wd, float lr);

// The stage-2 row kernels: the same bits as the TypeScript they replace (linear-ops.ts, ncm.ts).
// mean[j] = float(mean[j] + f[i, j] / divisor) for i = 0 .. n-1 in order (double arithmetic).
void head_mean_rows(const float* f, int n, int d, double divisor, float* mean);
// out [n, d]: each row of f minus mean (null: nothing) in double, stored as float, then times
// 1 / max(||row||, 1e-12) with the norm summed in double over the unrounded differences.
void head_transform_rows(const float* f, const float* mean, float* out, int n, int d);
// out[labels[i]] += x[i] (float adds, rows in order); labels already checked to be in range.
void head_add_rows(const float* x, const int32_t* labels, float* out, int n, int d);
// out [m, C] from the class-major products zt [C, m]: zt + bias (bias null: zt), or with sq the
// NCM score -sqrt(max(0, ||x_i||^2 - 2 zt + sq[c])) in double, x [m, d] the transformed rows.
// For i < count and c < Cw: dst(dIdx[i], c) = src(sIdx[i], c), where a row-major array holds
// (j, c) at j * ld + c and a class-major one at c * ld + j (LWS's kept products: cached rows into
// the step's [Cw, B] block, computed columns into it and into the cache). Indices are checked.
void head_move_columns(const float* src, bool srcRowMajor, const int32_t* sIdx, int sLd, float* dst,
                       bool dstRowMajor, const int32_t* dIdx, int dLd, int count, int Cw);
void head_logit_rows(const float* zt, int C, int m, float* out, const float* bias, const float* sq, const float* x,
                     int d);
// out[i] = the first c maximising (z[i, c] * scale[c]) + shift[c] (float32, each operation rounded;
// scale or shift null: left out) over z [m, C]: tfjs's mul, add and argMax (first maximum; a NaN
// never wins unless it is the row's first value).
void head_argmax_columns(const float* z, int m, int C, const float* scale, const float* shift, int32_t* out);
// W [C, K] packed for head_rows_product (panels of 32 classes, k-major, zero-padded):
// head_panels_size floats. Only where head_rows_available (the AVX-512 product) is it used.
size_t head_panels_size(int C, int K);
void head_pack_panels(const float* w, float* dst, int C, int K);
bool head_rows_available();
// out [m, C] (rows C apart) = x [m, K] times the packed W^T, then + bias, or with sq NCM's
// -sqrt(max(0, ||x_i||^2 - 2 z + sq[c])) in double: head_matmul_nt + head_logit_rows' bits.
void head_rows_product(const float* panels, const float* x, int m, int K, int C, float* out, const float* bias,
                       const float* sq);

}  // namespace longtail
