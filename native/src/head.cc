// Node-API bindings of the head kernels (head.h) and the kernels themselves. The bindings come
// first and are compiled without AVX (addon.cc registers them at load time); everything after
// the kernel_target.h include is compiled for AVX2 + FMA and runs only after the CPU was checked.
#include "head.h"

#include <node_api.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "conv.h"

namespace longtail {

namespace {

napi_value fail(napi_env env, const char* message) {
  napi_throw_error(env, "ERR_LONGTAIL_NATIVE", message);
  return nullptr;
}

bool cpuOk() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && head_kernels_compiled();
#else
  return false;
#endif
}

// A Float32Array (or, with `ints`, an Int32Array) of at least `need` values; null allowed when
// `optional`. Returns false with a JS exception pending otherwise.
bool typed(napi_env env, napi_value v, double need, bool optional, bool ints, void** out, const char* what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (optional && (t == napi_null || t == napi_undefined)) {
    *out = nullptr;
    return true;
  }
  bool is = false;
  napi_typedarray_type type;
  size_t n = 0;
  void* data = nullptr;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, &n, &data, nullptr, nullptr) != napi_ok ||
      type != (ints ? napi_int32_array : napi_float32_array) || static_cast<double>(n) < need) {
    fail(env, what);
    return false;
  }
  *out = data;
  return true;
}

bool ints(napi_env env, const napi_value* argv, int first, int n, int32_t* out) {
  for (int i = 0; i < n; ++i) {
    if (napi_get_value_int32(env, argv[first + i], &out[i]) != napi_ok || out[i] <= 0) {
      fail(env, "head kernels: sizes must be positive integers");
      return false;
    }
  }
  return true;
}

#define ARGS(n, name)                                                                  \
  size_t argc = n;                                                                     \
  napi_value argv[n];                                                                  \
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr; \
  if (argc != n) return fail(env, name ": expected " #n " arguments");                 \
  if (!cpuOk()) return fail(env, name ": this CPU lacks AVX2 + FMA")

// headTranspose(x, xt, B, d)
napi_value Transpose(napi_env env, napi_callback_info info) {
  ARGS(4, "headTranspose");
  int32_t s[2];
  if (!ints(env, argv, 2, 2, s)) return nullptr;
  const double n = static_cast<double>(s[0]) * s[1];
  void *x, *xt;
  if (!typed(env, argv[0], n, false, false, &x, "headTranspose: x must be a Float32Array of B * d") ||
      !typed(env, argv[1], n, false, false, &xt, "headTranspose: xt must be a Float32Array of B * d"))
    return nullptr;
  head_transpose(static_cast<const float*>(x), static_cast<float*>(xt), s[0], s[1]);
  return nullptr;
}

// headMatmul(a, b, c, M, K, N): c [M, N] = a [M, K] x b [K, N].
napi_value Matmul(napi_env env, napi_callback_info info) {
  ARGS(6, "headMatmul");
  int32_t s[3];
  if (!ints(env, argv, 3, 3, s)) return nullptr;
  if (static_cast<double>(s[0]) * s[1] >= 2147483648.0 || static_cast<double>(s[1]) * s[2] >= 2147483648.0 ||
      static_cast<double>(s[0]) * s[2] >= 2147483648.0)
    return fail(env, "headMatmul: operands larger than 2^31 values");
  void *a, *b, *c;
  if (!typed(env, argv[0], static_cast<double>(s[0]) * s[1], false, false, &a, "headMatmul: a must be a Float32Array of M * K") ||
      !typed(env, argv[1], static_cast<double>(s[1]) * s[2], false, false, &b, "headMatmul: b must be a Float32Array of K * N") ||
      !typed(env, argv[2], static_cast<double>(s[0]) * s[2], false, false, &c, "headMatmul: c must be a Float32Array of M * N"))
    return nullptr;
  head_matmul(static_cast<const float*>(a), static_cast<const float*>(b), static_cast<float*>(c), s[0], s[1], s[2]);
  return nullptr;
}

// The body of headPackA and headPackPanels: src [rows, K] (argv 0-2) packed by `pack` into
// argv[3] (a Float32Array of at least size(rows, K) floats) or a new Float32Array; null where
// `available()` is false. `padRows`: rows the packed layout rounds up to (the size check's).
struct PackBinding {
  const char* name;
  const char* srcError;
  const char* outError;
  const char* tooLarge;
  int padRows;
  bool (*available)();
  size_t (*size)(int, int);
  void (*pack)(const float*, float*, int, int);
};

napi_value packWith(napi_env env, napi_callback_info info, const PackBinding& b) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc != 3 && argc != 4) return fail(env, (std::string(b.name) + ": expected 3 or 4 arguments").c_str());
  if (!cpuOk()) return fail(env, (std::string(b.name) + ": this CPU lacks AVX2 + FMA").c_str());
  int32_t s[2];
  if (!ints(env, argv, 1, 2, s)) return nullptr;
  if ((static_cast<double>(s[0]) + b.padRows) * s[1] >= 2147483648.0) return fail(env, b.tooLarge);
  void* src;
  if (!typed(env, argv[0], static_cast<double>(s[0]) * s[1], false, false, &src, b.srcError)) return nullptr;
  napi_value result;
  if (!b.available()) {
    if (napi_get_null(env, &result) != napi_ok) return nullptr;
    return result;
  }
  const size_t n = b.size(s[0], s[1]);
  void* data = nullptr;
  if (argc == 4) {
    if (!typed(env, argv[3], static_cast<double>(n), false, false, &data, b.outError)) return nullptr;
    result = argv[3];
  } else {
    napi_value buffer;
    if (napi_create_arraybuffer(env, n * sizeof(float), &data, &buffer) != napi_ok ||
        napi_create_typedarray(env, napi_float32_array, n, buffer, 0, &result) != napi_ok)
      return nullptr;
  }
  b.pack(static_cast<const float*>(src), static_cast<float*>(data), s[0], s[1]);
  return result;
}

// headPackA(a, M, K[, out]): a [M, K] packed for headMatmulNT, into `out` (a Float32Array of at
// least headPackedSize(M, K) values, e.g. on a SharedArrayBuffer that worker threads read) or a
// new Float32Array; null where the packed product does not run (no AVX-512, or its tiles off).
napi_value PackA(napi_env env, napi_callback_info info) {
  static const PackBinding b{"headPackA",
                             "headPackA: a must be a Float32Array of M * K",
                             "headPackA: out must be a Float32Array of headPackedSize(M, K)",
                             "headPackA: a larger than 2^31 values",
                             0,
                             head_packed_available,
                             head_packed_a_size,
                             head_pack_a};
  return packWith(env, info, b);
}

// headPackedSize(M, K): the floats headPackA writes for a [M, K], or 0 where it would return null.
napi_value PackedSize(napi_env env, napi_callback_info info) {
  ARGS(2, "headPackedSize");
  int32_t s[2];
  if (!ints(env, argv, 0, 2, s)) return nullptr;
  napi_value result;
  const double n = head_packed_available() ? static_cast<double>(head_packed_a_size(s[0], s[1])) : 0;
  if (napi_create_double(env, n, &result) != napi_ok) return nullptr;
  return result;
}

// headMatmulNT(a, packed, x, c, M, K, N): c [M, N] = A x^T, x [N, K]; A is a [M, K], or with
// `packed` headPackA's array of it.
napi_value MatmulNT(napi_env env, napi_callback_info info) {
  ARGS(7, "headMatmulNT");
  int32_t s[3];
  if (!ints(env, argv, 4, 3, s)) return nullptr;
  if (static_cast<double>(s[0]) * s[1] >= 2147483648.0 || static_cast<double>(s[1]) * s[2] >= 2147483648.0 ||
      static_cast<double>(s[0]) * s[2] >= 2147483648.0)
    return fail(env, "headMatmulNT: operands larger than 2^31 values");
  bool packed = false;
  if (napi_get_value_bool(env, argv[1], &packed) != napi_ok) return fail(env, "headMatmulNT: packed must be a boolean");
  if (packed && !head_packed_available())
    return fail(env, "headMatmulNT: a packed a needs the AVX-512 product, which does not run here");
  const double aSize = packed ? static_cast<double>(head_packed_a_size(s[0], s[1])) : static_cast<double>(s[0]) * s[1];
  void *a, *x, *c;
  if (!typed(env, argv[0], aSize, false, false, &a, "headMatmulNT: a must be a Float32Array of M * K (packed: headPackA's)") ||
      !typed(env, argv[2], static_cast<double>(s[2]) * s[1], false, false, &x, "headMatmulNT: x must be a Float32Array of N * K") ||
      !typed(env, argv[3], static_cast<double>(s[0]) * s[2], false, false, &c, "headMatmulNT: c must be a Float32Array of M * N"))
    return nullptr;
  head_matmul_nt(static_cast<const float*>(a), packed, static_cast<const float*>(x), static_cast<float*>(c), s[0], s[1],
                 s[2]);
  return nullptr;
}

