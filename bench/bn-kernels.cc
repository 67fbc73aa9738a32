// The training batch-norm kernels alone (native/src/bn.cc), at the CIFAR ResNets' activation
// sizes: CPU ms per call (CLOCK_THREAD_CPUTIME_ID) and the bytes a call must stream (read x,
// y, dy, res; write y, dx, dres) per CPU second. A batch norm + ReLU without a residual takes
// its backward mask from x (y is not read). With -DOLD_DIR (a directory holding an older
// bn.cc, bn.h and kernel_target.h) the old kernels are compiled into namespace `longtail_old`,
// the two alternate call by call, and every output is compared bit for bit.
//
//   g++ -O3 -std=c++17 -Inative/src bench/bn-kernels.cc native/src/bn.cc -o /tmp/bn-kernels
//   mkdir -p /tmp/old && for f in bn.cc bn.h kernel_target.h; do git show main:native/src/$f > /tmp/old/$f; done
//   g++ ... -DOLD_DIR=/tmp/old (as above) && /tmp/bn-kernels [batch] [side]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "bn.h"

#ifdef OLD_DIR
#define LT_STR2(x) #x
#define LT_STR(x) LT_STR2(x)
#define longtail longtail_old
#include LT_STR(OLD_DIR/bn.cc)
#undef longtail
#endif

namespace {

double cpuMs() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

std::vector<float> randomVec(size_t n, std::mt19937& g, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

size_t differ(const std::vector<float>& a, const std::vector<float>& b) {
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], 4) != 0) ++n;
  return n;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int batch = argc > 1 ? std::atoi(argv[1]) : 128;
  const int side = argc > 2 ? std::atoi(argv[2]) : 28;
  std::mt19937 gen(1);
  struct Layer {
    int hw, C;
  };
  // 5 and 128 channels: the plain loops (the AVX2 passes take 8, 16, ..., 64).
  const Layer layers[] = {{side, 16}, {(side + 1) / 2, 32}, {(side + 3) / 4, 64}, {side, 5}, {(side + 7) / 8, 128}};
  const int reps = 15;
  std::printf("batch %d, CPU ms per call (median of %d), GB/s = bytes that must move / CPU s\n", batch, reps);
  for (const Layer& L : layers) {
    const long M = static_cast<long>(batch) * L.hw * L.hw;
    const int C = L.C;
    const size_t n = static_cast<size_t>(M) * C;
    auto x = randomVec(n, gen, -2.0f, 3.0f);
    auto res = randomVec(n, gen, -1.0f, 1.0f);
    auto dy = randomVec(n, gen, -1.0f, 1.0f);
    auto gamma = randomVec(C, gen, 0.5f, 1.5f);
    auto beta = randomVec(C, gen, -0.5f, 0.5f);
    for (int variant = 0; variant < 3; ++variant) {
      // 0: bn + ReLU (a block's first), 1: bn (+ res) + ReLU (a block's tail), 2: bn alone (a shortcut).
      const bool relu = variant != 2;
      const float* r = variant == 1 ? res.data() : nullptr;
      std::vector<float> y(n), mean(C), var(C), invstd(C), dx(n), dg(C), db(C), dres(variant == 1 ? n : 0);
      std::vector<float> scale(C), shift(C), rm(C, 0.0f), rv(C, 1.0f), rm1(C), rv1(C);
      longtail::BnTrainExtras extras{invstd.data(), scale.data(), shift.data(), rm.data(), rv.data(),
                                     rm1.data(),    rv1.data(),   0.1,          M / (M - 1.0)};
      std::vector<double> tf, tb;
      for (int i = 0; i < reps; ++i) {
        double t0 = cpuMs();
        longtail::bn_forward(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), var.data(), M, C, 1e-5f,
                             relu, r, &extras);
        tf.push_back(cpuMs() - t0);
        t0 = cpuMs();
        // bn + ReLU: the mask from x (y is not read).
        if (variant == 0)
          longtail::bn_backward(dy.data(), x.data(), x.data(), mean.data(), invstd.data(), gamma.data(), dx.data(),
                                dg.data(), db.data(), M, C, relu, nullptr, scale.data(), shift.data());
        else
          longtail::bn_backward(dy.data(), x.data(), y.data(), mean.data(), invstd.data(), gamma.data(), dx.data(),
                                dg.data(), db.data(), M, C, relu, variant == 1 ? dres.data() : nullptr);
        tb.push_back(cpuMs() - t0);
      }
      // Must move: forward reads x (twice: statistics, then normalisation) and res, writes y;
      // backward reads dy, x, y (twice) and writes dx (and dres).
      const double mb = n * 4.0 / 1e6;
      const double fwdBytes = mb * (3 + (r ? 1 : 0));
      const double bwdBytes = mb * ((variant == 1 ? 6 : 4) + 1 + (variant == 1 ? 1 : 0));
      const double f = median(tf), b = median(tb);
      std::printf("%2dx%-2d C=%-2d %-9s fwd %6.2f ms %5.1f GB/s  bwd %6.2f ms %5.1f GB/s", L.hw, L.hw, C,
                  variant == 0 ? "relu" : variant == 1 ? "res+relu" : "plain", f, fwdBytes / f, b, bwdBytes / b);
#ifdef OLD_DIR
      std::vector<float> y0(n), mean0(C), var0(C), dx0(n), dg0(C), db0(C), dres0(dres.size()), inv0(C);
      std::vector<double> of, ob;
      for (int i = 0; i < reps; ++i) {
        double t0 = cpuMs();
        longtail_old::bn_forward(x.data(), gamma.data(), beta.data(), y0.data(), mean0.data(), var0.data(), M, C,
                                 1e-5f, relu, r);
        of.push_back(cpuMs() - t0);
        // invstd as the TypeScript side computed it for the old kernel (tf.rsqrt(var + eps)).
        for (int c = 0; c < C; ++c) inv0[c] = 1.0f / std::sqrt(var0[c] + 1e-5f);
        t0 = cpuMs();
        longtail_old::bn_backward(dy.data(), x.data(), y0.data(), mean0.data(), inv0.data(), gamma.data(),
                                  dx0.data(), dg0.data(), db0.data(), M, C, relu,
                                  variant == 1 ? dres0.data() : nullptr);
        ob.push_back(cpuMs() - t0);
      }
      const size_t bad = differ(y, y0) + differ(mean, mean0) + differ(var, var0) + differ(dx, dx0) +
                         differ(dg, dg0) + differ(db, db0) + differ(dres, dres0) + differ(invstd, inv0);
      std::printf("  | old fwd %6.2f bwd %6.2f  (x%.2f, x%.2f)  %s", median(of), median(ob), median(of) / f,
                  median(ob) / b, bad == 0 ? "bit-identical" : (std::to_string(bad) + " values differ").c_str());
#endif
      std::printf("\n");
    }
  }
  return 0;
}
