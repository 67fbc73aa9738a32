// The fp32 convolution kernels alone, per layer and pass, with no tfjs or Node in the way:
// GFLOP/s per CPU second of this thread (CLOCK_THREAD_CPUTIME_ID: far steadier than wall time
// on a shared machine). With -DOLD_DIR (a directory holding an older conv.cc, conv512.cc,
// conv.h, gather.h and kernel_target.h) the old kernels are compiled into namespace
// `longtail_old` and the two alternate in the same process, layer by layer, and each layer's
// outputs are compared (bit-identical or the largest relative difference).
//
//   g++ -O3 -std=c++17 -Inative/src bench/conv-kernels.cc native/src/conv.cc native/src/conv512.cc
//       native/src/conv_grad512.cc -o /tmp/conv-kernels && /tmp/conv-kernels [resnet8|resnet20|resnet32|all] [32|28]
//       [channels] [batch] [rounds] [layer] [pass]
// `all`: every distinct layer of ResNet-8/20/32 on 1x28x28 and 3x32x32 (the depths share their
// shapes; only the counts differ). "% peak" is against 225 GFLOP/s, one core's measured fp32
// peak (bench/fma-peak.c); issue 29 asks 75 % (169) of every shape and pass.
//   mkdir -p /tmp/old && for f in conv.cc conv512.cc conv_grad512.cc conv.h conv_grad.h gather.h kernel_target.h; do
//     git show main:native/src/$f > /tmp/old/$f; done
//   g++ ... -DOLD_DIR=/tmp/old (as above)
// `/tmp/conv-kernels program [depth] [side] [channels] [batch] [rounds]`: the whole evaluation
// program (extraction's backbone call), images per CPU second, old and new alternating.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "conv.h"

#ifdef OLD_DIR
#define LT_STR2(x) #x
#define LT_STR(x) LT_STR2(x)
#define longtail longtail_old
#include LT_STR(OLD_DIR/conv.cc)
#include LT_STR(OLD_DIR/conv512.cc)
#if __has_include(LT_STR(OLD_DIR/conv_grad512.cc))  // the gradients' own kernels, where the old code has them
#include LT_STR(OLD_DIR/conv_grad512.cc)
#endif
#undef longtail
#endif