// headMatmulNTRows(a, packed, x, rows: Int32Array, c, M, K, N): c [M, N] = A X^T with X's row j
// the row rows[j] of x [n, K] (the batch gathered inside the product's packing); A as headMatmulNT's.
napi_value MatmulNTRows(napi_env env, napi_callback_info info) {
  ARGS(8, "headMatmulNTRows");
  int32_t s[3];
  if (!ints(env, argv, 5, 3, s)) return nullptr;
  if (static_cast<double>(s[0]) * s[1] >= 2147483648.0 || static_cast<double>(s[0]) * s[2] >= 2147483648.0)
    return fail(env, "headMatmulNTRows: operands larger than 2^31 values");
  bool packed = false;
  if (napi_get_value_bool(env, argv[1], &packed) != napi_ok)
    return fail(env, "headMatmulNTRows: packed must be a boolean");
  if (packed && !head_packed_available())
    return fail(env, "headMatmulNTRows: a packed a needs the AVX-512 product, which does not run here");
  const double aSize = packed ? static_cast<double>(head_packed_a_size(s[0], s[1])) : static_cast<double>(s[0]) * s[1];
  void *a, *x, *rows, *c;
  if (!typed(env, argv[0], aSize, false, false, &a,
             "headMatmulNTRows: a must be a Float32Array of M * K (packed: headPackA's)") ||
      !typed(env, argv[2], 0, false, false, &x, "headMatmulNTRows: x must be a Float32Array") ||
      !typed(env, argv[3], s[2], false, true, &rows, "headMatmulNTRows: rows must be an Int32Array of N") ||
      !typed(env, argv[4], static_cast<double>(s[0]) * s[2], false, false, &c,
             "headMatmulNTRows: c must be a Float32Array of M * N"))
    return nullptr;
  size_t xLen = 0;
  napi_typedarray_type t;
  void* unused;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, argv[2], &t, &xLen, &unused, &ab, &off) != napi_ok) return nullptr;
  const int64_t n = s[1] > 0 ? static_cast<int64_t>(xLen / static_cast<size_t>(s[1])) : 0;
  const int32_t* r = static_cast<const int32_t*>(rows);
  for (int j = 0; j < s[2]; ++j)
    if (r[j] < 0 || r[j] >= n) return fail(env, "headMatmulNTRows: a row index is outside x");
  head_matmul_nt_rows(static_cast<const float*>(a), packed, static_cast<const float*>(x), r, static_cast<float*>(c),
                      s[0], s[1], s[2]);
  return nullptr;
}

// headForward(a, bias, scale|null, offset|null, e, max, sum, Cw, B)
napi_value Forward(napi_env env, napi_callback_info info) {
  ARGS(9, "headForward");
  int32_t s[2];
  if (!ints(env, argv, 7, 2, s)) return nullptr;
  const double big = static_cast<double>(s[0]) * s[1];
  void *a, *bias, *scale, *offset, *e, *mx, *sum;
  if (!typed(env, argv[0], big, false, false, &a, "headForward: a must be a Float32Array of Cw * B") ||
      !typed(env, argv[1], s[0], false, false, &bias, "headForward: bias must be a Float32Array of Cw") ||
      !typed(env, argv[2], s[0], true, false, &scale, "headForward: scale must be a Float32Array of Cw or null") ||
      !typed(env, argv[3], s[0], true, false, &offset, "headForward: offset must be a Float32Array of Cw or null") ||
      !typed(env, argv[4], big, false, false, &e, "headForward: e must be a Float32Array of Cw * B") ||
      !typed(env, argv[5], s[1], false, false, &mx, "headForward: max must be a Float32Array of B") ||
      !typed(env, argv[6], s[1], false, false, &sum, "headForward: sum must be a Float32Array of B"))
    return nullptr;
  head_forward(static_cast<float*>(a), static_cast<const float*>(bias), static_cast<const float*>(scale),
               static_cast<const float*>(offset), static_cast<float*>(e), static_cast<float*>(mx),
               static_cast<float*>(sum), s[0], s[1]);
  return nullptr;
}

// headBackward(e, f, hot: Int32Array, hv, a|null, out, Cw, B)
napi_value Backward(napi_env env, napi_callback_info info) {
  ARGS(8, "headBackward");
  int32_t s[2];
  if (!ints(env, argv, 6, 2, s)) return nullptr;
  const double big = static_cast<double>(s[0]) * s[1];
  void *e, *f, *hot, *hv, *a, *out;
  if (!typed(env, argv[0], big, false, false, &e, "headBackward: e must be a Float32Array of Cw * B") ||
      !typed(env, argv[1], s[1], false, false, &f, "headBackward: f must be a Float32Array of B") ||
      !typed(env, argv[2], s[1], false, true, &hot, "headBackward: hot must be an Int32Array of B") ||
      !typed(env, argv[3], s[1], false, false, &hv, "headBackward: hv must be a Float32Array of B") ||
      !typed(env, argv[4], big, true, false, &a, "headBackward: a must be a Float32Array of Cw * B or null") ||
      !typed(env, argv[5], s[0], false, false, &out, "headBackward: out must be a Float32Array of Cw"))
    return nullptr;
  head_backward(static_cast<float*>(e), static_cast<const float*>(f), static_cast<const int32_t*>(hot),
                static_cast<const float*>(hv), static_cast<const float*>(a), static_cast<float*>(out), s[0], s[1]);
  return nullptr;
}

// headSgd(p, g, buf, momentum, weightDecay, lr): all three arrays of p's length.
napi_value Sgd(napi_env env, napi_callback_info info) {
  ARGS(6, "headSgd");
  double h[3];
  for (int i = 0; i < 3; ++i)
    if (napi_get_value_double(env, argv[3 + i], &h[i]) != napi_ok) return fail(env, "headSgd: rates must be numbers");
  napi_typedarray_type type;
  size_t n = 0;
  void* p = nullptr;
  bool is = false;
  if (napi_is_typedarray(env, argv[0], &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, argv[0], &type, &n, &p, nullptr, nullptr) != napi_ok || type != napi_float32_array)
    return fail(env, "headSgd: p must be a Float32Array");
  void *g, *buf;
  if (!typed(env, argv[1], static_cast<double>(n), false, false, &g, "headSgd: g must be a Float32Array of p's length") ||
      !typed(env, argv[2], static_cast<double>(n), false, false, &buf, "headSgd: buf must be a Float32Array of p's length"))
    return nullptr;
  head_sgd(static_cast<float*>(p), static_cast<const float*>(g), static_cast<float*>(buf), static_cast<int64_t>(n),
           static_cast<float>(h[0]), static_cast<float>(h[1]), static_cast<float>(h[2]));
  return nullptr;
}

// headMeanRows(f, n, d, divisor, mean): mean [d] accumulates f [n, d] / divisor row by row.
napi_value MeanRows(napi_env env, napi_callback_info info) {
  ARGS(5, "headMeanRows");
  int32_t s[2];
  if (!ints(env, argv, 1, 2, s)) return nullptr;
  double divisor = 0;
  if (napi_get_value_double(env, argv[3], &divisor) != napi_ok || !(divisor > 0))
    return fail(env, "headMeanRows: divisor must be a positive number");
  void *f, *mean;
  if (!typed(env, argv[0], static_cast<double>(s[0]) * s[1], false, false, &f, "headMeanRows: f must be a Float32Array of n * d") ||
      !typed(env, argv[4], s[1], false, false, &mean, "headMeanRows: mean must be a Float32Array of d"))
    return nullptr;
  head_mean_rows(static_cast<const float*>(f), s[0], s[1], divisor, static_cast<float*>(mean));
  return nullptr;
}

// headTransformRows(f, mean|null, out, n, d): centred (mean given) and L2-normalised rows.
napi_value TransformRows(napi_env env, napi_callback_info info) {
  ARGS(5, "headTransformRows");
  int32_t s[2];
  if (!ints(env, argv, 3, 2, s)) return nullptr;
  const double n = static_cast<double>(s[0]) * s[1];
  void *f, *mean, *out;
  if (!typed(env, argv[0], n, false, false, &f, "headTransformRows: f must be a Float32Array of n * d") ||
      !typed(env, argv[1], s[1], true, false, &mean, "headTransformRows: mean must be a Float32Array of d or null") ||
      !typed(env, argv[2], n, false, false, &out, "headTransformRows: out must be a Float32Array of n * d"))
    return nullptr;
  head_transform_rows(static_cast<const float*>(f), static_cast<const float*>(mean), static_cast<float*>(out), s[0],
                      s[1]);
  return nullptr;
}

