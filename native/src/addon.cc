// Node-API bindings: the kernels read and write the tfjs wasm backend's heap in place, given
// its ArrayBuffer and byte offsets (no copies). Compiled without AVX so that loading the addon
// and asking `supported` is safe on any x86-64 CPU.
#include <node_api.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "bf16.h"
#include "bn.h"
#include "conv.h"
#include "gather.h"
#include "memory.h"
#include "head.h"

namespace {

bool cpuHasKernels() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  // The CPU first: kernels_compiled() itself lives in the AVX2-compiled file.
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && longtail::kernels_compiled();
#else
  return false;
#endif
}

bool cpuHasAvx512() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  return cpuHasKernels() && __builtin_cpu_supports("avx512f") && longtail::avx512_compiled();
#else
  return false;
#endif
}

// vdpbf16ps needs AVX512_BF16 (with AVX-512F/BW for the packing); GCC names it avx512bf16.
bool cpuHasBf16() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 10)
  return cpuHasAvx512() && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16") &&
         longtail::bf16_compiled();
#else
  return false;
#endif
}

napi_value throwError(napi_env env, const char* message) {
  napi_throw_error(env, "ERR_LONGTAIL_NATIVE", message);
  return nullptr;
}

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) return throwError(env, "Node-API call failed: " #call); \
  } while (0)

// The wasm heap (an ArrayBuffer) and checked pointers into it.
struct Heap {
  char* data = nullptr;
  size_t byteLength = 0;

  // False (with a JS exception pending) unless `value` is an ArrayBuffer.
  bool open(napi_env env, napi_value value, const char* fn) {
    bool isBuffer = false;
    if (napi_is_arraybuffer(env, value, &isBuffer) != napi_ok || !isBuffer) {
      napi_throw_error(env, "ERR_LONGTAIL_NATIVE", fn);
      return false;
    }
    void* p = nullptr;
    if (napi_get_arraybuffer_info(env, value, &p, &byteLength) != napi_ok) return false;
    data = static_cast<char*>(p);
    return true;
  }

  // `count` floats at byte `offset`, or nullptr when they are not all inside and 4-aligned.
  float* at(double offset, double count) const {
    if (!(offset >= 0) || offset != static_cast<double>(static_cast<uint64_t>(offset)) ||
        static_cast<uint64_t>(offset) % 4 != 0 || offset + 4 * count > static_cast<double>(byteLength))
      return nullptr;
    return reinterpret_cast<float*>(data + static_cast<uint64_t>(offset));
  }
};

// `n` doubles from argv[first...] (byte offsets); false with a JS exception pending otherwise.
bool readOffsets(napi_env env, const napi_value* argv, int first, int n, double* out) {
  for (int i = 0; i < n; ++i)
    if (napi_get_value_double(env, argv[first + i], &out[i]) != napi_ok) {
      napi_throw_error(env, "ERR_LONGTAIL_NATIVE", "offsets must be numbers");
      return false;
    }
  return true;
}

// The data of an Int32Array of exactly `length` values, or nullptr (then throws `message`).
const int32_t* int32Array(napi_env env, napi_value value, size_t length, const char* message) {
  napi_typedarray_type type;
  size_t n = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, value, &type, &n, &data, nullptr, nullptr) != napi_ok ||
      type != napi_int32_array || n != length) {
    napi_throw_error(env, "ERR_LONGTAIL_NATIVE", message);
    return nullptr;
  }
  return static_cast<const int32_t*>(data);
}

napi_value Supported(napi_env env, napi_callback_info) {
  napi_value out;
  CHECK(napi_get_boolean(env, cpuHasKernels(), &out));
  return out;
}

// avx512([on: boolean]) -> boolean: switches the AVX-512 tiles of the gather products on or off
// (on only where the CPU has AVX-512F); returns whether they run now. On by default where they can.
napi_value Avx512(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc >= 1) {
    bool on = false;
    CHECK(napi_get_value_bool(env, argv[0], &on));
    if (cpuHasKernels()) longtail::set_avx512(on && cpuHasAvx512());
  }
  napi_value out;
  CHECK(napi_get_boolean(env, cpuHasKernels() && longtail::using_avx512(), &out));
  return out;
}