namespace {

double cpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

constexpr double kPeak = 225.0;  // GFLOP/s, one core, 512-bit FMA (bench/fma-peak.c)

struct Layer {
  std::string name;
  longtail::ConvShape s;
  int count;  // how many such convolutions one forward pass has
};

longtail::ConvShape shape(int b, int H, int ci, int co, int k, int stride, int pad) {
  const int o = (H + 2 * pad - k) / stride + 1;
  return {b, H, H, ci, k, k, co, stride, stride, pad, pad, o, o};
}

// The CIFAR ResNets of depth 6n + 2 (src/models/resnet.ts): stem, three stages of n blocks,
// a 1x1 stride-2 projection where the shape changes.
std::vector<Layer> resnet(int depth, int side, int channels, int b) {
  const int n = (depth - 2) / 6;
  std::vector<Layer> out;
  out.push_back({"stem " + std::to_string(channels) + "->16", shape(b, side, channels, 16, 3, 1, 1), 1});
  out.push_back({"16->16", shape(b, side, 16, 16, 3, 1, 1), 2 * n});
  out.push_back({"16->32 s2", shape(b, side, 16, 32, 3, 2, 1), 1});
  out.push_back({"16->32 1x1 s2", shape(b, side, 16, 32, 1, 2, 0), 1});
  const int h2 = out.back().s.oh;
  out.push_back({"32->32", shape(b, h2, 32, 32, 3, 1, 1), 2 * n - 1});
  out.push_back({"32->64 s2", shape(b, h2, 32, 64, 3, 2, 1), 1});
  out.push_back({"32->64 1x1 s2", shape(b, h2, 32, 64, 1, 2, 0), 1});
  const int h3 = out.back().s.oh;
  out.push_back({"64->64", shape(b, h3, 64, 64, 3, 1, 1), 2 * n - 1});
  return out;
}

template <typename Shape, typename Fwd, typename In, typename Flt>
void run(int pass, Fwd fwd, In in, Flt flt, const std::vector<float>& x, const std::vector<float>& w,
         const std::vector<float>& dy, std::vector<float>& out, const longtail::ConvShape& shape) {
  Shape s;
  static_assert(sizeof(Shape) == sizeof(longtail::ConvShape), "the same fields");
  std::memcpy(&s, &shape, sizeof s);
  if (pass == 0) fwd(x.data(), w.data(), out.data(), s);
  else if (pass == 1) in(dy.data(), w.data(), out.data(), s);
  else flt(x.data(), dy.data(), out.data(), s);
}

// Calls until at least `budget` CPU seconds passed; GFLOP/s.
template <typename F>
double timeIt(F f, double flop, double budget) {
  f();
  int calls = 0;
  const double t0 = cpuSeconds();
  double t = t0;
  do {
    f();
    ++calls;
    t = cpuSeconds();
  } while (t - t0 < budget);
  return flop * calls / (t - t0) / 1e9;
}

// `program DEPTH SIDE CHANNELS BATCH ROUNDS`: the whole evaluation-mode backbone of a CIFAR
// ResNet as one conv_bn_program call (what extraction runs per batch; steps as resnet.ts's
// chainSteps), random filters and batch-norm statistics; images per CPU second, old and new
// alternating with -DOLD_DIR and their features compared bit for bit.
int programMain(int depth, int side, int channels, int b, int rounds) {
  longtail::set_avx512(__builtin_cpu_supports("avx512f"));
#ifdef OLD_DIR
  longtail_old::set_avx512(__builtin_cpu_supports("avx512f"));
#endif
  const int n = (depth - 2) / 6;
  std::mt19937 gen(7);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> uni(0.2f, 2.2f);
  std::vector<std::vector<float>> store;
  auto fill = [&](size_t count, bool positive) {
    store.emplace_back(count);
    for (float& f : store.back()) f = positive ? uni(gen) : normal(gen) * 0.3f;
    return store.back().data();
  };
  struct Spec {
    longtail::ConvShape s;
    int in, res;
    bool relu;
  };
  std::vector<Spec> specs;
  auto add = [&](int H, int ci, int co, int k, int stride, int in, int res, bool relu) {
    specs.push_back({shape(b, H, ci, co, k, stride, k == 3 ? 1 : 0), in, res, relu});
    return static_cast<int>(specs.size());  // the buffer it writes
  };
  int cur = add(side, channels, 16, 3, 1, 0, -1, true);
  int H = side, c = 16;
  for (int stage = 0; stage < 3; ++stage) {
    for (int i = 0; i < n; ++i) {
      const int stride = stage > 0 && i == 0 ? 2 : 1;
      const int co = 16 << stage;
      const int oh = (H + 2 - 3) / stride + 1;
      const int h = add(H, c, co, 3, stride, cur, -1, true);
      const int sc = stride != 1 || c != co ? add(H, c, co, 1, stride, cur, -1, false) : cur;
      cur = add(oh, co, co, 3, 1, h, sc, true);
      H = oh;
      c = co;
    }
  }
  std::vector<longtail::ConvBnStep> steps;
  double flop = 0;
  for (const Spec& sp : specs) {
    const auto& s = sp.s;
    const size_t K = static_cast<size_t>(s.kh) * s.kw * s.ci;
    steps.push_back({s, fill(K * s.co, false), fill(s.co, true), fill(s.co, false), fill(s.co, false), fill(s.co, true),
                     sp.in, sp.res, sp.relu});
    flop += 2.0 * s.oh * s.ow * s.co * K;
  }
  const auto& l = specs.back().s;
  std::vector<float> x(static_cast<size_t>(b) * side * side * channels);
  for (float& f : x) f = normal(gen);
  std::vector<float> yNew(static_cast<size_t>(b) * l.oh * l.ow * l.co);
  auto fNew = [&] { longtail::conv_bn_program(x.data(), b, steps.data(), static_cast<int>(steps.size()), yNew.data(), 1e-3f); };
  std::printf("resnet%d %dx%dx%d evaluation program, batch %d, %.1f MFLOP an image; images per CPU second (median of %d)\n",
              depth, channels, side, side, b, flop / 1e6, rounds);
  std::vector<double> gNew, gOld;
#ifdef OLD_DIR
  std::vector<longtail_old::ConvBnStep> oldSteps(steps.size());
  static_assert(sizeof(longtail_old::ConvBnStep) == sizeof(longtail::ConvBnStep), "the same fields");
  std::memcpy(static_cast<void*>(oldSteps.data()), steps.data(), steps.size() * sizeof steps[0]);
  std::vector<float> yOld(yNew.size());
  auto fOld = [&] { longtail_old::conv_bn_program(x.data(), b, oldSteps.data(), static_cast<int>(oldSteps.size()), yOld.data(), 1e-3f); };
#endif
  for (int r = 0; r < rounds; ++r) {
#ifdef OLD_DIR
    gOld.push_back(timeIt(fOld, b, 0.5));
#endif
    gNew.push_back(timeIt(fNew, b, 0.5));
  }
  auto med = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  // timeIt's "flop" is images here: its result is images / 1e9 per second.
  std::printf("  new %8.0f images/s  %6.1f GFLOP/s %4.0f %%", med(gNew) * 1e9, med(gNew) * flop,
              100.0 * med(gNew) * flop / kPeak);
#ifdef OLD_DIR
  std::printf("   old %8.0f images/s  new / old %.3fx (rounds:", med(gOld) * 1e9, med(gNew) / med(gOld));
  for (int r = 0; r < rounds; ++r) std::printf(" %.3f", gNew[r] / gOld[r]);
  std::printf(")  %s", std::memcmp(yNew.data(), yOld.data(), yNew.size() * sizeof(float)) == 0 ? "bit-identical" : "DIFFERENT");
#endif
  std::printf("\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string model = argc > 1 ? argv[1] : "resnet20";
  if (model == "program")
    return programMain(argc > 2 ? std::atoi(argv[2]) : 20, argc > 3 ? std::atoi(argv[3]) : 28,
                       argc > 4 ? std::atoi(argv[4]) : 1, argc > 5 ? std::atoi(argv[5]) : 64,
                       argc > 6 ? std::atoi(argv[6]) : 7);
  const int side = argc > 2 ? std::atoi(argv[2]) : 32;
  const int channels = argc > 3 ? std::atoi(argv[3]) : 3;
  const int b = argc > 4 ? std::atoi(argv[4]) : 128;
  const int rounds = argc > 5 ? std::atoi(argv[5]) : 3;
  const double budget = 0.15;
  const std::string only = argc > 6 ? argv[6] : "";  // a layer name to run alone (profiling)
  const int onlyPass = argc > 7 ? std::atoi(argv[7]) : -1;
  const int depth = model == "all" ? 32 : std::atoi(model.c_str() + 6);
  longtail::set_avx512(__builtin_cpu_supports("avx512f"));
#ifdef OLD_DIR
  longtail_old::set_avx512(__builtin_cpu_supports("avx512f"));
#endif
  std::vector<Layer> layers = resnet(depth, side, channels, b);
  if (model == "all") {  // 1x28x28, then 3x32x32 (counts: ResNet-32's)
    layers = resnet(32, 28, 1, b);
    for (Layer& l : layers) l.name = "28 " + l.name;
    for (Layer l : resnet(32, 32, 3, b)) {
      l.name = "32 " + l.name;
      layers.push_back(l);
    }
  }
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  double total[2][3] = {}, flopAll[3] = {};
  const char* passes[3] = {"forward", "input", "filter"};
  const std::string what = model == "all" ? std::string("ResNet-8/20/32 layers at 1x28x28 and 3x32x32 (counts: ResNet-32)")
                                          : model + " " + std::to_string(channels) + "x" + std::to_string(side) + "x" +
                                                std::to_string(side);
  std::printf("%s, batch %d, GFLOP/s per CPU second (median of %d), %% of %.0f%s\n", what.c_str(), b, rounds, kPeak,
#ifdef OLD_DIR
              "; old / new, alternating"
#else
              ""
#endif
  );
  for (const Layer& l : layers) {
    if (!only.empty() && l.name != only) continue;
    const auto& s = l.s;
    std::vector<float> x(static_cast<size_t>(s.b) * s.H * s.W * s.ci), w(static_cast<size_t>(s.kh) * s.kw * s.ci * s.co),
        dy(static_cast<size_t>(s.b) * s.oh * s.ow * s.co);
    for (auto* v : {&x, &w, &dy})
      for (float& f : *v) f = normal(gen);
    const double flop = 2.0 * s.b * s.oh * s.ow * s.co * s.kh * s.kw * s.ci;
    for (int pass = 0; pass < 3; ++pass) {
      if (onlyPass >= 0 && pass != onlyPass) continue;
      const size_t outSize = pass == 0 ? dy.size() : pass == 1 ? x.size() : w.size();
      std::vector<float> outNew(outSize);
      auto fNew = [&] {
        run<longtail::ConvShape>(pass, longtail::conv2d_forward, longtail::conv2d_backprop_input, longtail::conv2d_backprop_filter, x, w, dy,
            outNew, s);
      };
      std::vector<double> gNew, gOld;
#ifdef OLD_DIR
      std::vector<float> outOld(outSize);
      auto fOld = [&] {
        run<longtail_old::ConvShape>(pass, longtail_old::conv2d_forward, longtail_old::conv2d_backprop_input,
            longtail_old::conv2d_backprop_filter, x, w, dy, outOld, s);
      };
#endif
      if (rounds == 0) {  // check only: one call each
        fNew();
#ifdef OLD_DIR
        fOld();
#endif
      }
      for (int r = 0; r < rounds; ++r) {
#ifdef OLD_DIR
        gOld.push_back(timeIt(fOld, flop, budget));
#endif
        gNew.push_back(timeIt(fNew, flop, budget));
      }
      auto med = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.empty() ? 0.0 : v[v.size() / 2];
      };
      std::printf("  %-19s %-8s x%-2d %7.1f %4.0f %%", l.name.c_str(), passes[pass], l.count, med(gNew),
                  100.0 * med(gNew) / kPeak);
      total[1][pass] += l.count * flop / med(gNew);
      flopAll[pass] += l.count * flop;
#ifdef OLD_DIR
      total[0][pass] += l.count * flop / med(gOld);
      double worst = 0;
      for (size_t i = 0; i < outSize; ++i)
        worst = std::max(worst, std::abs(double(outNew[i]) - outOld[i]) / (std::abs(double(outOld[i])) + 1e-6));
      const bool same = std::memcmp(outNew.data(), outOld.data(), outSize * sizeof(float)) == 0;
      std::printf("  old %7.1f  %.2fx  %s", med(gOld), med(gNew) / med(gOld),
                  same ? "bit-identical" : ("max rel diff " + std::to_string(worst)).c_str());
#endif
      std::printf("\n");
    }
  }
  for (int pass = 0; pass < 3; ++pass) {
    if (flopAll[pass] == 0) continue;
    std::printf("all layers %-8s %7.1f %4.0f %%", passes[pass], flopAll[pass] / total[1][pass],
                100.0 * flopAll[pass] / total[1][pass] / kPeak);
#ifdef OLD_DIR
    std::printf("  old %7.1f", flopAll[pass] / total[0][pass]);
#endif
    std::printf("\n");
  }
  return 0;
}