// headAddRows(x, labels: Int32Array, out, n, d, C): out [C, d] row labels[i] += x[i].
napi_value AddRows(napi_env env, napi_callback_info info) {
  ARGS(6, "headAddRows");
  int32_t s[3];
  if (!ints(env, argv, 3, 3, s)) return nullptr;
  void *x, *labels, *out;
  if (!typed(env, argv[0], static_cast<double>(s[0]) * s[1], false, false, &x, "headAddRows: x must be a Float32Array of n * d") ||
      !typed(env, argv[1], s[0], false, true, &labels, "headAddRows: labels must be an Int32Array of n") ||
      !typed(env, argv[2], static_cast<double>(s[2]) * s[1], false, false, &out, "headAddRows: out must be a Float32Array of C * d"))
    return nullptr;
  const int32_t* l = static_cast<const int32_t*>(labels);
  for (int i = 0; i < s[0]; ++i)
    if (l[i] < 0 || l[i] >= s[2]) return fail(env, "headAddRows: a label is outside 0 .. C-1");
  head_add_rows(static_cast<const float*>(x), l, static_cast<float*>(out), s[0], s[1]);
  return nullptr;
}

// headLogitRows(zt, C, m, out, offset, bias|null, sq|null, x|null, d): out [m, C] from `offset`
// (floats) out of the class-major zt [C, m]; with sq, x [m, d] is required.
napi_value LogitRows(napi_env env, napi_callback_info info) {
  ARGS(9, "headLogitRows");
  int32_t s[2];
  int32_t dd[1];
  if (!ints(env, argv, 1, 2, s) || !ints(env, argv, 8, 1, dd)) return nullptr;
  double offset = -1;
  if (napi_get_value_double(env, argv[4], &offset) != napi_ok || !(offset >= 0) || offset != static_cast<double>(static_cast<int64_t>(offset)))
    return fail(env, "headLogitRows: offset must be a non-negative integer");
  const double big = static_cast<double>(s[0]) * s[1];
  void *zt, *out, *bias, *sq, *x;
  if (!typed(env, argv[0], big, false, false, &zt, "headLogitRows: zt must be a Float32Array of C * m") ||
      !typed(env, argv[3], offset + big, false, false, &out, "headLogitRows: out must hold offset + m * C floats") ||
      !typed(env, argv[5], s[0], true, false, &bias, "headLogitRows: bias must be a Float32Array of C or null") ||
      !typed(env, argv[6], s[0], true, false, &sq, "headLogitRows: sq must be a Float32Array of C or null") ||
      !typed(env, argv[7], static_cast<double>(s[1]) * dd[0], sq == nullptr, false, &x, "headLogitRows: x must be a Float32Array of m * d (required with sq)"))
    return nullptr;
  head_logit_rows(static_cast<const float*>(zt), s[0], s[1], static_cast<float*>(out) + static_cast<int64_t>(offset),
                  static_cast<const float*>(bias), static_cast<const float*>(sq), static_cast<const float*>(x), dd[0]);
  return nullptr;
}

// headPackPanels(w, C, K[, out]): w [C, K] packed for headRowsProduct, into `out` (at least
// headPanelsSize(C, K) floats, e.g. shared with worker threads) or a new Float32Array; null where
// that product does not run (no AVX-512, or its tiles off).
napi_value PackPanels(napi_env env, napi_callback_info info) {
  static const PackBinding b{"headPackPanels",
                             "headPackPanels: w must be a Float32Array of C * K",
                             "headPackPanels: out must be a Float32Array of headPanelsSize(C, K)",
                             "headPackPanels: w larger than 2^31 values",
                             31,
                             head_rows_available,
                             head_panels_size,
                             head_pack_panels};
  return packWith(env, info, b);
}

// headPanelsSize(C, K): the floats headPackPanels writes, or 0 where it would return null.
napi_value PanelsSize(napi_env env, napi_callback_info info) {
  ARGS(2, "headPanelsSize");
  int32_t s[2];
  if (!ints(env, argv, 0, 2, s)) return nullptr;
  napi_value result;
  const double n = head_rows_available() ? static_cast<double>(head_panels_size(s[0], s[1])) : 0;
  if (napi_create_double(env, n, &result) != napi_ok) return nullptr;
  return result;
}

// headRowsProduct(panels, x, m, K, C, out, offset, bias|null, sq|null): out [m, C] from `offset`
// (floats) = x [m, K] times headPackPanels' W^T, + bias, or with sq NCM's distance (head.h).
napi_value RowsProduct(napi_env env, napi_callback_info info) {
  ARGS(9, "headRowsProduct");
  int32_t s[3];
  if (!ints(env, argv, 2, 3, s)) return nullptr;
  if (!head_rows_available()) return fail(env, "headRowsProduct: needs the AVX-512 product, which does not run here");
  if (static_cast<double>(s[0]) * s[1] >= 2147483648.0 || static_cast<double>(s[0]) * s[2] >= 2147483648.0 ||
      static_cast<double>(s[2] + 31) * s[1] >= 2147483648.0)
    return fail(env, "headRowsProduct: operands larger than 2^31 values");
  double offset = -1;
  if (napi_get_value_double(env, argv[6], &offset) != napi_ok || !(offset >= 0) ||
      offset != static_cast<double>(static_cast<int64_t>(offset)))
    return fail(env, "headRowsProduct: offset must be a non-negative integer");
  void *panels, *x, *out, *bias, *sq;
  if (!typed(env, argv[0], static_cast<double>(head_panels_size(s[2], s[1])), false, false, &panels,
             "headRowsProduct: panels must be a Float32Array of headPanelsSize(C, K)") ||
      !typed(env, argv[1], static_cast<double>(s[0]) * s[1], false, false, &x, "headRowsProduct: x must be a Float32Array of m * K") ||
      !typed(env, argv[5], offset + static_cast<double>(s[0]) * s[2], false, false, &out,
             "headRowsProduct: out must hold offset + m * C floats") ||
      !typed(env, argv[7], s[2], true, false, &bias, "headRowsProduct: bias must be a Float32Array of C or null") ||
      !typed(env, argv[8], s[2], true, false, &sq, "headRowsProduct: sq must be a Float32Array of C or null"))
    return nullptr;
  if (bias && sq) return fail(env, "headRowsProduct: bias and sq cannot both be given");
  if (s[0] == 0 || s[2] == 0) return nullptr;
  head_rows_product(static_cast<const float*>(panels), static_cast<const float*>(x), s[0], s[1], s[2],
                    static_cast<float*>(out) + static_cast<int64_t>(offset), static_cast<const float*>(bias),
                    static_cast<const float*>(sq));
  return nullptr;
}

// headArgmaxColumns(z, m, C, scale|null, shift|null, out: Int32Array of m): see head.h.
napi_value ArgmaxColumns(napi_env env, napi_callback_info info) {
  ARGS(6, "headArgmaxColumns");
  int32_t s[2];
  if (!ints(env, argv, 1, 2, s)) return nullptr;
  if (s[1] < 1) return fail(env, "headArgmaxColumns: C must be at least 1");
  void *z, *scale, *shift, *out;
  if (!typed(env, argv[0], static_cast<double>(s[0]) * s[1], false, false, &z, "headArgmaxColumns: z must be a Float32Array of m * C") ||
      !typed(env, argv[3], s[1], true, false, &scale, "headArgmaxColumns: scale must be a Float32Array of C or null") ||
      !typed(env, argv[4], s[1], true, false, &shift, "headArgmaxColumns: shift must be a Float32Array of C or null") ||
      !typed(env, argv[5], s[0], false, true, &out, "headArgmaxColumns: out must be an Int32Array of m"))
    return nullptr;
  head_argmax_columns(static_cast<const float*>(z), s[0], s[1], static_cast<const float*>(scale),
                      static_cast<const float*>(shift), static_cast<int32_t*>(out));
  return nullptr;
}