// conv2d(kind, heap: ArrayBuffer, aOffset, bOffset, outOffset, shape: Int32Array(13))
// kind 0: forward (a = x, b = w, out = y); 1: input gradient (a = dy, b = w, out = dx);
// 2: filter gradient (a = x, b = dy, out = dw). Offsets are in bytes, 4-aligned.
napi_value Conv2d(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 6) return throwError(env, "conv2d: expected 6 arguments");
  int32_t kind;
  CHECK(napi_get_value_int32(env, argv[0], &kind));
  Heap heap;
  if (!heap.open(env, argv[1], "conv2d: heap must be an ArrayBuffer")) return nullptr;
  double offsets[3];
  if (!readOffsets(env, argv, 2, 3, offsets)) return nullptr;
  const int32_t* v = int32Array(env, argv[5], 13, "conv2d: shape must be an Int32Array of 13");
  if (v == nullptr) return nullptr;
  const longtail::ConvShape s{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
  if (const char* bad = longtail::check_shape(s)) return throwError(env, bad);
  if (!cpuHasKernels()) return throwError(env, "conv2d: this CPU lacks AVX2 + FMA");
  const double x = static_cast<double>(s.b) * s.H * s.W * s.ci;
  const double w = static_cast<double>(s.kh) * s.kw * s.ci * s.co;
  const double y = static_cast<double>(s.b) * s.oh * s.ow * s.co;
  double sizes[3];
  if (kind == 0) { sizes[0] = x; sizes[1] = w; sizes[2] = y; }
  else if (kind == 1) { sizes[0] = y; sizes[1] = w; sizes[2] = x; }
  else if (kind == 2) { sizes[0] = x; sizes[1] = y; sizes[2] = w; }
  else return throwError(env, "conv2d: kind must be 0, 1 or 2");
  float* p[3];
  for (int i = 0; i < 3; ++i)
    if (!(p[i] = heap.at(offsets[i], sizes[i])))
      return throwError(env, "conv2d: a tensor lies outside the heap or is not 4-byte aligned");
  if (kind == 0) longtail::conv2d_forward(p[0], p[1], p[2], s);
  else if (kind == 1) longtail::conv2d_backprop_input(p[0], p[1], p[2], s);
  else longtail::conv2d_backprop_filter(p[0], p[1], p[2], s);
  return nullptr;
}

// matmul(heap, aOffset, bOffset, cOffset, dims: Int32Array [batchA, batchB, M, K, N]):
// c [batch, M, N] = a [batchA, M, K] x b [batchB, K, N], a batch of 1 broadcast.
napi_value Matmul(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 5) return throwError(env, "matmul: expected 5 arguments");
  Heap heap;
  if (!heap.open(env, argv[0], "matmul: heap must be an ArrayBuffer")) return nullptr;
  double offsets[3];
  if (!readOffsets(env, argv, 1, 3, offsets)) return nullptr;
  const int32_t* d = int32Array(env, argv[4], 5, "matmul: dims must be an Int32Array of 5");
  if (d == nullptr) return nullptr;
  const int32_t ba = d[0], bb = d[1], M = d[2], K = d[3], N = d[4];
  if (ba <= 0 || bb <= 0 || M <= 0 || K < 0 || N <= 0) return throwError(env, "matmul: sizes must be positive");
  if (ba != bb && ba != 1 && bb != 1) return throwError(env, "matmul: batch sizes must match or one be 1");
  if (!cpuHasKernels()) return throwError(env, "matmul: this CPU lacks AVX2 + FMA");
  const int32_t batch = ba > bb ? ba : bb;
  const double sizes[3] = {static_cast<double>(ba) * M * K, static_cast<double>(bb) * K * N,
                           static_cast<double>(batch) * M * N};
  float* p[3];
  for (int i = 0; i < 3; ++i)
    if (!(p[i] = heap.at(offsets[i], sizes[i])))
      return throwError(env, "matmul: a tensor lies outside the heap or is not 4-byte aligned");
  for (int32_t i = 0; i < batch; ++i)
    longtail::matmul(p[0] + (ba == 1 ? 0 : static_cast<size_t>(i) * M * K),
                     p[1] + (bb == 1 ? 0 : static_cast<size_t>(i) * K * N), p[2] + static_cast<size_t>(i) * M * N, M,
                     K, N);
  return nullptr;
}

// The data of a Float32Array of exactly `length` values, or nullptr (then throws `message`).
float* float32Array(napi_env env, napi_value value, double length, const char* message) {
  bool is = false;
  napi_typedarray_type type;
  size_t n = 0;
  void* data = nullptr;
  if (napi_is_typedarray(env, value, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, value, &type, &n, &data, nullptr, nullptr) != napi_ok ||
      type != napi_float32_array || static_cast<double>(n) != length) {
    napi_throw_error(env, "ERR_LONGTAIL_NATIVE", message);
    return nullptr;
  }
  return static_cast<float*>(data);
}

// bf16() -> boolean: whether the bf16 kernels run on this CPU (AVX512_BF16) and build.
napi_value Bf16(napi_env env, napi_callback_info) {
  napi_value out;
  CHECK(napi_get_boolean(env, cpuHasBf16(), &out));
  return out;
}

