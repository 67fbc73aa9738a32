/**
 * Reading an ONNX model file (a protobuf ModelProto, decoded by the `onnx-proto` library) and the
 * checks every use of one shares: it is an ONNX model, it has one image input, a named output
 * exists, an initializer by name. Graph surgery for export lives in deploy/onnx-export.ts.
 */
import { readFileSync, statSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { ConfigError, DataError } from '../errors.ts';
import { checkExternalData, type ExternalTensor, readExternalTensor } from '../io/onnx-external.ts';

export const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;
type Int64 = number | { toNumber(): number };

export const toNum = (v: Int64 | null | undefined): number =>
  v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber();

/** Largest image side (and channel count) an ONNX input may declare: 4096 x 4096 floats is 64 MiB a channel. */
export const MAX_SIDE = 4096;
/** Largest fixed input batch (the shared image buffer holds that many). */
export const MAX_FIXED_BATCH = 256;

/** A dimension: a number, or null when symbolic (batch) or unknown. */
export type Dim = number | null;

export interface OnnxFileInfo {
  path: string;
  bytes: Uint8Array;
  model: ModelProto;
  /** The one input that is not an initializer. */
  input: { name: string; dims: Dim[] };
  outputs: string[];
  /** The default-domain opset. */
  opset: number;
  /** Initializers stored in external data files (checked: inside the model's folder, sizes fit). */
  external: ExternalTensor[];
}

function dimsOf(v: onnxProto.onnx.IValueInfoProto): Dim[] {
  const shape = v.type?.tensorType?.shape?.dim ?? [];
  return shape.map((d) =>
    d.dimValue !== null && d.dimValue !== undefined && toNum(d.dimValue) > 0 ? toNum(d.dimValue) : null,
  );
}

/** A protobuf message (an .onnx without external data) is at most 2 GiB - 1 bytes. */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;

/**
 * Checks, before anything reads or hashes it, that `path` is a regular file a protobuf can hold:
 * a FIFO or /dev/zero named as the model would otherwise block or never end.
 */
export function checkOnnxPath(path: string): number {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new ConfigError(`${path}: no such ONNX file`);
  }
  if (!st.isFile()) throw new ConfigError(`${path}: not a regular file (expected an .onnx model)`);
  if (st.size > PROTOBUF_LIMIT)
    throw new DataError(
      `${path}: ${st.size} bytes; an .onnx file holds at most 2 GiB (a protobuf limit): save a larger model with its weights as external data`,
    );
  return st.size;
}

/** Decodes and checks an ONNX file: a ModelProto with a graph of nodes and exactly one image input. */
export function readOnnxFile(path: string): OnnxFileInfo {
  checkOnnxPath(path);
  const bytes = new Uint8Array(readFileSync(path));
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new DataError(`${path}: not an ONNX model (${(e as Error).message.split('\n')[0]})`);
  }
  const g = model.graph;
  if (toNum(model.irVersion) <= 0 || !g || (g.node ?? []).length === 0 || (g.output ?? []).length === 0)
    throw new DataError(`${path}: not an ONNX model (no IR version, graph, nodes or outputs)`);
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  const inputs = (g.input ?? []).filter((v) => !inits.has(v.name ?? ''));
  if (inputs.length !== 1)
    throw new DataError(
      `${path}: the model has ${inputs.length} inputs (${inputs.map((v) => v.name).join(', ')}); an ONNX backbone takes exactly one image input`,
    );
  const input = { name: inputs[0]!.name ?? '', dims: dimsOf(inputs[0]!) };
  const big = input.dims.slice(1).find((x) => x !== null && x > MAX_SIDE);
  if (big !== undefined || (input.dims[0] !== null && input.dims[0]! > MAX_FIXED_BATCH))
    throw new DataError(
      `${path}: input ${input.name} declares [${input.dims.map((x) => x ?? '?').join(', ')}]; longtail takes images up to ${MAX_SIDE} per side and a fixed batch up to ${MAX_FIXED_BATCH}`,
    );
  if (input.dims.length !== 4)
    throw new DataError(
      `${path}: input ${input.name} has ${input.dims.length} dimensions; an image input has 4 ([n, C, H, W] or [n, H, W, C])`,
    );
  const opset = toNum(
    (model.opsetImport ?? []).find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx')?.version,
  );
  const external = checkExternalData(path, model);
  return { path, bytes, model, input, outputs: (g.output ?? []).map((o) => o.name ?? ''), opset, external };
}

/** Every tensor name the graph computes (node outputs and graph inputs). */
export function valueNames(model: ModelProto): Set<string> {
  const s = new Set<string>();
  for (const n of model.graph?.node ?? []) for (const o of n.output ?? []) s.add(o);
  for (const i of model.graph?.input ?? []) s.add(i.name ?? '');
  return s;
}

/** A float initializer by name, as [shape, data]. */
export function initializer(
  info: OnnxFileInfo,
  name: string,
  flag: string,
): { dims: number[]; data: Float32Array } {
  const t = (info.model.graph?.initializer ?? []).find((x) => x.name === name);
  if (!t) {
    const some = (info.model.graph?.initializer ?? [])
      .filter((x) => (x.dims ?? []).length <= 2)
      .map((x) => x.name)
      .slice(-6);
    throw new ConfigError(
      `${flag} ${name}: ${info.path} has no initializer of that name (2-D/1-D ones near the end: ${some.join(', ') || 'none'})`,
    );
  }
  if (t.dataType !== onnx.TensorProto.DataType.FLOAT)
    throw new DataError(`${flag} ${name}: in ${info.path} is not float32 (data type ${t.dataType})`);
  const dims = (t.dims ?? []).map(toNum);
  const n = dims.reduce((a, b) => a * b, 1);
  let data: Float32Array;
  const ext = info.external.find((e) => e.tensor === name);
  if (ext) {
    const raw = readExternalTensor(ext);
    data = new Float32Array(raw.buffer, 0, raw.byteLength >> 2);
  } else if (t.rawData && t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData); // aligned
    data = new Float32Array(copy.buffer, 0, copy.byteLength / 4);
  } else data = Float32Array.from(t.floatData ?? []);
  if (data.length !== n)
    throw new DataError(
      `${flag} ${name}: in ${info.path} holds ${data.length} values, its shape ${dims.join('x')} needs ${n}`,
    );
  return { dims, data };
}