// headMoveColumns(src, srcRowMajor, srcIdx: Int32Array, srcLd, dst, dstRowMajor, dstIdx: Int32Array,
// dstLd, count, Cw): see head.h; every index is checked against its array's length first.
napi_value MoveColumns(napi_env env, napi_callback_info info) {
  ARGS(10, "headMoveColumns");
  int32_t s[4];
  if (napi_get_value_int32(env, argv[3], &s[0]) != napi_ok || napi_get_value_int32(env, argv[7], &s[1]) != napi_ok ||
      napi_get_value_int32(env, argv[8], &s[2]) != napi_ok || napi_get_value_int32(env, argv[9], &s[3]) != napi_ok ||
      s[0] < 0 || s[1] < 0 || s[2] < 0 || s[3] < 0)
    return fail(env, "headMoveColumns: sizes must be integers >= 0");
  bool rm[2];
  if (napi_get_value_bool(env, argv[1], &rm[0]) != napi_ok || napi_get_value_bool(env, argv[5], &rm[1]) != napi_ok)
    return fail(env, "headMoveColumns: srcRowMajor and dstRowMajor must be booleans");
  const int count = s[2], Cw = s[3];
  void *src, *sIdx, *dst, *dIdx;
  size_t srcLen = 0, dstLen = 0;
  napi_typedarray_type type;
  if (!typed(env, argv[2], count, false, true, &sIdx, "headMoveColumns: srcIdx must be an Int32Array of count") ||
      !typed(env, argv[6], count, false, true, &dIdx, "headMoveColumns: dstIdx must be an Int32Array of count") ||
      !typed(env, argv[0], 0, false, false, &src, "headMoveColumns: src must be a Float32Array") ||
      !typed(env, argv[4], 0, false, false, &dst, "headMoveColumns: dst must be a Float32Array"))
    return nullptr;
  if (napi_get_typedarray_info(env, argv[0], &type, &srcLen, &src, nullptr, nullptr) != napi_ok ||
      napi_get_typedarray_info(env, argv[4], &type, &dstLen, &dst, nullptr, nullptr) != napi_ok)
    return nullptr;
  if (count == 0 || Cw == 0) return nullptr;
  // The last element each index reaches must be inside its array.
  const auto inside = [&](const int32_t* idx, bool rowMajor, int ld, size_t len) {
    for (int i = 0; i < count; ++i) {
      if (idx[i] < 0) return false;
      const double last = rowMajor ? static_cast<double>(idx[i]) * ld + (Cw - 1)
                                   : static_cast<double>(Cw - 1) * ld + idx[i];
      if (last >= static_cast<double>(len)) return false;
    }
    return true;
  };
  if (!inside(static_cast<const int32_t*>(sIdx), rm[0], s[0], srcLen) ||
      !inside(static_cast<const int32_t*>(dIdx), rm[1], s[1], dstLen))
    return fail(env, "headMoveColumns: an index reaches outside its array");
  head_move_columns(static_cast<const float*>(src), rm[0], static_cast<const int32_t*>(sIdx), s[0],
                    static_cast<float*>(dst), rm[1], static_cast<const int32_t*>(dIdx), s[1], count, Cw);
  return nullptr;
}

#undef ARGS

}  // namespace

bool register_head(napi_env env, napi_value exports) {
  const struct {
    const char* name;
    napi_callback cb;
  } fns[] = {{"headTranspose", Transpose}, {"headMatmul", Matmul},     {"headForward", Forward},
             {"headBackward", Backward},   {"headSgd", Sgd},           {"headPackA", PackA},
             {"headMatmulNT", MatmulNT}, {"headMatmulNTRows", MatmulNTRows}, {"headPackedSize", PackedSize},
             {"headMeanRows", MeanRows},   {"headTransformRows", TransformRows},
             {"headAddRows", AddRows},     {"headLogitRows", LogitRows},
             {"headMoveColumns", MoveColumns}, {"headArgmaxColumns", ArgmaxColumns},
             {"headPackPanels", PackPanels}, {"headPanelsSize", PanelsSize},
             {"headRowsProduct", RowsProduct}};
  for (const auto& f : fns) {
    napi_value fn;
    if (napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &fn) != napi_ok) return false;
    if (napi_set_named_property(env, exports, f.name, fn) != napi_ok) return false;
  }
  return true;
}

}  // namespace longtail

#include "kernel_target.h"

namespace longtail {

#if defined(LONGTAIL_X86)

bool head_kernels_compiled() { return true; }

namespace {

// exp of 8 floats (Cephes' expf: range reduction by ln 2 in two parts, degree-6 polynomial;
// about 1 ulp); below -87.33 (where expf goes subnormal) the result is 0.
inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.33654f);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.3762626647949f));
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500E-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(n)), under);
}

// The same for one float, so that a row's result does not depend on its lane.
inline float exp1(float x) {
  alignas(32) float v[8] = {x, 0, 0, 0, 0, 0, 0, 0};
  _mm256_store_ps(v, exp8(_mm256_load_ps(v)));
  return v[0];
}


// The GEMM of the head's two products, Z^T = W X^T (W [Cw, d], the batch X [B, d] as it comes)
// and dW = G^T X (G^T [Cw, B]), AVX-512 with a 12 x 32 register tile (12 rows of A broadcast,
// 32 columns of B in two vectors). Each output is one FMA chain over k ascending, continued
// across the KC blocks through C, starting from 0: the same sums in the same order as conv.cc's
// matmul, so the results are bit-identical to it and do not depend on how the rows are split
// over threads or how the loops are blocked.
// Blocking (measured on the head's shapes at ImageNet-LT size, Cw 500-1000, d 2048, B 128, and
// docs/benchmarks.md): B's block of KC x NC (128 KiB) is packed once and stays in L2; each strip
// of 12 rows of A goes across all the block's panels while it is in L1, so A (the weight, the
// large operand) is read from memory once per KC block, and read straight from its rows: W
// changes every step (cRT), and packing it cost as much as a third of the product. KC 256 keeps
// a 32-column panel of B (32 KiB) in L1 beside the strip.
constexpr int kGR = 12, kGC = 32, kKC = 256, kNC = 256;

thread_local std::vector<float> tPackB;

// c [rows, cols] (+)= A B for one 12 x 32 tile over kc steps of k. A packed (head_pack_a's strip:
// a[i, k] at ap[k * 12 + i]) or plain rows (a[i, k] at ap[i * lda + k]; rows past `rows` read the
// last row again and are not stored); bp a packed panel (b[k, j] at bp[k * 32 + j]).
template <bool Packed>
__attribute__((target("avx512f,avx2,fma"))) inline void gemm_tile(int kc, const float* ap, int lda, const float* bp,
                                                                   float* c, int ldc, int rows, int cols,
                                                                   bool accumulate) {
  const __mmask16 m0 = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols > 16 ? static_cast<__mmask16>((1u << (cols - 16)) - 1) : 0;
  __m512 acc[kGR][2];
  const float* ar[kGR];
#pragma GCC unroll 12
  for (int i = 0; i < kGR; ++i) {
    ar[i] = Packed ? ap + i : ap + static_cast<size_t>(i < rows ? i : rows - 1) * lda;
    if (accumulate && i < rows) {
      acc[i][0] = _mm512_maskz_loadu_ps(m0, c + static_cast<size_t>(i) * ldc);
      acc[i][1] = _mm512_maskz_loadu_ps(m1, c + static_cast<size_t>(i) * ldc + 16);
    } else {
      acc[i][0] = _mm512_setzero_ps();
      acc[i][1] = _mm512_setzero_ps();
    }
  }
  for (int k = 0; k < kc; ++k, bp += kGC) {
    const __m512 b0 = _mm512_loadu_ps(bp);
    const __m512 b1 = _mm512_loadu_ps(bp + 16);
#pragma GCC unroll 12
    for (int i = 0; i < kGR; ++i) {
      const __m512 a = _mm512_set1_ps(Packed ? ap[k * kGR + i] : ar[i][k]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < kGR; ++i) {
    if (i >= rows) break;
    _mm512_mask_storeu_ps(c + static_cast<size_t>(i) * ldc, m0, acc[i][0]);
    _mm512_mask_storeu_ps(c + static_cast<size_t>(i) * ldc + 16, m1, acc[i][1]);
  }
}

// A [M, K] in strips of kGR rows per KC block, zero-padded: strip s of the block at p0 starts at
// p0 * strips(M) * kGR + s * kc * kGR (head_pack_a's layout: LWS's frozen W, packed once).
void pack_a(const float* a, float* dst, int M, int K, int p0, int kc, int strips) {
  for (int ip = 0; ip < strips; ++ip, dst += static_cast<size_t>(kc) * kGR) {
    for (int i = 0; i < kGR; ++i) {
      const int row = ip * kGR + i;
      if (row < M) {
        const float* src = a + static_cast<size_t>(row) * K + p0;
        for (int k = 0; k < kc; ++k) dst[k * kGR + i] = src[k];
      } else {
        for (int k = 0; k < kc; ++k) dst[k * kGR + i] = 0;
      }
    }
  }
}

// c [M, N] = A B. A is a [M, K] row-major, or (aPacked) head_pack_a's layout of it; B is
// b [K, N] row-major, or (bT) b [N, K] row-major, i.e. B = b^T packed straight from the batch's
// rows (no separate transpose).
__attribute__((target("avx512f,avx2,fma"))) void gemm_avx512(const float* a, bool aPacked, const float* b,
                                                              bool bT, float* c, int M, int K, int N,
                                                              const int32_t* rows = nullptr) {
  const int strips = (M + kGR - 1) / kGR;
  for (int j0 = 0; j0 < N; j0 += kNC) {
    const int nc = N - j0 < kNC ? N - j0 : kNC;
    const int panels = (nc + kGC - 1) / kGC;
    for (int p0 = 0; p0 < K; p0 += kKC) {
      const int kc = K - p0 < kKC ? K - p0 : kKC;
      // B [p0 .. p0 + kc) x [j0 .. j0 + nc) in panels of kGC columns, zero-padded.
      tPackB.resize(static_cast<size_t>(panels) * kc * kGC);
      for (int jp = 0; jp < panels; ++jp) {
        float* dst = tPackB.data() + static_cast<size_t>(jp) * kc * kGC;
        const int col = j0 + jp * kGC;
        const int w = N - col < kGC ? N - col : kGC;
        if (bT) {
          for (int j = 0; j < w; ++j) {
            const size_t r = rows ? static_cast<size_t>(rows[col + j]) : static_cast<size_t>(col + j);
            const float* src = b + r * K + p0;
            for (int k = 0; k < kc; ++k) dst[k * kGC + j] = src[k];
          }
          for (int j = w; j < kGC; ++j)
            for (int k = 0; k < kc; ++k) dst[k * kGC + j] = 0;
        } else {
          for (int k = 0; k < kc; ++k) {
            const float* src = b + static_cast<size_t>(p0 + k) * N + col;
            for (int j = 0; j < w; ++j) dst[k * kGC + j] = src[j];
            for (int j = w; j < kGC; ++j) dst[k * kGC + j] = 0;
          }
        }
      }
      for (int ip = 0; ip < strips; ++ip) {
        const int row = ip * kGR;
        const int h = M - row < kGR ? M - row : kGR;
        const float* ap = aPacked ? a + static_cast<size_t>(p0) * strips * kGR + static_cast<size_t>(ip) * kc * kGR
                                  : a + static_cast<size_t>(row) * K + p0;
        for (int jp = 0; jp < panels; ++jp) {
          const int col = j0 + jp * kGC;
          const int w = N - col < kGC ? N - col : kGC;
          const float* bp = tPackB.data() + static_cast<size_t>(jp) * kc * kGC;
          float* cp = c + static_cast<size_t>(row) * N + col;
          if (aPacked)
            gemm_tile<true>(kc, ap, 0, bp, cp, N, h, w, p0 > 0);
          else
            gemm_tile<false>(kc, ap, K, bp, cp, N, h, w, p0 > 0);
        }
      }
    }
  }
}

}  // namespace

void head_matmul(const float* a, const float* b, float* c, int M, int K, int N) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (K == 0 || !avx512 || !using_avx512()) {
    matmul(a, b, c, M, K, N);
    return;
  }
  gemm_avx512(a, false, b, false, c, M, K, N);
}