// The bf16 bindings take three Float32Arrays: each must have exactly its length, else the call
// throws that array's message. False with the exception pending.
bool float32Arrays(napi_env env, const napi_value* argv, const double (&lengths)[3], const char* const (&messages)[3],
                   float* (&out)[3]) {
  for (int i = 0; i < 3; ++i)
    if ((out[i] = float32Array(env, argv[i], lengths[i], messages[i])) == nullptr) return false;
  return true;
}

// matmulBf16(a, b, c: Float32Array, M, K, N): c [M, N] = bf16(a) [M, K] x bf16(b) [K, N].
napi_value MatmulBf16(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 6) return throwError(env, "matmulBf16: expected 6 arguments");
  int32_t M, K, N;
  CHECK(napi_get_value_int32(env, argv[3], &M));
  CHECK(napi_get_value_int32(env, argv[4], &K));
  CHECK(napi_get_value_int32(env, argv[5], &N));
  if (M <= 0 || K < 0 || N <= 0) return throwError(env, "matmulBf16: sizes must be positive");
  if (!cpuHasBf16()) return throwError(env, "matmulBf16: this CPU lacks AVX512_BF16");
  float* p[3];
  if (!float32Arrays(env, argv,
                     {static_cast<double>(M) * K, static_cast<double>(K) * N, static_cast<double>(M) * N},
                     {"matmulBf16: a must be a Float32Array of M*K", "matmulBf16: b must be a Float32Array of K*N",
                      "matmulBf16: c must be a Float32Array of M*N"},
                     p))
    return nullptr;
  longtail::matmul_bf16(p[0], p[1], p[2], M, K, N);
  return nullptr;
}

// conv2dBf16(a, b, out: Float32Array, shape: Int32Array(13)[, kind]), as conv2d's kinds: 0 the
// forward convolution (x, w -> y), 1 the input gradient (dy, w -> dx), 2 the filter gradient
// (x, dy -> dw), all with bf16 inputs and fp32 sums.
napi_value Conv2dBf16(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 4 && argc != 5) return throwError(env, "conv2dBf16: expected 4 or 5 arguments");
  int32_t kind = 0;
  if (argc == 5) CHECK(napi_get_value_int32(env, argv[4], &kind));
  if (kind < 0 || kind > 2) return throwError(env, "conv2dBf16: kind must be 0, 1 or 2");
  const int32_t* v = int32Array(env, argv[3], 13, "conv2dBf16: shape must be an Int32Array of 13");
  if (v == nullptr) return nullptr;
  const longtail::ConvShape s{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
  if (const char* bad = longtail::check_shape(s)) return throwError(env, bad);
  if (!cpuHasBf16()) return throwError(env, "conv2dBf16: this CPU lacks AVX512_BF16");
  const double x = static_cast<double>(s.b) * s.H * s.W * s.ci;
  const double w = static_cast<double>(s.kh) * s.kw * s.ci * s.co;
  const double y = static_cast<double>(s.b) * s.oh * s.ow * s.co;
  static const char* const kX = "conv2dBf16: x must be a Float32Array of b*H*W*ci";
  static const char* const kW = "conv2dBf16: w must be a Float32Array of kh*kw*ci*co";
  static const char* const kY = "conv2dBf16: y must be a Float32Array of b*oh*ow*co";
  static const char* const kDy = "conv2dBf16: dy must be a Float32Array of b*oh*ow*co";
  static const char* const kDx = "conv2dBf16: dx must be a Float32Array of b*H*W*ci";
  static const char* const kDw = "conv2dBf16: dw must be a Float32Array of kh*kw*ci*co";
  float* p[3];
  const bool ok = kind == 0   ? float32Arrays(env, argv, {x, w, y}, {kX, kW, kY}, p)
                  : kind == 1 ? float32Arrays(env, argv, {y, w, x}, {kDy, kW, kDx}, p)
                              : float32Arrays(env, argv, {x, y, w}, {kX, kDy, kDw}, p);
  if (!ok) return nullptr;
  if (kind == 0) longtail::conv2d_forward_bf16(p[0], p[1], p[2], s);
  else if (kind == 1) longtail::conv2d_backprop_input_bf16(p[0], p[1], p[2], s);
  else longtail::conv2d_backprop_filter_bf16(p[0], p[1], p[2], s);
  return nullptr;
}

