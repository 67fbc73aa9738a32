/**
 * ResNets with a features() contract: [batch, H, W, C] images -> [batch, d] features, the
 * classifier kept apart (linear.ts) so that stage 2 can freeze one and swap the other.
 *
 * - CIFAR-style ResNet-(6n+2) (He et al. 2016, section 4.2): 3x3 conv to 16 channels, three
 *   stages of n basic blocks with widths 16/32/64 (stride 2 at the start of stages 2 and 3),
 *   1x1 projection shortcut (with batch norm) where the shape changes, global average pooling.
 * - ResNet-10 (ImageNet-style, as the official decoupling code's ResNet-10): 7x7/2 conv to 64,
 *   3x3/2 max pool, four stages of one basic block with widths 64/128/256/512.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../random/rng.ts';
import type { Backbone } from './backbone.ts';
import type { DescribeGraph, GraphSink } from './graph-sink.ts';
import {
  type BatchNorm,
  type ChainStep,
  type Conv,
  convBn,
  convBnChain,
  globalAvgPool,
  makeBatchNorm,
  makeConv,
} from './layers.ts';
import { ParamSet } from './params.ts';

/** A ResNet: a trainable backbone that can also describe itself as a graph (for export). */
export interface ResNet extends Backbone {
  /** Emits the evaluation-mode network into a graph; returns the features node. */
  exportGraph: DescribeGraph;
}

interface Block {
  conv1: Conv;
  bn1: BatchNorm;
  conv2: Conv;
  bn2: BatchNorm;
  shortcut: { conv: Conv; bn: BatchNorm } | null;
}

function makeBlock(ps: ParamSet, name: string, cin: number, cout: number, stride: number, rng: Rng): Block {
  return {
    conv1: makeConv(ps, `${name}.conv1`, 3, cin, cout, stride, rng, 1),
    bn1: makeBatchNorm(ps, `${name}.bn1`, cout),
    conv2: makeConv(ps, `${name}.conv2`, 3, cout, cout, 1, rng, 1),
    bn2: makeBatchNorm(ps, `${name}.bn2`, cout),
    shortcut:
      stride !== 1 || cin !== cout
        ? {
            conv: makeConv(ps, `${name}.shortcut.conv`, 1, cin, cout, stride, rng, 0),
            bn: makeBatchNorm(ps, `${name}.shortcut.bn`, cout),
          }
        : null,
  };
}

function exportBlock(g: GraphSink, b: Block, x: string): string {
  const h = g.convBn(x, b.conv1, b.bn1, true);
  const out = g.convBn(h, b.conv2, b.bn2, false);
  const sc = b.shortcut ? g.convBn(x, b.shortcut.conv, b.shortcut.bn, false) : x;
  return g.relu(g.addTensors(out, sc));
}

function block(b: Block, x: tf.Tensor4D, training: boolean): tf.Tensor4D {
  const h = convBn(b.conv1, b.bn1, x, training, true);
  const sc = b.shortcut ? convBn(b.shortcut.conv, b.shortcut.bn, x, training) : x;
  // relu(bn2(conv2(h)) + sc): one fused pass on the native kernels (one call in evaluation).
  return convBn(b.conv2, b.bn2, h, training, true, sc);
}

/**
 * The stem and the blocks as chain steps (convBnChain), in features()'s order: step i writes
 * buffer i + 1 (the steps' count after pushing it), buffer 0 is the image.
 */
function chainSteps(stem: Conv, stemBn: BatchNorm, blocks: readonly Block[]): ChainStep[] {
  const steps: ChainStep[] = [{ c: stem, bn: stemBn, input: 0, relu: true }];
  for (const b of blocks) {
    const x = steps.length;
    const h = steps.push({ c: b.conv1, bn: b.bn1, input: x, relu: true });
    const sc = b.shortcut ? steps.push({ c: b.shortcut.conv, bn: b.shortcut.bn, input: x, relu: false }) : x;
    steps.push({ c: b.conv2, bn: b.bn2, input: h, res: sc, relu: true });
  }
  return steps;
}