bool head_packed_available() {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512 && using_avx512();
}

size_t head_packed_a_size(int M, int K) { return static_cast<size_t>((M + kGR - 1) / kGR) * kGR * K; }

void head_pack_a(const float* a, float* packed, int M, int K) {
  const int strips = (M + kGR - 1) / kGR;
  for (int p0 = 0; p0 < K; p0 += kKC) {
    const int kc = K - p0 < kKC ? K - p0 : kKC;
    pack_a(a, packed + static_cast<size_t>(p0) * strips * kGR, M, K, p0, kc, strips);
  }
}

void head_matmul_nt(const float* a, bool aPacked, const float* x, float* c, int M, int K, int N) {
  if (K > 0 && head_packed_available()) {
    gemm_avx512(a, aPacked, x, true, c, M, K, N);
    return;
  }
  // Elsewhere (a packed A needs the AVX-512 path: the binding refuses it): transpose, then the product.
  thread_local std::vector<float> xt;
  xt.resize(static_cast<size_t>(K) * N);
  head_transpose(x, xt.data(), N, K);
  matmul(a, xt.data(), c, M, K, N);
}

void head_matmul_nt_rows(const float* a, bool aPacked, const float* x, const int32_t* rows, float* c, int M, int K,
                         int N) {
  if (K > 0 && head_packed_available()) {
    gemm_avx512(a, aPacked, x, true, c, M, K, N, rows);
    return;
  }
  thread_local std::vector<float> xg;
  xg.resize(static_cast<size_t>(K) * N);
  for (int j = 0; j < N; ++j)
    std::memcpy(xg.data() + static_cast<size_t>(j) * K, x + static_cast<size_t>(rows[j]) * K, sizeof(float) * K);
  head_matmul_nt(a, aPacked, xg.data(), c, M, K, N);
}

void head_transpose(const float* x, float* xt, int B, int d) {
  constexpr int T = 32;
  for (int r0 = 0; r0 < B; r0 += T)
    for (int k0 = 0; k0 < d; k0 += T) {
      const int r1 = r0 + T < B ? r0 + T : B, k1 = k0 + T < d ? k0 + T : d;
      for (int k = k0; k < k1; ++k)
        for (int r = r0; r < r1; ++r) xt[static_cast<size_t>(k) * B + r] = x[static_cast<size_t>(r) * d + k];
    }
}

void head_forward(float* a, const float* bias, const float* scale, const float* offset, float* e, float* max,
                  float* sum, int Cw, int B) {
  const int B8 = B / 8 * 8;
  for (int r = 0; r < B; ++r) {
    max[r] = -INFINITY;
    sum[r] = 0;
  }
  // Pass 1: a += bias, the logits z and their row maxima (z goes to e for now).
  for (int c = 0; c < Cw; ++c) {
    float* ac = a + static_cast<size_t>(c) * B;
    float* zc = e + static_cast<size_t>(c) * B;
    const __m256 vb = _mm256_set1_ps(bias[c]);
    const __m256 vs = _mm256_set1_ps(scale ? scale[c] : 1.0f);
    const __m256 vo = _mm256_set1_ps(offset ? offset[c] : 0.0f);
    int r = 0;
    for (; r < B8; r += 8) {
      const __m256 v = _mm256_add_ps(_mm256_loadu_ps(ac + r), vb);
      _mm256_storeu_ps(ac + r, v);
      __m256 z = scale ? _mm256_mul_ps(v, vs) : v;
      if (offset) z = _mm256_add_ps(z, vo);
      _mm256_storeu_ps(zc + r, z);
      _mm256_storeu_ps(max + r, _mm256_max_ps(_mm256_loadu_ps(max + r), z));
    }
    for (; r < B; ++r) {
      const float v = ac[r] + bias[c];
      ac[r] = v;
      float z = scale ? v * scale[c] : v;
      if (offset) z = z + offset[c];
      zc[r] = z;
      if (z > max[r]) max[r] = z;
    }
  }
  // Pass 2: e = exp(z - max), summed per row.
  for (int c = 0; c < Cw; ++c) {
    float* ec = e + static_cast<size_t>(c) * B;
    int r = 0;
    for (; r < B8; r += 8) {
      const __m256 v = exp8(_mm256_sub_ps(_mm256_loadu_ps(ec + r), _mm256_loadu_ps(max + r)));
      _mm256_storeu_ps(ec + r, v);
      _mm256_storeu_ps(sum + r, _mm256_add_ps(_mm256_loadu_ps(sum + r), v));
    }
    for (; r < B; ++r) {
      const float v = exp1(ec[r] - max[r]);
      ec[r] = v;
      sum[r] += v;
    }
  }
}

void head_backward(float* e, const float* f, const int32_t* hot, const float* hv, const float* a, float* out,
                   int Cw, int B) {
  const int B8 = B / 8 * 8;
  for (int c = 0; c < Cw; ++c) {
    float* ec = e + static_cast<size_t>(c) * B;
    const float* ac = a ? a + static_cast<size_t>(c) * B : nullptr;
    const __m256i vc = _mm256_set1_epi32(c);
    __m256 acc = _mm256_setzero_ps();
    int r = 0;
    for (; r < B8; r += 8) {
      const __m256 mask = _mm256_castsi256_ps(
          _mm256_cmpeq_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(hot + r)), vc));
      const __m256 g = _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(ec + r), _mm256_loadu_ps(f + r)),
                                     _mm256_and_ps(mask, _mm256_loadu_ps(hv + r)));
      _mm256_storeu_ps(ec + r, g);
      acc = ac ? _mm256_add_ps(acc, _mm256_mul_ps(g, _mm256_loadu_ps(ac + r))) : _mm256_add_ps(acc, g);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    float s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (; r < B; ++r) {
      const float g = ec[r] * f[r] - (hot[r] == c ? hv[r] : 0.0f);
      ec[r] = g;
      s += ac ? g * ac[r] : g;
    }
    out[c] = s;
  }
}

void head_sgd(float* p, const float* g, float* buf, int64_t n, float momentum, float wd, float lr) {
  const __m256 vm = _mm256_set1_ps(momentum), vw = _mm256_set1_ps(wd), vl = _mm256_set1_ps(lr);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 vp = _mm256_loadu_ps(p + i);
    const __m256 d = _mm256_add_ps(_mm256_loadu_ps(g + i), _mm256_mul_ps(vp, vw));
    const __m256 b = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(buf + i), vm), d);
    _mm256_storeu_ps(buf + i, b);
    _mm256_storeu_ps(p + i, _mm256_sub_ps(vp, _mm256_mul_ps(b, vl)));
  }
  for (; i < n; ++i) {
    const float d = g[i] + p[i] * wd;
    const float b = buf[i] * momentum + d;
    buf[i] = b;
    p[i] = p[i] - b * lr;
  }
}