// batchNorm(kind, heap: ArrayBuffer, offsets: Float64Array, M, C, relu, eps) over [M, C].
// kind 0: forward, offsets [x, gamma, beta, y, mean, var, (res)]; kind 1: gradient, offsets
// [dy, x, y, mean, invstd, gamma, dx, dgamma, dbeta, (dres)]; kind 2: evaluation-mode affine,
// offsets [x, scale, shift, y, (res)]. The last offset, when there, is a residual branch [M, C]
// added before the ReLU (its gradient, for kind 1). Offsets are in bytes, 4-aligned.
napi_value BatchNorm(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 7) return throwError(env, "batchNorm: expected 7 arguments");
  int32_t kind, C;
  int64_t M;
  bool relu;
  double eps;
  CHECK(napi_get_value_int32(env, argv[0], &kind));
  CHECK(napi_get_value_int64(env, argv[3], &M));
  CHECK(napi_get_value_int32(env, argv[4], &C));
  CHECK(napi_get_value_bool(env, argv[5], &relu));
  CHECK(napi_get_value_double(env, argv[6], &eps));
  if (kind < 0 || kind > 2) return throwError(env, "batchNorm: kind must be 0, 1 or 2");
  if (M <= 0 || C <= 0) return throwError(env, "batchNorm: sizes must be positive");
  Heap heap;
  if (!heap.open(env, argv[1], "batchNorm: heap must be an ArrayBuffer")) return nullptr;
  napi_typedarray_type type;
  size_t length = 0;
  void* offData = nullptr;
  CHECK(napi_get_typedarray_info(env, argv[2], &type, &length, &offData, nullptr, nullptr));
  // Offsets without and with the residual branch, per kind.
  static const size_t base[3] = {6, 9, 4};
  static const char* const badLength[3] = {"batchNorm: offsets must be a Float64Array of 6 or 7",
                                           "batchNorm: offsets must be a Float64Array of 9 or 10",
                                           "batchNorm: offsets must be a Float64Array of 4 or 5"};
  if (type != napi_float64_array || (length != base[kind] && length != base[kind] + 1))
    return throwError(env, badLength[kind]);
  if (!cpuHasKernels()) return throwError(env, "batchNorm: this CPU lacks AVX2 + FMA");
  const double* off = static_cast<const double*>(offData);
  // Which offsets point at [M, C] tensors (the rest are [C]); the residual is always [M, C].
  static const bool big[3][10] = {{true, false, false, true, false, false, true},
                                  {true, true, true, false, false, false, true, false, false, true},
                                  {true, false, false, true, true}};
  float* p[10] = {nullptr};
  for (size_t i = 0; i < length; ++i) {
    const double n = big[kind][i] ? static_cast<double>(M) * C : C;
    if (!(p[i] = heap.at(off[i], n)))
      return throwError(env, "batchNorm: a tensor lies outside the heap or is not 4-byte aligned");
  }
  const bool res = length == base[kind] + 1;
  if (kind == 0)
    longtail::bn_forward(p[0], p[1], p[2], p[3], p[4], p[5], static_cast<long>(M), C, static_cast<float>(eps), relu,
                         res ? p[6] : nullptr);
  else if (kind == 1)
    longtail::bn_backward(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], static_cast<long>(M), C, relu,
                          res ? p[9] : nullptr);
  else
    longtail::bn_affine(p[0], p[1], p[2], p[3], static_cast<long>(M), C, relu, res ? p[4] : nullptr);
  return nullptr;
}

// batchNormTrain(kind, heap, offsets: Float64Array, M, C, relu, eps, momentum) over [M, C], a
// training step's batch norm (bn.h BnTrainExtras). kind 0: forward, offsets [x, gamma, beta,
// runningMean, runningVar, y, mean, var, invstd, scale, shift, runningMeanOut, runningVarOut,
// (res)], the running statistics moved by `momentum` (unbiased by M / (M - 1)); kind 1: the
// gradient of a batch norm + ReLU without a residual, its mask from x and the forward's affine,
// offsets [dy, x, mean, invstd, gamma, scale, shift, dx, dgamma, dbeta]. Offsets in bytes.
napi_value BatchNormTrain(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 8) return throwError(env, "batchNormTrain: expected 8 arguments");
  int32_t kind, C;
  int64_t M;
  bool relu;
  double eps, momentum;
  CHECK(napi_get_value_int32(env, argv[0], &kind));
  CHECK(napi_get_value_int64(env, argv[3], &M));
  CHECK(napi_get_value_int32(env, argv[4], &C));
  CHECK(napi_get_value_bool(env, argv[5], &relu));
  CHECK(napi_get_value_double(env, argv[6], &eps));
  CHECK(napi_get_value_double(env, argv[7], &momentum));
  if (kind < 0 || kind > 1) return throwError(env, "batchNormTrain: kind must be 0 or 1");
  if (M <= 0 || C <= 0) return throwError(env, "batchNormTrain: sizes must be positive");
  Heap heap;
  if (!heap.open(env, argv[1], "batchNormTrain: heap must be an ArrayBuffer")) return nullptr;
  napi_typedarray_type type;
  size_t length = 0;
  void* offData = nullptr;
  CHECK(napi_get_typedarray_info(env, argv[2], &type, &length, &offData, nullptr, nullptr));
  if (type != napi_float64_array || (kind == 0 ? length != 13 && length != 14 : length != 10))
    return throwError(env, kind == 0 ? "batchNormTrain: offsets must be a Float64Array of 13 or 14"
                                     : "batchNormTrain: offsets must be a Float64Array of 10");
  if (!cpuHasKernels()) return throwError(env, "batchNormTrain: this CPU lacks AVX2 + FMA");
  const double* off = static_cast<const double*>(offData);
  // Which offsets point at [M, C] tensors (the rest are [C]).
  static const bool big[2][14] = {
      {true, false, false, false, false, true, false, false, false, false, false, false, false, true},
      {true, true, false, false, false, false, false, true, false, false}};
  float* p[14] = {nullptr};
  for (size_t i = 0; i < length; ++i) {
    const double n = big[kind][i] ? static_cast<double>(M) * C : C;
    if (!(p[i] = heap.at(off[i], n)))
      return throwError(env, "batchNormTrain: a tensor lies outside the heap or is not 4-byte aligned");
  }
  if (kind == 0) {
    const longtail::BnTrainExtras extras{p[8],  p[9],  p[10], p[3], p[4], p[11], p[12], momentum,
                                         static_cast<double>(M) / static_cast<double>(std::max<int64_t>(M - 1, 1))};
    longtail::bn_forward(p[0], p[1], p[2], p[5], p[6], p[7], static_cast<long>(M), C, static_cast<float>(eps), relu,
                         length == 14 ? p[13] : nullptr, &extras);
  } else {
    if (!relu) return throwError(env, "batchNormTrain: the mask from x needs relu");
    longtail::bn_backward(p[0], p[1], p[1], p[2], p[3], p[4], p[7], p[8], p[9], static_cast<long>(M), C, true,
                          nullptr, p[5], p[6]);
  }
  return nullptr;
}

