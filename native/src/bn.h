// Training-mode batch norm over x [M, C] (M = batch * height * width, channels last), with an
// optional ReLU after it: the forward pass and its closed-form gradient, each in two passes
// over memory (the tfjs composition made about eight).
#pragma once

namespace longtail {

// What a training step needs besides y, mean and var, written by the same call (each [C]):
// invstd = 1 / sqrt(var + eps), the affine it applied (scale = gamma * invstd, shift = beta -
// mean * scale), and the running statistics moved towards the batch's (PyTorch's rule:
// running = (1 - momentum) running + momentum batch, the variance unbiased by `unbias` =
// n / (n - 1)), each product and sum rounded to float in the order the tfjs ops it replaces
// round them (bit-identical). The outputs may alias the running inputs.
struct BnTrainExtras {
  float* invstd;
  float* scale;
  float* shift;
  const float* runningMean;
  const float* runningVar;
  float* runningMeanOut;
  float* runningVarOut;
  double momentum;
  double unbias;
};

// y = (x - mean) * invstd * gamma + beta (+ res when given) (then ReLU); writes the batch mean
// and the biased variance per channel. `res` (a residual branch [M, C], or nullptr) makes it
// the tail of a residual block: relu(bn(x) + res) in one pass. `extras` (or nullptr): above.
void bn_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* var, long M,
                int C, float eps, bool relu, const float* res = nullptr, const BnTrainExtras* extras = nullptr);

// The running-statistics update of BnTrainExtras alone.
void bn_running_update(const float* mean, const float* var, const BnTrainExtras* e, int C);

// The AVX2 passes (C a multiple of 8) on or off (on by default): the two forms are bit-identical;
// tests compare them.
void bn_vector(bool on);

// Evaluation mode: y = x * scale + shift (+ res) (then ReLU) per channel.
void bn_affine(const float* x, const float* scale, const float* shift, float* y, long M, int C, bool relu,
               const float* res);

// With g = dy (times y > 0 when relu): dbeta = sum g, dgamma = sum g * xhat,
// dx = gamma * invstd * (g - mean(g) - xhat * mean(g * xhat)); `dres` (or nullptr), the
// residual branch's gradient, is g itself. With `scale` and `shift` (the forward's affine,
// BnTrainExtras) and ReLU without a residual, the mask y > 0 is recomputed from x (x * scale +
// shift > 0, rounded as the forward pass rounded it) and y is not read (it may be x).
void bn_backward(const float* dy, const float* x, const float* y, const float* mean, const float* invstd,
                 const float* gamma, float* dx, float* dgamma, float* dbeta, long M, int C, bool relu,
                 float* dres = nullptr, const float* scale = nullptr, const float* shift = nullptr);

// Global average pooling of x [B, P, C] (P = height * width) into y [B, C]: each channel's sum
// over the P pixels in order, in float, then divided by P, the arithmetic of tfjs-wasm's Mean
// over axes 1-2 (bit-identical) without its transpose to [B, C, P] first.
void channel_mean(const float* x, float* y, long B, long P, int C);

// One SGD step with momentum and weight decay over n values, PyTorch's rule (dampening 0, no
// Nesterov): d = g + wd * p; buf = momentum * buf + d; p = p - lr * buf. Each product and sum
// rounded to float in that order (no FMA contraction), as the tfjs ops compute it, so the result
// is bit-identical to the fallback. The outputs may alias the inputs.
void sgd_momentum(const float* p, const float* g, const float* buf, float* pOut, float* bufOut, long n, float lr,
                  float momentum, float wd);

}  // namespace longtail