// The stage-2 row kernels (NCM's means and scores, evaluation's logits). Each reproduces the
// TypeScript it replaces operation for operation (classifiers/linear-ops.ts, ncm.ts), in double
// where that code computes in double, so the results are the same bits: a sum keeps its order;
// only independent rows or columns run side by side.

namespace {

// Eight floats to p, or the first ones of them under a tail mask: a masked store only for the
// tail (AVX-512 masked stores are slow on AMD's cores, even with every lane set).
__attribute__((target("avx512f,avx2,fma"))) inline void store8(float* p, __mmask8 mk, __m256 v) {
  if (mk == 0xFF)
    _mm256_storeu_ps(p, v);
  else
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>(mk), _mm512_castps256_ps512(v));
}

// s [8] (double, row r in lane r) += the eight columns of the 8 x 8 block q[r] (row r's eight
// consecutive values), column by column: each lane's adds stay in the row's order.
__attribute__((target("avx512f,avx2,fma"))) inline __m512d add_columns8(__m512d s, const __m512d q[8]) {
  const __m512d t0 = _mm512_unpacklo_pd(q[0], q[1]), t1 = _mm512_unpackhi_pd(q[0], q[1]);
  const __m512d t2 = _mm512_unpacklo_pd(q[2], q[3]), t3 = _mm512_unpackhi_pd(q[2], q[3]);
  const __m512d t4 = _mm512_unpacklo_pd(q[4], q[5]), t5 = _mm512_unpackhi_pd(q[4], q[5]);
  const __m512d t6 = _mm512_unpacklo_pd(q[6], q[7]), t7 = _mm512_unpackhi_pd(q[6], q[7]);
  const __m512d u0 = _mm512_shuffle_f64x2(t0, t2, 0x88), u1 = _mm512_shuffle_f64x2(t0, t2, 0xDD);
  const __m512d u2 = _mm512_shuffle_f64x2(t1, t3, 0x88), u3 = _mm512_shuffle_f64x2(t1, t3, 0xDD);
  const __m512d u4 = _mm512_shuffle_f64x2(t4, t6, 0x88), u5 = _mm512_shuffle_f64x2(t4, t6, 0xDD);
  const __m512d u6 = _mm512_shuffle_f64x2(t5, t7, 0x88), u7 = _mm512_shuffle_f64x2(t5, t7, 0xDD);
  s = _mm512_add_pd(s, _mm512_shuffle_f64x2(u0, u4, 0x88));  // column 0: q[r][0] for r = 0..7
  s = _mm512_add_pd(s, _mm512_shuffle_f64x2(u2, u6, 0x88));
  s = _mm512_add_pd(s, _mm512_shuffle_f64x2(u1, u5, 0x88));
  s = _mm512_add_pd(s, _mm512_shuffle_f64x2(u3, u7, 0x88));
  s = _mm512_add_pd(s, _mm512_shuffle_f64x2(u0, u4, 0xDD));
  s = _mm512_add_pd(s, _mm512_shuffle_f64x2(u2, u6, 0xDD));
  s = _mm512_add_pd(s, _mm512_shuffle_f64x2(u1, u5, 0xDD));
  return _mm512_add_pd(s, _mm512_shuffle_f64x2(u3, u7, 0xDD));  // column 7
}

// For eight rows f[r] (d floats each): v = f - mean (mean null: f) in double, written to out[r] as
// float when out is given, and the sums of v * v over j ascending, one per lane. A row's adds run
// in its own order; the zero-padded tail adds +0.0 to a sum that is >= +0 or NaN: no change.
__attribute__((target("avx512f,avx2,fma"))) inline __m512d sumsq_rows8(const float* const f[8], const float* mean,
                                                                        float* const out[8], int d) {
  __m512d s = _mm512_setzero_pd();
  __m512d q[8];
  for (int j = 0; j < d; j += 8) {
    const __mmask8 mk = d - j >= 8 ? 0xFF : static_cast<__mmask8>((1u << (d - j)) - 1);
    __m512d mj = _mm512_setzero_pd();
    if (mean)
      mj = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(static_cast<__mmask16>(mk), mean + j)));
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
      __m512d v = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(static_cast<__mmask16>(mk), f[r] + j)));
      if (mean) v = _mm512_sub_pd(v, mj);
      if (out[r]) store8(out[r] + j, mk, _mm512_cvtpd_ps(v));
      q[r] = _mm512_mul_pd(v, v);
    }
    s = add_columns8(s, q);
  }
  return s;
}

__attribute__((target("avx512f,avx2,fma"))) void sumsq_rows(const float* x, const float* mean, float* out, int n,
                                                             int d, double* sums) {
  int i0 = 0;
  for (; i0 + 8 <= n; i0 += 8) {
    const float* f[8];
    float* o[8];
    for (int r = 0; r < 8; ++r) {
      f[r] = x + static_cast<size_t>(i0 + r) * d;
      o[r] = out ? out + static_cast<size_t>(i0 + r) * d : nullptr;
    }
    _mm512_storeu_pd(sums + i0, sumsq_rows8(f, mean, o, d));
  }
  for (; i0 < n; ++i0) {  // the last rows one at a time: the same operations in the same order
    const float* f = x + static_cast<size_t>(i0) * d;
    float* o = out ? out + static_cast<size_t>(i0) * d : nullptr;
    double s = 0;
    for (int j = 0; j < d; ++j) {
      const double v = mean ? static_cast<double>(f[j]) - static_cast<double>(mean[j]) : static_cast<double>(f[j]);
      if (o) o[j] = static_cast<float>(v);
      const double p = v * v;
      s = s + p;
    }
    sums[i0] = s;
  }
}

// mean[j] = float(mean[j] + f[i, j] / divisor), rows in order, 16 features a step (each feature's
// chain as the scalar loop's: the same division, add and rounding).
__attribute__((target("avx512f,avx2,fma"))) void mean_rows_wide(const float* f, int n, int d, double divisor,
                                                                 float* mean) {
  const __m512d dv = _mm512_set1_pd(divisor);
  for (int i = 0; i < n; ++i) {
    const float* row = f + static_cast<size_t>(i) * d;
    for (int j = 0; j < d; j += 8) {
      const __mmask16 mk = static_cast<__mmask16>(d - j >= 8 ? 0xFF : (1u << (d - j)) - 1);
      const __m512d x = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(mk, row + j)));
      const __m512d m = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(mk, mean + j)));
      store8(mean + j, static_cast<__mmask8>(mk), _mm512_cvtpd_ps(_mm512_add_pd(m, _mm512_div_pd(x, dv))));
    }
  }
}

// row[j] = float(row[j] * inv) in double.
__attribute__((target("avx512f,avx2,fma"))) void scale_row_wide(float* row, int d, double inv) {
  const __m512d v = _mm512_set1_pd(inv);
  for (int j = 0; j < d; j += 8) {
    const __mmask16 mk = static_cast<__mmask16>(d - j >= 8 ? 0xFF : (1u << (d - j)) - 1);
    const __m512d x = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(mk, row + j)));
    store8(row + j, static_cast<__mmask8>(mk), _mm512_cvtpd_ps(_mm512_mul_pd(x, v)));
  }
}

}  // namespace

void head_mean_rows(const float* f, int n, int d, double divisor, float* mean) {
  if (head_packed_available()) {
    mean_rows_wide(f, n, d, divisor, mean);
    return;
  }
  for (int i = 0; i < n; ++i) {
    const float* row = f + static_cast<size_t>(i) * d;
    for (int j = 0; j < d; ++j) mean[j] = static_cast<float>(static_cast<double>(mean[j]) + row[j] / divisor);
  }
}

void head_transform_rows(const float* f, const float* mean, float* out, int n, int d) {
  // Each row's sum of squares is one chain over j ascending, as the TypeScript's; several rows
  // side by side hide the adds' latency (eight lanes of AVX-512 where it runs, else eight chains).
  constexpr int R = 8;
  const bool wide = head_packed_available();
  for (int i0 = 0; i0 < n; i0 += R) {
    const int r = n - i0 < R ? n - i0 : R;
    double s[R] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (wide) {
      sumsq_rows(f + static_cast<size_t>(i0) * d, mean, out + static_cast<size_t>(i0) * d, r, d, s);
    } else {
      for (int j = 0; j < d; ++j) {
        for (int k = 0; k < r; ++k) {
          const size_t o = static_cast<size_t>(i0 + k) * d + j;
          const double v = mean ? static_cast<double>(f[o]) - static_cast<double>(mean[j]) : static_cast<double>(f[o]);
          out[o] = static_cast<float>(v);
          const double sq = v * v;
          s[k] = s[k] + sq;
        }
      }
    }
    for (int k = 0; k < r; ++k) {
      const double norm = std::sqrt(s[k]);
      const double inv = 1 / (norm > 1e-12 ? norm : 1e-12);
      float* row = out + static_cast<size_t>(i0 + k) * d;
      if (wide) {
        scale_row_wide(row, d, inv);
        continue;
      }
      for (int j = 0; j < d; ++j) row[j] = static_cast<float>(static_cast<double>(row[j]) * inv);
    }
  }
}