// bnVector(on): batch norm's AVX2 passes on or off (bit-identical to the plain loops; tests).
napi_value BnVector(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  bool on = true;
  if (argc != 1 || napi_get_value_bool(env, argv[0], &on) != napi_ok)
    return throwError(env, "bnVector: expected a boolean");
  if (cpuHasKernels()) longtail::bn_vector(on);
  return nullptr;
}

// channelMean(heap, x, y, B, P, C): global average pooling [B, P, C] -> [B, C] (bn.h channel_mean);
// x and y are byte offsets into the heap.
napi_value ChannelMean(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 6) return throwError(env, "channelMean: expected 6 arguments");
  Heap heap;
  if (!heap.open(env, argv[0], "channelMean: heap must be an ArrayBuffer")) return nullptr;
  double off[2];
  if (!readOffsets(env, argv, 1, 2, off)) return nullptr;
  int64_t B, P;
  int32_t C;
  CHECK(napi_get_value_int64(env, argv[3], &B));
  CHECK(napi_get_value_int64(env, argv[4], &P));
  CHECK(napi_get_value_int32(env, argv[5], &C));
  if (B <= 0 || P <= 0 || C <= 0) return throwError(env, "channelMean: sizes must be positive");
  if (!cpuHasKernels()) return throwError(env, "channelMean: this CPU lacks AVX2 + FMA");
  const float* x = heap.at(off[0], static_cast<double>(B) * P * C);
  float* y = heap.at(off[1], static_cast<double>(B) * C);
  if (x == nullptr || y == nullptr)
    return throwError(env, "channelMean: a tensor lies outside the heap or is not 4-byte aligned");
  longtail::channel_mean(x, y, static_cast<long>(B), static_cast<long>(P), C);
  return nullptr;
}

// convBn(heap, offsets: Float64Array [x, w, gamma, beta, mean, var, y, (res)], shape: Int32Array(13),
// relu, eps): evaluation-mode convolution with its batch norm folded into the filter, then
// (+ res) (then ReLU), per image in cache (conv.h). Offsets in bytes, 4-aligned.
napi_value ConvBn(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 5) return throwError(env, "convBn: expected 5 arguments");
  Heap heap;
  if (!heap.open(env, argv[0], "convBn: heap must be an ArrayBuffer")) return nullptr;
  napi_typedarray_type type;
  size_t length = 0;
  void* offData = nullptr;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &length, &offData, nullptr, nullptr));
  if (type != napi_float64_array || (length != 7 && length != 8))
    return throwError(env, "convBn: offsets must be a Float64Array of 7 or 8");
  const int32_t* v = int32Array(env, argv[2], 13, "convBn: shape must be an Int32Array of 13");
  if (v == nullptr) return nullptr;
  bool relu;
  double eps;
  CHECK(napi_get_value_bool(env, argv[3], &relu));
  CHECK(napi_get_value_double(env, argv[4], &eps));
  const longtail::ConvShape s{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
  if (const char* bad = longtail::check_shape(s)) return throwError(env, bad);
  if (!cpuHasKernels()) return throwError(env, "convBn: this CPU lacks AVX2 + FMA");
  const double* off = static_cast<const double*>(offData);
  const double x = static_cast<double>(s.b) * s.H * s.W * s.ci;
  const double w = static_cast<double>(s.kh) * s.kw * s.ci * s.co;
  const double y = static_cast<double>(s.b) * s.oh * s.ow * s.co;
  const double sizes[8] = {x, w, static_cast<double>(s.co), static_cast<double>(s.co), static_cast<double>(s.co),
                           static_cast<double>(s.co), y, y};
  float* p[8] = {nullptr};
  for (size_t i = 0; i < length; ++i)
    if (!(p[i] = heap.at(off[i], sizes[i])))
      return throwError(env, "convBn: a tensor lies outside the heap or is not 4-byte aligned");
  longtail::conv2d_forward_bn(p[0], p[1], p[2], p[3], p[4], p[5], length == 8 ? p[7] : nullptr, p[6], s,
                              static_cast<float>(eps), relu);
  return nullptr;
}

