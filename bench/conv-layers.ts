/**
 * The convolution kernels alone: every convolution of one model's forward pass (recorded from
 * a real forward pass, so the shapes, strides and padding are the model's), run as the forward
 * kernel, the input gradient or the filter gradient, on whichever kernels the wasm backend has
 * (native or wasm). Reported as GFLOP/s over the whole set (2 * multiply-adds / seconds).
 */
import {
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  engine,
  getKernel,
  type KernelConfig,
  registerKernel,
  type Tensor,
  tensor,
  tidy,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import { createModel } from '../src/models/model.ts';
import { createRng } from '../src/random/rng.ts';

export type ConvPass = 'forward' | 'input' | 'filter';

interface Layer {
  x: number[];
  filter: number[];
  attrs: Record<string, unknown>;
  y: number[];
}

/** The Conv2D calls of one training-mode forward pass of `model` on a batch of `batch`. */
export function recordConvLayers(model: string, shape: [number, number, number], batch: number): Layer[] {
  const original = getKernel(Conv2D, 'wasm') as KernelConfig;
  const layers: Layer[] = [];
  unregisterKernel(Conv2D, 'wasm');
  registerKernel({
    ...original,
    kernelFunc: (args) => {
      const out = original.kernelFunc(args);
      const { x, filter } = args.inputs as { x: Tensor; filter: Tensor };
      const y = Array.isArray(out) ? out[0]! : out;
      layers.push({ x: [...x.shape], filter: [...filter.shape], attrs: { ...args.attrs }, y: [...y.shape] });
      return out;
    },
  });
  try {
    const m = createModel(model, shape, 10, 0);
    tidy(() =>
      m.backbone.features(
        tensor(new Float32Array(batch * shape[0] * shape[1] * shape[2]), [batch, ...shape]),
        true,
      ),
    );
  } finally {
    unregisterKernel(Conv2D, 'wasm');
    registerKernel(original);
  }
  return layers;
}

/**
 * Runs `pass` over all layers `repeats` times after a warm-up; returns GFLOP/s per repeat, per
 * wall second or (`clock: 'cpu'`) per CPU second of this process, which other processes on a
 * shared machine disturb less.
 */
export function timeConvPass(
  layers: Layer[],
  pass: ConvPass,
  repeats: number,
  clock: 'wall' | 'cpu' = 'wall',
): number[] {
  const now = () => {
    if (clock === 'wall') return performance.now();
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  };
  const rng = createRng(1);
  const random = (shape: number[]) =>
    tensor(
      Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.normal()),
      shape,
    );
  const inputs = layers.map((l) => ({ x: random(l.x), filter: random(l.filter), dy: random(l.y) }));
  // multiply-adds per layer: output elements x kh x kw x ci
  const flop = layers.reduce(
    (s, l) => s + 2 * l.y.reduce((p, d) => p * d, 1) * l.filter[0]! * l.filter[1]! * l.filter[2]!,
    0,
  );
  const once = () => {
    layers.forEach((l, i) => {
      const t = inputs[i]!;
      const out =
        pass === 'forward'
          ? engine().runKernel(Conv2D, { x: t.x, filter: t.filter }, l.attrs as never)
          : pass === 'input'
            ? engine().runKernel(Conv2DBackpropInput, { dy: t.dy, filter: t.filter }, {
                ...l.attrs,
                inputShape: l.x,
              } as never)
            : engine().runKernel(Conv2DBackpropFilter, { x: t.x, dy: t.dy }, {
                ...l.attrs,
                filterShape: l.filter,
              } as never);
      (out as Tensor).dispose();
    });
  };
  once();
  const runs: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = now();
    once();
    runs.push(flop / ((now() - t0) / 1000) / 1e9);
  }
  for (const t of inputs) for (const v of Object.values(t)) v.dispose();
  return runs;
}