export interface ResNetOptions {
  /** Input [height, width, channels]. */
  inputShape: readonly [number, number, number];
  rng: Rng;
  /** CIFAR ResNets: channels of the first stage (the stages have w, 2w, 4w); 16 in the paper's. */
  width?: number;
}

/** CIFAR-style ResNet of depth 6n + 2 (8, 20, 32, ...). */
export function cifarResNet(depth: number, opts: ResNetOptions): ResNet {
  if ((depth - 2) % 6 !== 0 || depth < 8) throw new Error(`CIFAR ResNet depth must be 6n + 2, got ${depth}`);
  const n = (depth - 2) / 6;
  const [, , channels] = opts.inputShape;
  const ps = new ParamSet();
  const w = opts.width ?? 16;
  const stem = makeConv(ps, 'conv1', 3, channels, w, 1, opts.rng, 1);
  const stemBn = makeBatchNorm(ps, 'bn1', w);
  const blocks: Block[] = [];
  let cin = w;
  [w, 2 * w, 4 * w].forEach((cout, stage) => {
    for (let i = 0; i < n; i++) {
      const stride = stage > 0 && i === 0 ? 2 : 1;
      blocks.push(makeBlock(ps, `layer${stage + 1}.${i}`, cin, cout, stride, opts.rng));
      cin = cout;
    }
  });
  return {
    name: `resnet${depth}`,
    featureDim: 4 * w,
    inputShape: opts.inputShape,
    trainable: true,
    params: ps,
    features(x, training) {
      // Evaluation on the native kernels: the whole backbone one image at a time.
      const chained = training ? null : convBnChain(x, chainSteps(stem, stemBn, blocks));
      if (chained) return globalAvgPool(chained);
      let h = convBn(stem, stemBn, x, training, true); // [b, H, W, w]
      for (const b of blocks) h = block(b, h, training); // [b, H/4, W/4, 4w]
      return globalAvgPool(h); // [b, 4w]
    },
    exportGraph(g, input) {
      let h = g.convBn(input, stem, stemBn, true);
      for (const b of blocks) h = exportBlock(g, b, h);
      return g.mean(h, [1, 2]);
    },
    dispose: () => ps.dispose(),
  };
}

/** ImageNet-style ResNet-10 (one basic block per stage), for larger images. */
export function resnet10(opts: ResNetOptions): ResNet {
  const [, , channels] = opts.inputShape;
  const ps = new ParamSet();
  const stem = makeConv(ps, 'conv1', 7, channels, 64, 2, opts.rng, 3);
  const stemBn = makeBatchNorm(ps, 'bn1', 64);
  const blocks: Block[] = [];
  let cin = 64;
  [64, 128, 256, 512].forEach((cout, stage) => {
    blocks.push(makeBlock(ps, `layer${stage + 1}.0`, cin, cout, stage === 0 ? 1 : 2, opts.rng));
    cin = cout;
  });
  return {
    name: 'resnet10',
    featureDim: 512,
    inputShape: opts.inputShape,
    trainable: true,
    params: ps,
    features(x, training) {
      let h = convBn(stem, stemBn, x, training, true); // [b, H/2, W/2, 64]
      h = tf.maxPool(
        tf.pad(
          h,
          [
            [0, 0],
            [1, 1],
            [1, 1],
            [0, 0],
          ],
          -Infinity,
        ),
        3,
        2,
        'valid',
      ); // [b, H/4, W/4, 64]
      for (const b of blocks) h = block(b, h, training); // [b, H/32, W/32, 512]
      return globalAvgPool(h); // [b, 512]
    },
    exportGraph(g, input) {
      // After ReLU every value is >= 0, so zero padding gives the same max pool as -inf padding.
      let h = g.maxPool(g.pad(g.convBn(input, stem, stemBn, true), 1), 3, 2);
      for (const b of blocks) h = exportBlock(g, b, h);
      return g.mean(h, [1, 2]);
    },
    dispose: () => ps.dispose(),
  };
}