// convBnProgram(heap, offsets: Float64Array [x, y, then w, gamma, beta, mean, var per step],
// steps: Int32Array of 16 per step (the 13 of convBn's shape, input buffer, residual buffer or -1,
// ReLU 0/1), eps): convBn's steps run one image at a time (conv.h conv_bn_program).
napi_value ConvBnProgram(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 4) return throwError(env, "convBnProgram: expected 4 arguments");
  Heap heap;
  if (!heap.open(env, argv[0], "convBnProgram: heap must be an ArrayBuffer")) return nullptr;
  napi_typedarray_type type;
  size_t nOff = 0, nSteps = 0;
  void* offData = nullptr;
  void* stepData = nullptr;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &nOff, &offData, nullptr, nullptr));
  if (type != napi_float64_array) return throwError(env, "convBnProgram: offsets must be a Float64Array");
  CHECK(napi_get_typedarray_info(env, argv[2], &type, &nSteps, &stepData, nullptr, nullptr));
  if (type != napi_int32_array || nSteps == 0 || nSteps % 16 != 0)
    return throwError(env, "convBnProgram: steps must be an Int32Array of 16 per step");
  const int n = static_cast<int>(nSteps / 16);
  if (nOff != 2 + 5 * static_cast<size_t>(n))
    return throwError(env, "convBnProgram: offsets must hold x, y and 5 per step");
  double eps;
  CHECK(napi_get_value_double(env, argv[3], &eps));
  if (!cpuHasKernels()) return throwError(env, "convBnProgram: this CPU lacks AVX2 + FMA");
  const int32_t* v = static_cast<const int32_t*>(stepData);
  const double* off = static_cast<const double*>(offData);
  std::vector<longtail::ConvBnStep> steps(n);
  for (int i = 0; i < n; ++i) {
    const int32_t* q = v + 16 * i;
    const longtail::ConvShape s{q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8], q[9], q[10], q[11], q[12]};
    if (s.b != v[0]) return throwError(env, "convBnProgram: every step must have the same batch");
    const double w = static_cast<double>(s.kh) * s.kw * s.ci * s.co;
    float* p[5];
    for (int k = 0; k < 5; ++k)
      if (!(p[k] = heap.at(off[2 + 5 * i + k], k == 0 ? w : s.co)))
        return throwError(env, "convBnProgram: a tensor lies outside the heap or is not 4-byte aligned");
    steps[i] = longtail::ConvBnStep{s, p[0], p[1], p[2], p[3], p[4], q[13], q[14], q[15] != 0};
  }
  if (const char* bad = longtail::check_program(steps.data(), n)) return throwError(env, bad);
  const longtail::ConvShape& first = steps[0].s;
  const longtail::ConvShape& last = steps[n - 1].s;
  float* x = heap.at(off[0], static_cast<double>(first.b) * first.H * first.W * first.ci);
  float* y = heap.at(off[1], static_cast<double>(last.b) * last.oh * last.ow * last.co);
  if (x == nullptr || y == nullptr)
    return throwError(env, "convBnProgram: a tensor lies outside the heap or is not 4-byte aligned");
  longtail::conv_bn_program(x, first.b, steps.data(), n, y, static_cast<float>(eps));
  return nullptr;
}

