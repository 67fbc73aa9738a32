/**
 * A small writer of TensorFlow.js graph models (the `model.json` + `weights.bin` format that
 * `tf.loadGraphModel` reads), for exporting a backbone with its folded classifier. Batch norm
 * is folded into the preceding convolution (evaluation mode), so the graph needs only plain
 * TensorFlow ops: Conv2D, BiasAdd, Relu, AddV2, Pad, MaxPool, Mean, Sub, Square, Sum, Rsqrt,
 * Mul, MatMul, Softmax (NCM's distance head: Maximum, Sqrt).
 */
import type { Backbone } from '../models/backbone.ts';
import type { DescribeGraph, GraphSink } from '../models/graph-sink.ts';
import type { BatchNorm, Conv } from '../models/layers.ts';
import { BN_EPS } from '../models/layers.ts';

/**
 * The export capability: a backbone that can describe its evaluation-mode network into a
 * GraphSink (models/graph-sink.ts). Optional: a frozen external backbone has none, and models/
 * implement it without importing this folder.
 */
export interface Exportable {
  exportGraph: DescribeGraph;
}

/** Evaluation-mode batch norm as a per-channel affine map: y = x * scale + shift. */
export function foldedBatchNorm(bn: BatchNorm): { scale: Float32Array; shift: Float32Array } {
  const gamma = bn.gamma.dataSync();
  const beta = bn.beta.dataSync();
  const mean = bn.runningMean.dataSync();
  const variance = bn.runningVar.dataSync();
  const scale = new Float32Array(gamma.length);
  const shift = new Float32Array(gamma.length);
  for (let o = 0; o < gamma.length; o++) {
    scale[o] = gamma[o]! / Math.sqrt(variance[o]! + BN_EPS);
    shift[o] = beta[o]! - mean[o]! * scale[o]!;
  }
  return { scale, shift };
}

export function isExportable<B extends Backbone>(b: B): b is B & Exportable {
  return typeof (b as Partial<Exportable>).exportGraph === 'function';
}

interface GraphNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, unknown>;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const dims = (shape: number[]) => ({ dim: shape.map((d) => ({ size: String(d) })) });
const ints = (v: number[]) => ({ list: { i: v.map(String) } });
const FLOAT = { type: 'DT_FLOAT' };

export class GraphBuilder implements GraphSink {
  private readonly nodes: GraphNode[] = [];
  private readonly weights: {
    name: string;
    shape: number[];
    dtype: 'float32' | 'int32';
    data: Float32Array | Int32Array;
  }[] = [];
  private counter = 0;

  private fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  private add(op: string, input: string[], attr: Record<string, unknown> = {}, name?: string): string {
    const n = name ?? this.fresh(op.toLowerCase());
    this.nodes.push({ name: n, op, input, attr });
    return n;
  }

  placeholder(name: string, shape: number[]): string {
    this.nodes.push({ name, op: 'Placeholder', attr: { dtype: FLOAT, shape: { shape: dims(shape) } } });
    return name;
  }

  constant(data: Float32Array | Int32Array, shape: number[], prefix = 'const'): string {
    const name = this.fresh(prefix);
    const dtype = data instanceof Int32Array ? 'int32' : 'float32';
    const tfType = dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT';
    this.nodes.push({
      name,
      op: 'Const',
      attr: { dtype: { type: tfType }, value: { tensor: { dtype: tfType, tensorShape: dims(shape) } } },
    });
    this.weights.push({ name, shape, dtype, data });
    return name;
  }

