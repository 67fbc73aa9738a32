// Included last by the kernel files (conv.cc, bn.cc): everything after it is compiled for
// AVX2 + FMA on x86-64. Nothing compiled so may run before addon.cc (compiled without them)
// checked the CPU. Clang needs `#pragma clang attribute pop` at the end of the file.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#define LONGTAIL_X86 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma")
#endif
#include <immintrin.h>
#endif