// sgd(heap, offsets: Float64Array [p, g, buf, pOut, bufOut], n, lr, momentum, weightDecay): one
// SGD-momentum step over n values (bn.h), outputs possibly aliasing inputs. Offsets in bytes.
napi_value Sgd(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 6) return throwError(env, "sgd: expected 6 arguments");
  Heap heap;
  if (!heap.open(env, argv[0], "sgd: heap must be an ArrayBuffer")) return nullptr;
  napi_typedarray_type type;
  size_t length = 0;
  void* offData = nullptr;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &length, &offData, nullptr, nullptr));
  if (type != napi_float64_array || length != 5) return throwError(env, "sgd: offsets must be a Float64Array of 5");
  int64_t n;
  double lr, momentum, wd;
  CHECK(napi_get_value_int64(env, argv[2], &n));
  CHECK(napi_get_value_double(env, argv[3], &lr));
  CHECK(napi_get_value_double(env, argv[4], &momentum));
  CHECK(napi_get_value_double(env, argv[5], &wd));
  if (n < 0) return throwError(env, "sgd: the size must not be negative");
  if (!cpuHasKernels()) return throwError(env, "sgd: this CPU lacks AVX2 + FMA");
  const double* off = static_cast<const double*>(offData);
  float* p[5];
  for (int i = 0; i < 5; ++i)
    if (!(p[i] = heap.at(off[i], static_cast<double>(n))))
      return throwError(env, "sgd: a tensor lies outside the heap or is not 4-byte aligned");
  longtail::sgd_momentum(p[0], p[1], p[2], p[3], p[4], static_cast<long>(n), static_cast<float>(lr),
                         static_cast<float>(momentum), static_cast<float>(wd));
  return nullptr;
}

// sgdFlat(heap, params: Float64Array [offset, n] per parameter, g: Float32Array, buf: Float32Array,
// lr, momentum, weightDecay): one SGD-momentum step (bn.h) over every parameter of a model at
// once, each updated in place in the heap; g and buf hold the parameters' values back to back in
// that order (buf updated in place). One call a step instead of one kernel (two fresh outputs, a
// gradient copied into the heap) per parameter. Everything is checked before anything is written.
napi_value SgdFlat(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 7) return throwError(env, "sgdFlat: expected 7 arguments");
  Heap heap;
  if (!heap.open(env, argv[0], "sgdFlat: heap must be an ArrayBuffer")) return nullptr;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  bool isTyped = false;
  for (int i = 1; i < 4; ++i) {
    CHECK(napi_is_typedarray(env, argv[i], &isTyped));
    if (!isTyped) return throwError(env, "sgdFlat: params must be a Float64Array, g and buf Float32Arrays");
  }
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, nullptr, nullptr));
  if (type != napi_float64_array || length % 2 != 0)
    return throwError(env, "sgdFlat: params must be a Float64Array of [offset, size] pairs");
  const double* spec = static_cast<const double*>(data);
  const size_t count = length / 2;
  float* flat[2];
  size_t flatLength[2];
  for (int i = 0; i < 2; ++i) {
    CHECK(napi_get_typedarray_info(env, argv[2 + i], &type, &flatLength[i], &data, nullptr, nullptr));
    if (type != napi_float32_array) return throwError(env, "sgdFlat: g and buf must be Float32Arrays");
    flat[i] = static_cast<float*>(data);
  }
  double lr, momentum, wd;
  CHECK(napi_get_value_double(env, argv[4], &lr));
  CHECK(napi_get_value_double(env, argv[5], &momentum));
  CHECK(napi_get_value_double(env, argv[6], &wd));
  if (!cpuHasKernels()) return throwError(env, "sgdFlat: this CPU lacks AVX2 + FMA");
  double total = 0;
  for (size_t k = 0; k < count; ++k) {
    const double n = spec[2 * k + 1];
    if (!(n >= 0) || n != static_cast<double>(static_cast<int64_t>(n)))
      return throwError(env, "sgdFlat: a size is not a whole number >= 0");
    if (heap.at(spec[2 * k], n) == nullptr)
      return throwError(env, "sgdFlat: a parameter lies outside the heap or is not 4-byte aligned");
    total += n;
  }
  if (total != static_cast<double>(flatLength[0]) || total != static_cast<double>(flatLength[1]))
    return throwError(env, "sgdFlat: g and buf must hold exactly the parameters' values");
  size_t o = 0;
  for (size_t k = 0; k < count; ++k) {
    const long n = static_cast<long>(spec[2 * k + 1]);
    float* p = heap.at(spec[2 * k], static_cast<double>(n));
    longtail::sgd_momentum(p, flat[0] + o, flat[1] + o, p, flat[1] + o, n, static_cast<float>(lr),
                           static_cast<float>(momentum), static_cast<float>(wd));
    o += static_cast<size_t>(n);
  }
  return nullptr;
}

// adviseHugePages(view: ArrayBufferView) -> bytes advised. Any typed array, on an ArrayBuffer or
// a SharedArrayBuffer; advice only, so nothing is checked beyond the view being one.
napi_value AdviseHugePages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  bool isTyped = false;
  if (argc < 1 || napi_is_typedarray(env, argv[0], &isTyped) != napi_ok || !isTyped)
    return throwError(env, "adviseHugePages: expected a typed array");
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  CHECK(napi_get_typedarray_info(env, argv[0], &type, &length, &data, nullptr, nullptr));
  static const size_t itemBytes[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};
  const size_t item = static_cast<size_t>(type) < sizeof itemBytes / sizeof itemBytes[0] ? itemBytes[type] : 1;
  napi_value out;
  CHECK(napi_create_double(env, static_cast<double>(longtail::advise_huge_pages(data, length * item)), &out));
  return out;
}

}  // namespace