void head_add_rows(const float* x, const int32_t* labels, float* out, int n, int d) {
  for (int i = 0; i < n; ++i) {
    const float* row = x + static_cast<size_t>(i) * d;
    float* dst = out + static_cast<size_t>(labels[i]) * d;
    for (int j = 0; j < d; ++j) dst[j] += row[j];
  }
}

void head_move_columns(const float* src, bool srcRowMajor, const int32_t* sIdx, int sLd, float* dst,
                       bool dstRowMajor, const int32_t* dIdx, int dLd, int count, int Cw) {
  // 16 classes at a time for every index: a row-major side's 16 values are one cache line, and a
  // class-major side's lines are revisited while still in L1.
  constexpr int T = 16;
  for (int c0 = 0; c0 < Cw; c0 += T) {
    const int c1 = c0 + T < Cw ? c0 + T : Cw;
    for (int i = 0; i < count; ++i) {
      const size_t sj = static_cast<size_t>(sIdx[i]), dj = static_cast<size_t>(dIdx[i]);
      for (int c = c0; c < c1; ++c) {
        const float v = srcRowMajor ? src[sj * sLd + c] : src[static_cast<size_t>(c) * sLd + sj];
        if (dstRowMajor)
          dst[dj * dLd + c] = v;
        else
          dst[static_cast<size_t>(c) * dLd + dj] = v;
      }
    }
  }
}

void head_logit_rows(const float* zt, int C, int m, float* out, const float* bias, const float* sq, const float* x,
                     int d) {
  // xx[i] = ||x_i||^2 in double, each a chain over j ascending (eight rows side by side).
  thread_local std::vector<double> xx;
  if (sq && head_packed_available()) {
    xx.resize(static_cast<size_t>(m));
    sumsq_rows(x, nullptr, nullptr, m, d, xx.data());
  } else if (sq) {
    xx.assign(static_cast<size_t>(m), 0.0);
    constexpr int R = 8;
    for (int i0 = 0; i0 < m; i0 += R) {
      const int r = m - i0 < R ? m - i0 : R;
      double s[R] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int j = 0; j < d; ++j)
        for (int k = 0; k < r; ++k) {
          const double v = x[static_cast<size_t>(i0 + k) * d + j];
          const double p = v * v;
          s[k] = s[k] + p;
        }
      for (int k = 0; k < r; ++k) xx[i0 + k] = s[k];
    }
  }
  // out [m, C] from zt [C, m] by 32 x 32 tiles, so neither side is read a cache line per value.
  constexpr int T = 32;
  alignas(32) float tile[T * T];  // NCM's distances of one tile, class-major [c][i]
  const __m256d two = _mm256_set1_pd(2.0), zero = _mm256_setzero_pd();
  const __m128 sign = _mm_set1_ps(-0.0f);
  for (int c0 = 0; c0 < C; c0 += T) {
    const int c1 = c0 + T < C ? c0 + T : C;
    for (int i0 = 0; i0 < m; i0 += T) {
      const int i1 = i0 + T < m ? i0 + T : m;
      if (sq) {
        // -sqrt(max(0, ||x||^2 - 2 x.c + ||c||^2)) in double (Math.max(0, NaN) is NaN), computed
        // along zt's rows four at a time (the same operations in the same order as one at a
        // time: IEEE sqrt is exact-rounded, no contraction), then written out row by row.
        for (int c = c0; c < c1; ++c) {
          const float* z = zt + static_cast<size_t>(c) * m;
          const double sc = static_cast<double>(sq[c]);
          const __m256d s4 = _mm256_set1_pd(sc);
          float* t = tile + (c - c0) * T - i0;
          int i = i0;
          for (; i + 4 <= i1; i += 4) {
            const __m256d z4 = _mm256_cvtps_pd(_mm_loadu_ps(z + i));
            __m256d v = _mm256_add_pd(_mm256_sub_pd(_mm256_loadu_pd(xx.data() + i), _mm256_mul_pd(two, z4)), s4);
            v = _mm256_blendv_pd(v, zero, _mm256_cmp_pd(v, zero, _CMP_LE_OQ));  // v <= 0 -> 0; NaN kept
            _mm_storeu_ps(t + i, _mm_xor_ps(_mm256_cvtpd_ps(_mm256_sqrt_pd(v)), sign));
          }
          for (; i < i1; ++i) {
            double v = (xx[i] - 2.0 * static_cast<double>(z[i])) + sc;
            if (v <= 0) v = 0;
            t[i] = static_cast<float>(-std::sqrt(v));
          }
        }
        for (int i = i0; i < i1; ++i) {
          float* o = out + static_cast<size_t>(i) * C;
          for (int c = c0; c < c1; ++c) o[c] = tile[(c - c0) * T + (i - i0)];
        }
        continue;
      }
      for (int i = i0; i < i1; ++i) {
        float* o = out + static_cast<size_t>(i) * C;
        if (bias) {
          for (int c = c0; c < c1; ++c) o[c] = zt[static_cast<size_t>(c) * m + i] + bias[c];
        } else {
          for (int c = c0; c < c1; ++c) o[c] = zt[static_cast<size_t>(c) * m + i];
        }
      }
    }
  }
}

// ---- Rows by panels: the evaluation's and NCM's product straight into [m, C] rows ----
// out [m, C] = X W^T with the epilogue (+ bias, or NCM's distance) applied to each 12 x 32 tile
// while it is in registers: no class-major [C, m] block in memory and no second pass to turn it
// into rows. W is packed once into panels of 32 classes, k-major (w[c, k] at panel(c / 32) +
// k * 32 + c % 32, zero-padded); a strip of 12 rows of X is read straight from its rows. Each
// product is one FMA chain over k ascending from 0 (continued through `out` across KC blocks), as
// gemm_tile's, so the values are head_matmul_nt's to the bit; the epilogues are head_logit_rows'
// operations in the same order, so the logits are its bits too.
constexpr int kPC = 32, kPKC = 512, kPNC = 256;

size_t head_panels_size(int C, int K) {
  return static_cast<size_t>((C + kPC - 1) / kPC) * kPC * static_cast<size_t>(K);
}

void head_pack_panels(const float* w, float* dst, int C, int K) {
  for (int p = 0; p * kPC < C; ++p, dst += static_cast<size_t>(K) * kPC)
    for (int j = 0; j < kPC; ++j) {
      const int c = p * kPC + j;
      if (c < C) {
        const float* src = w + static_cast<size_t>(c) * K;
        for (int k = 0; k < K; ++k) dst[k * kPC + j] = src[k];
      } else {
        for (int k = 0; k < K; ++k) dst[k * kPC + j] = 0;
      }
    }
}

namespace {

// z -> -sqrt(max(0, (x2 - 2 z) + sq)) for 16 floats, in double (NaN kept, as Math.max(0, NaN)).
__attribute__((target("avx512f,avx2,fma"))) inline __m512d distance8(__m256 z, __m256 sq, __m512d x2) {
  const __m512d zero = _mm512_setzero_pd();
  const __m512d zd = _mm512_cvtps_pd(z);
  __m512d v = _mm512_add_pd(_mm512_sub_pd(x2, _mm512_mul_pd(_mm512_set1_pd(2.0), zd)), _mm512_cvtps_pd(sq));
  v = _mm512_mask_mov_pd(v, _mm512_cmp_pd_mask(v, zero, _CMP_LE_OQ), zero);
  return _mm512_sqrt_pd(v);
}

__attribute__((target("avx512f,avx2,fma"))) inline __m512 distance16(__m512 z, const float* sq, __mmask16 mk,
                                                                      __m512d x2) {
  const __m512 s = _mm512_maskz_loadu_ps(mk, sq);
  const __m256 zlo = _mm512_castps512_ps256(z), slo = _mm512_castps512_ps256(s);
  const __m256 zhi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(z), 1));
  const __m256 shi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1));
  const __m256 lo = _mm512_cvtpd_ps(distance8(zlo, slo, x2)), hi = _mm512_cvtpd_ps(distance8(zhi, shi, x2));
  const __m512 r = _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
  return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(r), _mm512_set1_epi32(static_cast<int>(0x80000000u))));
}

