// Convolution kernels (NHWC activations, HWIO filters, float32) for longtail's tfjs `wasm`
// backend: the forward convolution and both of its gradients, on x86-64 with AVX2 + FMA.
#pragma once

namespace longtail {

// A 2-D convolution: x [b, H, W, ci] * w [kh, kw, ci, co] -> y [b, oh, ow, co], strides
// (sh, sw), top/left padding (pt, pl); bottom/right padding is whatever the output size needs.
struct ConvShape {
  int b, H, W, ci, kh, kw, co, sh, sw, pt, pl, oh, ow;
};

// True when this build has the kernels (x86-64); addon.cc also checks the CPU has AVX2 + FMA.
bool kernels_compiled();

// Whether the gather products run the AVX-512 tiles (conv512.cc; identical results). Only
// after the CPU was checked for AVX-512F; ignored where they are not compiled.
void set_avx512(bool on);
bool using_avx512();

// Checks sizes are positive and consistent; returns an error message or nullptr.
const char* check_shape(const ConvShape& s);

void conv2d_forward(const float* x, const float* w, float* y, const ConvShape& s);
void conv2d_backprop_input(const float* dy, const float* w, float* dx, const ConvShape& s);
void conv2d_backprop_filter(const float* x, const float* dy, float* dw, const ConvShape& s);

// Evaluation-mode convolution + batch norm (+ residual) (+ ReLU), the batch norm folded into the
// filter: scale = gamma / sqrt(var + eps), w' = w * scale per output channel, shift = beta -
// mean * scale; y = conv(x, w') + shift (+ res) (then ReLU), the tail applied to each image's
// output while it is in cache. `res` is [b, oh, ow, co] or nullptr.
void conv2d_forward_bn(const float* x, const float* w, const float* gamma, const float* beta, const float* mean,
                       const float* var, const float* res, float* y, const ConvShape& s, float eps, bool relu);

// One step of an inference program: conv2d_forward_bn's operation (s.b ignored: the program's
// batch) reading buffer `in` and (+) buffer `res` (-1: none), writing buffer (its index + 1);
// buffer 0 is the program's input image.
struct ConvBnStep {
  ConvShape s;
  const float *w, *gamma, *beta, *mean, *var;
  int in, res;
  bool relu;
};

// Whether the steps chain: buffer ids refer to earlier steps, each input and residual has the
// shape the step expects. An error message or nullptr.
const char* check_program(const ConvBnStep* steps, int n);

// Runs the steps on one image of x [b, H, W, ci] at a time, writing the last step's output to
// y [b, oh, ow, co]: the activations between steps stay in cache, and between 16-channel
// stride-1 layers in channel planes (no transposes). Every output is bit-identical to calling
// conv2d_forward_bn step by step.
void conv_bn_program(const float* x, int b, const ConvBnStep* steps, int n, float* y, float eps);

// c [M, N] = a [M, K] x b [K, N], row-major (the same tiles as the convolutions).
void matmul(const float* a, const float* b, float* c, int M, int K, int N);

}  // namespace longtail