NAPI_MODULE_INIT() {
  if (cpuHasAvx512()) longtail::set_avx512(true);
  napi_value fn;
  if (napi_create_function(env, "avx512", NAPI_AUTO_LENGTH, Avx512, nullptr, &fn) != napi_ok) return nullptr;
  if (napi_set_named_property(env, exports, "avx512", fn) != napi_ok) return nullptr;
  if (napi_create_function(env, "supported", NAPI_AUTO_LENGTH, Supported, nullptr, &fn) != napi_ok) return nullptr;
  if (napi_set_named_property(env, exports, "supported", fn) != napi_ok) return nullptr;
  if (napi_create_function(env, "conv2d", NAPI_AUTO_LENGTH, Conv2d, nullptr, &fn) != napi_ok) return nullptr;
  if (napi_set_named_property(env, exports, "conv2d", fn) != napi_ok) return nullptr;
  if (napi_create_function(env, "matmul", NAPI_AUTO_LENGTH, Matmul, nullptr, &fn) != napi_ok) return nullptr;
  if (napi_set_named_property(env, exports, "matmul", fn) != napi_ok) return nullptr;
  if (napi_create_function(env, "batchNorm", NAPI_AUTO_LENGTH, BatchNorm, nullptr, &fn) != napi_ok) return nullptr;
  if (napi_set_named_property(env, exports, "batchNorm", fn) != napi_ok) return nullptr;
  if (napi_create_function(env, "adviseHugePages", NAPI_AUTO_LENGTH, AdviseHugePages, nullptr, &fn) != napi_ok)
    return nullptr;
  if (napi_set_named_property(env, exports, "adviseHugePages", fn) != napi_ok) return nullptr;
  // The stage-2 head kernels (head.cc).
  if (!longtail::register_head(env, exports)) return nullptr;
  // The folded evaluation-mode convolution + batch norm (stage-1 extraction).
  if (napi_create_function(env, "convBn", NAPI_AUTO_LENGTH, ConvBn, nullptr, &fn) != napi_ok) return nullptr;
  if (napi_set_named_property(env, exports, "convBn", fn) != napi_ok) return nullptr;
  if (napi_create_function(env, "convBnProgram", NAPI_AUTO_LENGTH, ConvBnProgram, nullptr, &fn) != napi_ok)
    return nullptr;
  if (napi_set_named_property(env, exports, "convBnProgram", fn) != napi_ok) return nullptr;
  // bf16 products (bf16.cc), where the CPU has AVX512_BF16.
  for (const auto& [name, f] : {std::pair<const char*, napi_callback>{"bf16", Bf16},
                                {"matmulBf16", MatmulBf16},
                                {"conv2dBf16", Conv2dBf16}}) {
    if (napi_create_function(env, name, NAPI_AUTO_LENGTH, f, nullptr, &fn) != napi_ok) return nullptr;
    if (napi_set_named_property(env, exports, name, fn) != napi_ok) return nullptr;
  }
  // A training step's batch norm with its running statistics, the AVX2 switch, global average pooling (bn.cc).
  if (napi_create_function(env, "batchNormTrain", NAPI_AUTO_LENGTH, BatchNormTrain, nullptr, &fn) != napi_ok)
    return nullptr;
  if (napi_set_named_property(env, exports, "batchNormTrain", fn) != napi_ok) return nullptr;
  if (napi_create_function(env, "bnVector", NAPI_AUTO_LENGTH, BnVector, nullptr, &fn) != napi_ok) return nullptr;
  if (napi_set_named_property(env, exports, "bnVector", fn) != napi_ok) return nullptr;
  if (napi_create_function(env, "channelMean", NAPI_AUTO_LENGTH, ChannelMean, nullptr, &fn) != napi_ok)
    return nullptr;
  if (napi_set_named_property(env, exports, "channelMean", fn) != napi_ok) return nullptr;
  // The fused SGD-momentum update (stage-1 training).
  if (napi_create_function(env, "sgd", NAPI_AUTO_LENGTH, Sgd, nullptr, &fn) != napi_ok) return nullptr;
  if (napi_set_named_property(env, exports, "sgd", fn) != napi_ok) return nullptr;
  if (napi_create_function(env, "sgdFlat", NAPI_AUTO_LENGTH, SgdFlat, nullptr, &fn) != napi_ok) return nullptr;
  if (napi_set_named_property(env, exports, "sgdFlat", fn) != napi_ok) return nullptr;
  return exports;
}
