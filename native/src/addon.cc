// Node-API bindings: the kernels read and write the tfjs wasm backend's heap in place, given
// its ArrayBuffer and byte offsets (no copies). Compiled without AVX so that loading the addon
// and asking `supported` is safe on any x86-64 CPU.
#include <node_api.h>

#include <cstdint>

#include "conv.h"

namespace {

bool cpuHasKernels() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  return longtail::kernels_compiled() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
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

napi_value Supported(napi_env env, napi_callback_info) {
  napi_value out;
  CHECK(napi_get_boolean(env, cpuHasKernels(), &out));
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
  bool isBuffer = false;
  CHECK(napi_is_arraybuffer(env, argv[1], &isBuffer));
  if (!isBuffer) return throwError(env, "conv2d: heap must be an ArrayBuffer");
  void* data = nullptr;
  size_t byteLength = 0;
  CHECK(napi_get_arraybuffer_info(env, argv[1], &data, &byteLength));
  double offsets[3];
  for (int i = 0; i < 3; ++i) CHECK(napi_get_value_double(env, argv[2 + i], &offsets[i]));
  napi_typedarray_type type;
  size_t length = 0;
  void* shapeData = nullptr;
  CHECK(napi_get_typedarray_info(env, argv[5], &type, &length, &shapeData, nullptr, nullptr));
  if (type != napi_int32_array || length != 13) return throwError(env, "conv2d: shape must be an Int32Array of 13");
  const int32_t* v = static_cast<const int32_t*>(shapeData);
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
  for (int i = 0; i < 3; ++i) {
    const double o = offsets[i];
    if (!(o >= 0) || o != static_cast<double>(static_cast<uint64_t>(o)) || static_cast<uint64_t>(o) % 4 != 0 ||
        o + 4 * sizes[i] > static_cast<double>(byteLength))
      return throwError(env, "conv2d: a tensor lies outside the heap or is not 4-byte aligned");
    p[i] = reinterpret_cast<float*>(static_cast<char*>(data) + static_cast<uint64_t>(o));
  }
  if (kind == 0) longtail::conv2d_forward(p[0], p[1], p[2], s);
  else if (kind == 1) longtail::conv2d_backprop_input(p[0], p[1], p[2], s);
  else longtail::conv2d_backprop_filter(p[0], p[1], p[2], s);
  return nullptr;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "supported", NAPI_AUTO_LENGTH, Supported, nullptr, &fn) != napi_ok) return nullptr;
  if (napi_set_named_property(env, exports, "supported", fn) != napi_ok) return nullptr;
  if (napi_create_function(env, "conv2d", NAPI_AUTO_LENGTH, Conv2d, nullptr, &fn) != napi_ok) return nullptr;
  if (napi_set_named_property(env, exports, "conv2d", fn) != napi_ok) return nullptr;
  return exports;
}
