/**
 * ONNX models whose initializers live in external data files (`TensorProto.data_location =
 * EXTERNAL`, `external_data` entries `location`, `offset`, `length`: how PyTorch and onnx save
 * models over 2 GB). Every entry is checked before onnxruntime sees the model: `location` is a
 * plain relative path that stays inside the model's folder after symlinks are resolved, names a
 * regular file (never a FIFO or device, checked with stat before anything opens it), and
 * `offset + length` fits in the file with `length` equal to the tensor's byte size. The files are
 * part of the model's identity (`onnxIdentitySha256`), and onnxruntime resolves them relative to
 * the model's folder (the worker sets `session.model_external_initializers_file_folder_path`).
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, sep } from 'node:path';
import onnxProto from 'onnx-proto';
import { ConfigError, DataError } from '../errors.ts';

const { onnx } = onnxProto;
type Tensor = onnxProto.onnx.ITensorProto;
type Int64 = number | { toNumber(): number };
const num = (v: Int64 | null | undefined): number =>
  v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber();

/** Bits per element of each ONNX data type (STRING, 8, has no fixed size and cannot be external). */
const BITS: Record<number, number> = {
  1: 32,
  2: 8,
  3: 8,
  4: 16,
  5: 16,
  6: 32,
  7: 64,
  9: 8,
  10: 16,
  11: 64,
  12: 32,
  13: 64,
  14: 64,
  15: 128,
  16: 16,
  17: 8,
  18: 8,
  19: 8,
  20: 8,
  21: 4,
  22: 4,
  23: 4,
};

export interface ExternalTensor {
  tensor: string;
  /** The entry's `location` as written in the model. */
  location: string;
  /** The file it resolves to (symlinks resolved; inside the model's folder). */
  file: string;
  offset: number;
  length: number;
}

/** Every tensor of the graph (and its subgraphs) stored externally. */
function externalTensors(model: onnxProto.onnx.IModelProto): Tensor[] {
  const out: Tensor[] = [];
  const visit = (g: onnxProto.onnx.IGraphProto | null | undefined): void => {
    if (!g) return;
    for (const t of g.initializer ?? [])
      if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) out.push(t);
    for (const n of g.node ?? [])
      for (const a of n.attribute ?? []) {
        if (a.t?.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) out.push(a.t);
        visit(a.g);
        for (const sg of a.graphs ?? []) visit(sg);
      }
  };
  visit(model.graph);
  return out;
}

/**
 * Checks every external data entry of `model` (read from `path`), returning them; throws one line
 * naming the model, the tensor and the file otherwise. Nothing here opens a file that is not a
 * regular one.
 */
export function checkExternalData(path: string, model: onnxProto.onnx.IModelProto): ExternalTensor[] {
  const tensors = externalTensors(model);
  if (tensors.length === 0) return [];
  const dir = dirname(path);
  let realDir: string;
  try {
    realDir = realpathSync(dir);
  } catch {
    throw new ConfigError(`${path}: its folder cannot be resolved`);
  }
  const out: ExternalTensor[] = [];
  for (const t of tensors) {
    const name = t.name ?? '';
    const entry = (k: string) => (t.externalData ?? []).find((e) => e.key === k)?.value ?? undefined;
    const location = entry('location');
    const what = `${path}: initializer ${name}`;
    if (location === undefined || location === '')
      throw new DataError(`${what}: its data is external but names no location`);
    if (isAbsolute(location) || /^[A-Za-z]:/.test(location) || location.includes('\\'))
      throw new ConfigError(
        `${what}: external data ${location} is an absolute path; it must be a file in the model's folder (${dir})`,
      );
    if (location.split('/').some((s) => s === '..'))
      throw new ConfigError(
        `${what}: external data ${location} leaves the model's folder (..); it must be a file in ${dir}`,
      );
    const joined = join(dir, location);
    try {
      lstatSync(joined);
    } catch {
      throw new ConfigError(`${what}: external data file ${location} is missing (looked for ${joined})`);
    }
    let file: string;
    try {
      file = realpathSync(joined);
    } catch {
      throw new ConfigError(`${what}: external data ${location} is a broken symbolic link (${joined})`);
    }
    if (!file.startsWith(realDir + sep))
      throw new ConfigError(
        `${what}: external data ${location} resolves to ${file}, outside the model's folder (${realDir})`,
      );
    const st = statSync(file);
    if (!st.isFile())
      throw new ConfigError(
        `${what}: external data ${location} is not a regular file (a FIFO, device or folder)`,
      );
    const dims = (t.dims ?? []).map(num);
    const bits = BITS[t.dataType ?? 0];
    if (bits === undefined)
      throw new DataError(`${what}: data type ${t.dataType} cannot be stored as external data (${location})`);
    const count = dims.reduce((a, b) => a * b, 1);
    const declared = Math.ceil((count * bits) / 8);
    const offText = entry('offset');
    const lenText = entry('length');
    const offset = offText === undefined ? 0 : Number(offText);
    const length = lenText === undefined ? declared : Number(lenText);
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0)
      throw new DataError(
        `${what}: external data ${location} has offset ${offText} / length ${lenText}, not byte counts`,
      );
    if (length !== declared)
      throw new DataError(
        `${what}: external data ${location} holds ${length} bytes; its shape [${dims.join(', ')}] needs ${declared}`,
      );
    if (offset + length > st.size)
      throw new DataError(
        `${what}: external data ${location} is too short (${st.size} bytes; the tensor needs bytes ${offset} to ${offset + length})`,
      );
    out.push({ tensor: name, location, file, offset, length });
  }
  return out;
}

/** The bytes of an external tensor (checked by checkExternalData). */
export function readExternalTensor(e: ExternalTensor): Uint8Array {
  const buf = new Uint8Array(e.length);
  const fd = openSync(e.file, 'r');
  try {
    let got = 0;
    while (got < e.length) {
      const n = readSync(fd, buf, got, e.length - got, e.offset + got);
      if (n === 0)
        throw new DataError(`${e.file}: ended while tensor ${e.tensor} was read (changed meanwhile?)`);
      got += n;
    }
  } finally {
    closeSync(fd);
  }
  return buf;
}

/**
 * The identity of an ONNX model: the SHA-256 of its bytes, followed, when it has external data,
 * by each external file's location and bytes (locations sorted, each once). A model without
 * external data (or a file that is not an ONNX model) hashes as its bytes alone, as before.
 * A FIFO or device must have been refused before (checkOnnxPath).
 */
export function onnxIdentitySha256(path: string): string {
  const bytes = readFileSync(path);
  const h = createHash('sha256').update(bytes);
  let ext: ExternalTensor[] = [];
  let model: onnxProto.onnx.ModelProto | null = null;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch {
    model = null;
  }
  if (model) ext = checkExternalData(path, model);
  const files = new Map<string, string>();
  for (const e of ext) files.set(e.location, e.file);
  for (const loc of [...files.keys()].sort()) {
    h.update(`\0${loc}\0`);
    hashFileInto(h, files.get(loc)!);
  }
  return h.digest('hex');
}

/** Feeds a file's bytes to a hash, a MiB at a time (never the whole file in memory). */
export function hashFileInto(h: Hash, path: string): void {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
}
