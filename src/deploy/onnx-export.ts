/**
 * One deployable ONNX model: the backbone and a folded stage-2 classifier (`T(f) W^T + b`, T
 * none / l2n / cl2n). Input `images` [n, H, W, C] in [0, 1] (our layout; the graph transposes),
 * outputs `probabilities` and `logits` [n, classes], class names in metadata_props. Encoded with
 * the `onnx-proto` library (protobufjs).
 * - Our ResNets describe themselves into `OnnxSink`, a GraphSink emitting ONNX nodes (NCHW
 *   inside, batch norm folded into Conv).
 * - An ONNX backbone gets graph surgery: its input becomes `images` followed by the same
 *   preprocessing it ran with (resize, grey to 3 channels, mean/std, transpose), and the head is
 *   appended to its feature tensor; its own outputs are replaced by ours.
 */

import { readFileSync } from 'node:fs';
import type { onnx as P } from 'onnx-proto';
import type { FoldedLinear } from '../classifiers/types.ts';
import { makeContract } from '../data/preprocess.ts';
import type { GraphSink } from '../models/graph-sink.ts';
import type { BatchNorm, Conv } from '../models/layers.ts';
import type { OnnxPreprocess } from '../models/onnx-backbone.ts';
import { type ModelProto, onnx, PROTOBUF_LIMIT, toNum } from '../models/onnx-file.ts';
import { foldedBatchNorm } from './graph.ts';

const OPSET = 13;
type INode = P.INodeProto;
type ITensor = P.ITensorProto;
const A = onnx.AttributeProto.AttributeType;

function attr(name: string, v: number | number[] | string | boolean | 'float'): P.IAttributeProto {
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  if (typeof v === 'boolean') return { name, type: A.INT, i: v ? 1 : 0 };
  return { name, type: A.INT, i: v };
}

function tensor(name: string, data: Float32Array | BigInt64Array, dims: number[]): ITensor {
  const float = data instanceof Float32Array;
  return {
    name,
    dims,
    dataType: float ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.INT64,
    rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)),
  };
}

function valueInfo(name: string, dims: (number | string)[]): P.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

/** Nodes and initializers of a graph under construction; names are unique with a prefix. */
export class OnnxNodes {
  readonly nodes: INode[] = [];
  readonly inits: ITensor[] = [];
  private counter = 0;
  constructor(private readonly prefix = 'lt_') {}
  fresh(what: string): string {
    return `${this.prefix}${what}_${this.counter++}`;
  }
  node(op: string, inputs: string[], attrs: P.IAttributeProto[] = [], out?: string): string {
    const o = out ?? this.fresh(op.toLowerCase());
    this.nodes.push({
      opType: op,
      input: inputs,
      output: [o],
      attribute: attrs,
      name: this.fresh(`n_${op}`),
    });
    return o;
  }
  constF(data: Float32Array, dims: number[], what = 'const', exact = false): string {
    const n = exact ? what : this.fresh(what);
    this.inits.push(tensor(n, data, dims));
    return n;
  }
  constI(values: number[], what = 'ints'): string {
    const n = this.fresh(what);
    this.inits.push(tensor(n, BigInt64Array.from(values.map(BigInt)), [values.length]));
    return n;
  }
  /** x / sqrt(sum x^2 + 1e-24) per row, x [n, d] (the row sum as a product with ones, opset-independent). */
  l2normalize(x: string, d: number): string {
    const sq = this.node('Mul', [x, x]);
    const ss = this.node('MatMul', [sq, this.constF(new Float32Array(d).fill(1), [d, 1], 'ones')]); // [n, 1]
    const eps = this.node('Add', [ss, this.constF(Float32Array.from([1e-24]), [], 'eps')]);
    return this.node('Div', [x, this.node('Sqrt', [eps])]);
  }
  /** The folded head on features f [n, d]: logits and probabilities, named as the export names them. */
  head(f: string, layer: FoldedLinear, d: number): void {
    const { transform: t, weight, bias, distance } = layer;
    const C = bias.length;
    let h = f;
    if (t.kind === 'cl2n') h = this.l2normalize(this.node('Sub', [h, this.constF(t.mean, [d], 'mean')]), d);
    else if (t.kind === 'l2n') h = this.l2normalize(h, d);
    if (distance) {
      // NCM: b - scale sqrt(max(0, ||x||^2 - 2 x.c + ||c||^2)), as FoldedLinear defines it.
      const cross = this.node(
        'Gemm',
        [
          h,
          this.constF(weight, [C, d], 'classifier.weight', true),
          this.constF(distance.sqNorms, [C], 'sq_norms'),
        ],
        [attr('transB', 1), { name: 'alpha', type: A.FLOAT, f: -2 }],
      ); // [n, C] = ||c||^2 - 2 x.c
      const xx = this.node('MatMul', [
        this.node('Mul', [h, h]),
        this.constF(new Float32Array(d).fill(1), [d, 1], 'ones'),
      ]); // [n, 1]
      const d2 = this.node('Max', [
        this.node('Add', [cross, xx]),
        this.constF(new Float32Array(1), [], 'zero'),
      ]);
      const scaled = this.node('Mul', [
        this.node('Sqrt', [d2]),
        this.constF(Float32Array.of(-distance.scale), [], 'neg_scale'),
      ]);
      this.node('Add', [scaled, this.constF(bias, [C], 'classifier.bias', true)], [], 'logits');
      this.node('Softmax', ['logits'], [attr('axis', 1)], 'probabilities');
      return;
    }
    this.node(
      'Gemm',
      [
        h,
        this.constF(weight, [C, d], 'classifier.weight', true),
        this.constF(bias, [C], 'classifier.bias', true),
      ],
      [attr('transB', 1)],
      'logits',
    );
    this.node('Softmax', ['logits'], [attr('axis', 1)], 'probabilities');
  }
}