  /** Convolution with PyTorch-style symmetric padding and batch norm folded in: conv(x, W * s) + (beta - mean * s). */
  convBn(x: string, c: Conv, bn: BatchNorm, relu: boolean): string {
    const w = c.w.dataSync() as Float32Array; // [kh, kw, ci, co]
    const [kh, kw, ci, co] = c.w.shape as [number, number, number, number];
    const { scale, shift } = foldedBatchNorm(bn);
    const wf = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) wf[i] = w[i]! * scale[i % co]!;
    const p = typeof c.pad === 'number' ? c.pad : 0;
    const filter = this.constant(wf, [kh, kw, ci, co], 'conv_weight');
    const conv = this.add('Conv2D', [x, filter], {
      T: FLOAT,
      strides: ints([1, c.stride, c.stride, 1]),
      padding: { s: b64(typeof c.pad === 'number' ? 'EXPLICIT' : c.pad.toUpperCase()) },
      explicit_paddings: ints([0, 0, p, p, p, p, 0, 0]),
      data_format: { s: b64('NHWC') },
      dilations: ints([1, 1, 1, 1]),
    });
    const biased = this.add('BiasAdd', [conv, this.constant(shift, [co], 'bn_shift')], {
      T: FLOAT,
      data_format: { s: b64('NHWC') },
    });
    return relu ? this.relu(biased) : biased;
  }

  relu(x: string): string {
    return this.add('Relu', [x], { T: FLOAT });
  }

  addTensors(a: string, b: string): string {
    return this.add('AddV2', [a, b], { T: FLOAT });
  }

  /** Zero padding of H and W (NHWC). */
  pad(x: string, p: number): string {
    return this.add(
      'Pad',
      [x, this.constant(Int32Array.from([0, 0, p, p, p, p, 0, 0]), [4, 2], 'paddings')],
      { T: FLOAT },
    );
  }

  maxPool(x: string, k: number, s: number): string {
    return this.add('MaxPool', [x], {
      T: FLOAT,
      ksize: ints([1, k, k, 1]),
      strides: ints([1, s, s, 1]),
      padding: { s: b64('VALID') },
      data_format: { s: b64('NHWC') },
    });
  }

  mean(x: string, axes: number[], keepDims = false): string {
    return this.add('Mean', [x, this.constant(Int32Array.from(axes), [axes.length], 'axes')], {
      T: FLOAT,
      keep_dims: { b: keepDims },
    });
  }

  /** x / ||x|| along the last axis (x [n, d]). */
  l2normalize(x: string): string {
    const sq = this.add('Square', [x], { T: FLOAT });
    const ss = this.add('Sum', [sq, this.constant(Int32Array.from([1]), [1], 'axes')], {
      T: FLOAT,
      keep_dims: { b: true },
    });
    const eps = this.add('AddV2', [ss, this.constant(Float32Array.from([1e-24]), [], 'eps')], { T: FLOAT });
    return this.add('Mul', [x, this.add('Rsqrt', [eps], { T: FLOAT })], { T: FLOAT });
  }

  subConst(x: string, v: Float32Array): string {
    return this.add('Sub', [x, this.constant(v, [v.length], 'mean')], { T: FLOAT });
  }

  /** x [n, d] . W^T + b, W [C, d]. */
  dense(x: string, weight: Float32Array, bias: Float32Array, C: number, d: number, name: string): string {
    const mm = this.add('MatMul', [x, this.constant(weight, [C, d], 'fc_weight')], {
      T: FLOAT,
      transpose_a: { b: false },
      transpose_b: { b: true },
    });
    return this.add(
      'BiasAdd',
      [mm, this.constant(bias, [C], 'fc_bias')],
      { T: FLOAT, data_format: { s: b64('NHWC') } },
      name,
    );
  }

  /**
   * NCM's head: b - scale sqrt(max(0, ||x||^2 - 2 x.c + ||c||^2)), x [n, d], centroids W [C, d]
   * (FoldedLinear.distance).
   */
  distance(
    x: string,
    weight: Float32Array,
    sqNorms: Float32Array,
    scale: number,
    bias: Float32Array,
    C: number,
    d: number,
    name: string,
  ): string {
    const f = { T: FLOAT };
    const xc = this.add('MatMul', [x, this.constant(weight, [C, d], 'fc_weight')], {
      ...f,
      transpose_a: { b: false },
      transpose_b: { b: true },
    }); // [n, C]
    const xx = this.add(
      'Sum',
      [this.add('Square', [x], f), this.constant(Int32Array.from([1]), [1], 'axes')],
      {
        ...f,
        keep_dims: { b: true },
      },
    ); // [n, 1]
    const cross = this.add('Mul', [xc, this.constant(Float32Array.of(-2), [], 'two')], f);
    const d2 = this.add(
      'AddV2',
      [this.add('AddV2', [cross, xx], f), this.constant(sqNorms, [C], 'sq_norms')],
      f,
    );
    const dist = this.add(
      'Sqrt',
      [this.add('Maximum', [d2, this.constant(new Float32Array(1), [], 'zero')], f)],
      f,
    );
    const scaled = this.add('Mul', [dist, this.constant(Float32Array.of(-scale), [], 'neg_scale')], f);
    return this.add(
      'BiasAdd',
      [scaled, this.constant(bias, [C], 'fc_bias')],
      { ...f, data_format: { s: b64('NHWC') } },
      name,
    );
  }

  softmax(x: string, name: string): string {
    return this.add('Softmax', [x], { T: FLOAT }, name);
  }

  /** The model.json document and the weights file. */
  build(
    signature: { input: string; inputShape: number[]; output: string; outputShape: number[] },
    meta: Record<string, unknown>,
  ) {
    const bytes = this.weights.reduce((a, w) => a + w.data.byteLength, 0);
    const bin = new Uint8Array(bytes);
    let o = 0;
    for (const w of this.weights) {
      bin.set(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength), o);
      o += w.data.byteLength;
    }
    const modelJson = {
      format: 'graph-model',
      generatedBy: 'longtail',
      convertedBy: 'longtail',
      userDefinedMetadata: meta,
      signature: {
        inputs: {
          [signature.input]: {
            name: `${signature.input}:0`,
            dtype: 'DT_FLOAT',
            tensorShape: dims(signature.inputShape),
          },
        },
        outputs: {
          [signature.output]: {
            name: `${signature.output}:0`,
            dtype: 'DT_FLOAT',
            tensorShape: dims(signature.outputShape),
          },
        },
      },
      modelTopology: { node: this.nodes, library: {}, versions: { producer: 1 } },
      weightsManifest: [
        {
          paths: ['weights.bin'],
          weights: this.weights.map(({ name, shape, dtype }) => ({ name, shape, dtype })),
        },
      ],
    };
    return { modelJson, weights: bin };
  }
}