// One 12 x 32 tile: rows a[i] (lda apart, rows past `rows` read the last row and are not
// stored) times panel bp (k-major, 32 wide) over kc steps; accumulate continues the chains
// from out; last applies the epilogue (bias, or the distance with xx the rows' ||x||^2).
__attribute__((target("avx512f,avx2,fma"))) void rows_tile(int kc, const float* a, int lda, const float* bp,
                                                            float* c, int ldc, int rows, int cols, bool accumulate,
                                                            bool last, const float* bias, const float* sq,
                                                            const double* xx) {
  const __mmask16 m0 = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols > 16 ? static_cast<__mmask16>((1u << (cols - 16)) - 1) : 0;
  __m512 acc[kGR][2];
  const float* ar[kGR];
#pragma GCC unroll 12
  for (int i = 0; i < kGR; ++i) {
    ar[i] = a + static_cast<size_t>(i < rows ? i : rows - 1) * lda;
    if (accumulate && i < rows) {
      acc[i][0] = _mm512_maskz_loadu_ps(m0, c + static_cast<size_t>(i) * ldc);
      acc[i][1] = _mm512_maskz_loadu_ps(m1, c + static_cast<size_t>(i) * ldc + 16);
    } else {
      acc[i][0] = _mm512_setzero_ps();
      acc[i][1] = _mm512_setzero_ps();
    }
  }
  for (int k = 0; k < kc; ++k, bp += kPC) {
    const __m512 b0 = _mm512_loadu_ps(bp);
    const __m512 b1 = _mm512_loadu_ps(bp + 16);
#pragma GCC unroll 12
    for (int i = 0; i < kGR; ++i) {
      const __m512 av = _mm512_set1_ps(ar[i][k]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
    }
  }
  if (last && (bias || sq)) {
    for (int i = 0; i < kGR && i < rows; ++i) {
      if (sq) {
        const __m512d x2 = _mm512_set1_pd(xx[i]);
        acc[i][0] = distance16(acc[i][0], sq, m0, x2);
        if (m1) acc[i][1] = distance16(acc[i][1], sq + 16, m1, x2);
      } else {
        acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, bias));
        acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, bias + 16));
      }
    }
  }
  if (cols == kPC) {  // unmasked stores where the tile is whole (see store8)
#pragma GCC unroll 12
    for (int i = 0; i < kGR; ++i) {
      if (i >= rows) break;
      _mm512_storeu_ps(c + static_cast<size_t>(i) * ldc, acc[i][0]);
      _mm512_storeu_ps(c + static_cast<size_t>(i) * ldc + 16, acc[i][1]);
    }
    return;
  }
#pragma GCC unroll 12
  for (int i = 0; i < kGR; ++i) {
    if (i >= rows) break;
    _mm512_mask_storeu_ps(c + static_cast<size_t>(i) * ldc, m0, acc[i][0]);
    _mm512_mask_storeu_ps(c + static_cast<size_t>(i) * ldc + 16, m1, acc[i][1]);
  }
}

}  // namespace

bool head_rows_available() { return head_packed_available(); }

void head_rows_product(const float* panels, const float* x, int m, int K, int C, float* out, const float* bias,
                       const float* sq) {
  thread_local std::vector<double> xx;
  if (sq) {
    xx.resize(static_cast<size_t>(m));
    sumsq_rows(x, nullptr, nullptr, m, K, xx.data());
  }
  // Per KC block: a block of kPNC classes' panels (kPKC x 256 floats: 512 KiB, in L2) against every
  // strip of 12 rows (read from memory once per class block; 24 KiB, in L1 across the panels).
  for (int p0 = 0; p0 < K; p0 += kPKC) {
    const int kc = K - p0 < kPKC ? K - p0 : kPKC;
    const bool last = p0 + kc >= K;
    for (int c0 = 0; c0 < C; c0 += kPNC) {
      const int c1 = c0 + kPNC < C ? c0 + kPNC : C;
      for (int i0 = 0; i0 < m; i0 += kGR) {
        const int h = m - i0 < kGR ? m - i0 : kGR;
        for (int col = c0; col < c1; col += kPC) {
          const int w = C - col < kPC ? C - col : kPC;
          rows_tile(kc, x + static_cast<size_t>(i0) * K + p0, K,
                    panels + static_cast<size_t>(col / kPC) * K * kPC + static_cast<size_t>(p0) * kPC,
                    out + static_cast<size_t>(i0) * C + col, C, h, w, p0 > 0, last, bias ? bias + col : nullptr,
                    sq ? sq + col : nullptr, sq ? xx.data() + i0 : nullptr);
        }
      }
    }
  }
}

// Row by row: eight lanes keep their own first maximum (strict >, as the scalar loop) and the
// lanes are reduced to the lowest index holding the largest value, which is the scalar loop's
// answer when the row has no NaN; a row with a NaN takes the scalar loop itself. fp-contract off:
// z * scale + shift must round twice, as tfjs's mul then add.
__attribute__((optimize("fp-contract=off"))) void head_argmax_columns(const float* z, int m, int C,
                                                                      const float* scale, const float* shift,
                                                                      int32_t* out) {
  for (int i = 0; i < m; ++i) {
    const float* r = z + static_cast<size_t>(i) * C;
    auto at = [&](int c) {
      float v = r[c];
      if (scale) v = v * scale[c];
      if (shift) v = v + shift[c];
      return v;
    };
    int best = 0;
    if (C >= 16) {
      __m256 bv = _mm256_set1_ps(-INFINITY);
      __m256i bi = _mm256_setzero_si256();
      __m256 nan = _mm256_setzero_ps();
      __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      const __m256i eight = _mm256_set1_epi32(8);
      bool first = true;
      int c = 0;
      for (; c + 8 <= C; c += 8) {
        __m256 v = _mm256_loadu_ps(r + c);
        if (scale) v = _mm256_mul_ps(v, _mm256_loadu_ps(scale + c));
        if (shift) v = _mm256_add_ps(v, _mm256_loadu_ps(shift + c));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        const __m256 gt = first ? _mm256_castsi256_ps(_mm256_set1_epi32(-1)) : _mm256_cmp_ps(v, bv, _CMP_GT_OQ);
        first = false;
        bv = _mm256_blendv_ps(bv, v, gt);
        bi = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(bi), _mm256_castsi256_ps(idx), gt));
        idx = _mm256_add_epi32(idx, eight);
      }
      if (_mm256_movemask_ps(nan) == 0) {
        alignas(32) float vals[8];
        alignas(32) int32_t ids[8];
        _mm256_store_ps(vals, bv);
        _mm256_store_si256(reinterpret_cast<__m256i*>(ids), bi);
        float bestV = vals[0];
        best = ids[0];
        for (int k = 1; k < 8; ++k)
          if (vals[k] > bestV || (vals[k] == bestV && ids[k] < best)) {
            bestV = vals[k];
            best = ids[k];
          }
        bool tailNan = false;
        for (; c < C; ++c) {
          const float v = at(c);
          if (v != v) tailNan = true;
          if (v > bestV) {
            bestV = v;
            best = c;
          }
        }
        if (!tailNan) {
          out[i] = best;
          continue;
        }
      }
    }
    // The scalar loop (short rows, rows with a NaN).
    float bestV = at(0);
    best = 0;
    for (int c = 1; c < C; ++c) {
      const float v = at(c);
      if (v > bestV) {
        bestV = v;
        best = c;
      }
    }
    out[i] = best;
  }
}

#else  // not x86-64: the caller never gets here (head_kernels_compiled() is false)

bool head_kernels_compiled() { return false; }
void head_transpose(const float*, float*, int, int) {}
void head_matmul(const float*, const float*, float*, int, int, int) {}
void head_forward(float*, const float*, const float*, const float*, float*, float*, float*, int, int) {}
void head_backward(float*, const float*, const int32_t*, const float*, const float*, float*, int, int) {}
void head_sgd(float*, const float*, float*, int64_t, float, float, float) {}
bool head_packed_available() { return false; }
size_t head_packed_a_size(int, int) { return 0; }
void head_pack_a(const float*, float*, int, int) {}
void head_matmul_nt(const float*, bool, const float*, float*, int, int, int) {}
void head_matmul_nt_rows(const float*, bool, const float*, const int32_t*, float*, int, int, int) {}
void head_mean_rows(const float*, int, int, double, float*) {}
void head_transform_rows(const float*, const float*, float*, int, int) {}
void head_add_rows(const float*, const int32_t*, float*, int, int) {}
void head_logit_rows(const float*, int, int, float*, const float*, const float*, const float*, int) {}
void head_argmax_columns(const float*, int, int, const float*, const float*, int32_t*) {}
size_t head_panels_size(int, int) { return 0; }
void head_pack_panels(const float*, float*, int, int) {}
bool head_rows_available() { return false; }
void head_rows_product(const float*, const float*, int, int, int, float*, const float*, const float*) {}
void head_move_columns(const float*, bool, const int32_t*, int, float*, bool, const int32_t*, int, int, int) {}

#endif

}  // namespace longtail

#if defined(LONGTAIL_X86) && defined(__clang__)
#pragma clang attribute pop
#endif