/** A GraphSink for our ResNets: NHWC in their description, NCHW tensors in the ONNX graph. */
export class OnnxSink extends OnnxNodes implements GraphSink {
  convBn(x: string, c: Conv, bn: BatchNorm, relu: boolean): string {
    const w = c.w.dataSync() as Float32Array; // [kh, kw, ci, co]
    const [kh, kw, ci, co] = c.w.shape as [number, number, number, number];
    const { scale, shift } = foldedBatchNorm(bn);
    const wf = new Float32Array(w.length); // [co, ci, kh, kw], scaled
    for (let o = 0; o < co; o++) {
      const s = scale[o]!;
      for (let i = 0; i < ci; i++)
        for (let y = 0; y < kh; y++)
          for (let z = 0; z < kw; z++)
            wf[((o * ci + i) * kh + y) * kw + z] = w[((y * kw + z) * ci + i) * co + o]! * s;
    }
    const attrs = [attr('kernel_shape', [kh, kw]), attr('strides', [c.stride, c.stride])];
    if (typeof c.pad === 'number') attrs.push(attr('pads', [c.pad, c.pad, c.pad, c.pad]));
    else attrs.push(attr('auto_pad', c.pad === 'same' ? 'SAME_UPPER' : 'VALID'));
    const y = this.node(
      'Conv',
      [x, this.constF(wf, [co, ci, kh, kw], 'conv_weight'), this.constF(shift, [co], 'conv_bias')],
      attrs,
    );
    return relu ? this.relu(y) : y;
  }
  relu(x: string): string {
    return this.node('Relu', [x]);
  }
  addTensors(a: string, b: string): string {
    return this.node('Add', [a, b]);
  }
  pad(x: string, p: number): string {
    return this.node('Pad', [x, this.constI([0, 0, p, p, 0, 0, p, p], 'pads')]);
  }
  maxPool(x: string, k: number, s: number): string {
    return this.node('MaxPool', [x], [attr('kernel_shape', [k, k]), attr('strides', [s, s])]);
  }
  mean(x: string, axes: number[], keepDims = false): string {
    const nchw = axes.map((a) => [0, 2, 3, 1][a]!); // NHWC axis -> NCHW axis
    return this.node('ReduceMean', [x], [attr('axes', nchw), attr('keepdims', keepDims ? 1 : 0)]);
  }
}

export interface OnnxHead extends FoldedLinear {
  classNames: string[];
  method: string;
  /** More metadata_props (e.g. the temperature and target prior folded in). */
  meta?: Record<string, string>;
}

function finishModel(
  graph: P.IGraphProto,
  opsets: P.IOperatorSetIdProto[],
  meta: Record<string, string>,
  irVersion = 7,
): Uint8Array {
  const model: P.IModelProto = {
    irVersion,
    producerName: 'longtail',
    producerVersion: PRODUCER_VERSION,
    opsetImport: opsets,
    graph,
    metadataProps: Object.entries(meta).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

const metaOf = (h: OnnxHead, inputShape: readonly number[], source: string): Record<string, string> => ({
  class_names: JSON.stringify(h.classNames),
  method: h.method,
  input: `images [n, ${inputShape.join(', ')}] float32 in [0, 1]`,
  outputs: 'probabilities [n, classes], logits [n, classes], features [n, d]',
  source,
  // The logits are b - ||x - c|| / T (NCM), not a linear layer: for anyone reading the graph.
  ...(h.distance ? { score: 'negative distance to class means' } : {}),
  // The contract images are prepared by before this model (docs/preprocessing.md): resized by
  // longtail's triangle-antialias resize to the input size, u8 / 255, NHWC; any mean/std and the
  // transpose are inside the graph, so the contract's own mean/std here are 0 and 1.
  preprocessing: JSON.stringify(
    makeContract({
      size: inputShape[0]!,
      colour: inputShape[2] === 1 ? 'grey' : 'rgb',
      layout: 'nhwc',
    }),
  ),
  ...h.meta,
});

/** longtail's own version, recorded as the exported model's producer_version. */
export const PRODUCER_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Our ResNet (its `exportGraph`) with the head, as one ONNX model. */
export function resnetToOnnx(
  describe: (g: GraphSink, input: string) => string,
  inputShape: readonly [number, number, number],
  featureDim: number,
  h: OnnxHead,
  source: string,
): Uint8Array {
  const g = new OnnxSink();
  const x = g.node('Transpose', ['images'], [attr('perm', [0, 3, 1, 2])]); // [n, C, H, W]
  const f = g.node('Identity', [describe(g, x)], [], 'features'); // [n, d]
  g.head(f, h, featureDim);
  const C = h.bias.length;
  return finishModel(
    {
      name: 'longtail',
      node: g.nodes,
      initializer: g.inits,
      input: [valueInfo('images', ['n', ...inputShape])],
      output: [
        valueInfo('probabilities', ['n', C]),
        valueInfo('logits', ['n', C]),
        valueInfo('features', ['n', featureDim]),
      ],
    },
    [{ domain: '', version: OPSET }],
    metaOf(h, inputShape, source),
  );
}

/**
 * An ONNX backbone with the head appended (graph surgery on its ModelProto): `images` [n, H, W, C]
 * -> preprocessing -> the model's input -> ... -> its feature tensor (pooled if 4-D) -> head.
 */
export function onnxBackboneWithHead(
  model: Uint8Array | ModelProto,
  pre: OnnxPreprocess,
  featureTensor: string,
  featureRank: number,
  inputShape: readonly [number, number, number],
  featureDim: number,
  h: OnnxHead,
  source: string,
): ModelProto {
  const m: ModelProto = model instanceof Uint8Array ? onnx.ModelProto.decode(model) : model;
  const graph = m.graph!;
  // Our names (the input and the outputs) must not meet the model's: rename its tensors that do.
  const reserved = new Set([
    'images',
    'features',
    'logits',
    'probabilities',
    'classifier.weight',
    'classifier.bias',
  ]);
  const ren = (n: string) => (reserved.has(n) ? `orig_${n}` : n);
  for (const node of graph.node ?? []) {
    node.input = (node.input ?? []).map(ren);
    node.output = (node.output ?? []).map(ren);
  }
  for (const v of [
    ...(graph.input ?? []),
    ...(graph.output ?? []),
    ...(graph.valueInfo ?? []),
    ...(graph.initializer ?? []),
  ])
    v.name = ren(v.name ?? '');
  pre = { ...pre, inputName: ren(pre.inputName) };
  featureTensor = ren(featureTensor);
  const opset = toNum((m.opsetImport ?? []).find((o) => (o.domain ?? '') === '')?.version);
  const g = new OnnxNodes('longtail_');
  const [H, W, C] = inputShape;
  let x = 'images'; // [n, H, W, C]
  if (pre.layout === 'nchw' || pre.size[0] !== H || pre.size[1] !== W)
    x = g.node('Transpose', [x], [attr('perm', [0, 3, 1, 2])]); // [n, C, H, W]
  let nchw = x !== 'images';
  if (pre.size[0] !== H || pre.size[1] !== W) {
    if (opset < 11) throw new Error(`the model's opset ${opset} is older than 11 (Resize with sizes)`);
    const nc = g.node('Slice', [g.node('Shape', [x]), g.constI([0]), g.constI([2])]);
    const sizes = g.node('Concat', [nc, g.constI(pre.size)], [attr('axis', 0)]);
    x = g.node(
      'Resize',
      [x, g.constF(new Float32Array(0), [0], 'roi'), g.constF(new Float32Array(0), [0], 'scales'), sizes],
      [attr('mode', 'linear'), attr('coordinate_transformation_mode', 'half_pixel')],
    );
  }
  const axis = nchw ? 1 : 3;
  if (pre.channels !== C) x = g.node('Concat', [x, x, x], [attr('axis', axis)]);
  const bshape = nchw ? [pre.channels, 1, 1] : [pre.channels];
  x = g.node('Sub', [x, g.constF(pre.mean, bshape, 'mean')]);
  x = g.node('Div', [x, g.constF(pre.std, bshape, 'std')]);
  if (pre.layout === 'nhwc' && nchw) {
    x = g.node('Transpose', [x], [attr('perm', [0, 2, 3, 1])]);
    nchw = false;
  }
  // The last preprocessing node now computes the model's input tensor.
  const last = g.nodes[g.nodes.length - 1]!;
  last.output = [pre.inputName];
  const pre_nodes = g.nodes.splice(0);
  const pre_inits = g.inits.splice(0);
  let f = featureTensor;
  f = g.node(
    'Identity',
    [featureRank === 4 ? g.node('Flatten', [g.node('GlobalAveragePool', [f])]) : f],
    [],
    'features',
  ); // [n, d]
  g.head(f, h, featureDim);
  graph.node = [...pre_nodes, ...(graph.node ?? []), ...g.nodes];
  graph.initializer = [...(graph.initializer ?? []), ...pre_inits, ...g.inits];
  graph.input = [
    valueInfo('images', ['n', H, W, C]) as P.ValueInfoProto,
    ...(graph.input ?? []).filter(
      (v) =>
        v.name !== pre.inputName && v.name !== undefined && graph.initializer!.some((t) => t.name === v.name),
    ),
  ];
  const Cn = h.bias.length;
  graph.output = [
    valueInfo('probabilities', ['n', Cn]),
    valueInfo('logits', ['n', Cn]),
    valueInfo('features', ['n', featureDim]),
  ] as P.ValueInfoProto[];
  graph.valueInfo = (graph.valueInfo ?? []).filter((v) => v.name !== pre.inputName);
  const meta: Record<string, string> = {
    ...Object.fromEntries((m.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? ''])),
    ...metaOf(h, inputShape, source),
  };
  m.metadataProps = Object.entries(meta).map(([key, value]) =>
    onnx.StringStringEntryProto.create({ key, value }),
  );
  m.producerName = 'longtail';
  m.producerVersion = PRODUCER_VERSION; // not the version of the tool that made the backbone
  return m;
}

/** Initializers smaller than this stay in the .onnx when the others go to external data. */
const EXTERNAL_MIN_BYTES = 1024;

/**
 * The bytes of an exported model: one .onnx when its initializers stay under `limit` bytes (by
 * default protobuf's 2 GiB), else the .onnx without the weights and the weights in
 * `dataName` (written beside it; each tensor's entry names that file, relative, with its offset
 * and length, as ONNX's external data format says).
 */
export function encodeWithExternalData(
  m: ModelProto,
  dataName: string,
  limit: number = PROTOBUF_LIMIT,
): { model: Uint8Array; data: Uint8Array[] | null } {
  const inits = m.graph?.initializer ?? [];
  const sizeOf = (t: P.ITensorProto) =>
    (t.rawData?.length ?? 0) +
    4 * ((t.floatData?.length ?? 0) + (t.int32Data?.length ?? 0)) +
    8 * ((t.int64Data?.length ?? 0) + (t.doubleData?.length ?? 0));
  // A margin for the graph itself (nodes, names, metadata).
  const total = inits.reduce((a, t) => a + sizeOf(t), 0) + (1 << 20);
  if (total <= limit) return { model: onnx.ModelProto.encode(m).finish(), data: null };
  const data: Uint8Array[] = [];
  let offset = 0;
  for (const t of inits) {
    const raw = t.rawData ?? null;
    if (raw === null || raw.length < EXTERNAL_MIN_BYTES) continue; // only raw bytes move (our writers' form)
    // 64-byte alignment, so a runtime may map the file and read tensors in place.
    const pad = (64 - (offset % 64)) % 64;
    if (pad > 0) data.push(new Uint8Array(pad));
    offset += pad;
    data.push(raw);
    t.externalData = [
      { key: 'location', value: dataName },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ].map((e) => onnx.StringStringEntryProto.create(e));
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.rawData = new Uint8Array(0);
    offset += raw.length;
  }
  return { model: onnx.ModelProto.encode(m).finish(), data };
}
