/**
 * The preprocessing contract (version 1, docs/preprocessing.md): how an image file becomes the
 * pixels longtail stores and a model sees. Written once here and, byte for byte, in NumPy in
 * examples/pytorch/longtail_preprocess.py, so features from a PyTorch export and from longtail
 * agree: sharp (libvips) only decodes; the resize is ours, defined exactly:
 *
 * - `shorter-centre-crop`: shorter side to `size`, longer to round(long * size / short) (half
 *   away from zero, at least `size`), centre crop at floor((resized - size) / 2); `stretch`: both
 *   sides to `size`.
 * - kernel `triangle-antialias`: separable (horizontal, then vertical) in float64 with PIL's
 *   support scaling (triangle of half-width max(scale, 1) centred at (i + 0.5) * scale), weights
 *   normalised to sum 1 (summed in order), no rounding between passes, then floor(v + 0.5)
 *   clamped to 0..255. Taps are added in index order in both languages, so the float64 sums are
 *   the same operations and the uint8 results are identical.
 */
import { DataError } from '../errors.ts';

export const PREPROCESS_VERSION = 1;
export type ResizeMode = 'shorter-centre-crop' | 'stretch';

export interface PreprocessContract {
  version: 1;
  decode: string;
  colour: 'rgb' | 'grey';
  resize: { kernel: 'triangle-antialias'; mode: ResizeMode };
  size: number;
  range: string;
  mean: number[];
  std: number[];
  layout: 'nchw' | 'nhwc';
}

export const DECODE_RULE = '8-bit, EXIF orientation applied, alpha dropped, grey replicated';

/** A version-1 contract with the given side and, unless given, RGB, mean 0, std 1, NCHW, shorter-side centre crop. */
export function makeContract(opts: {
  size: number;
  mean?: readonly number[];
  std?: readonly number[];
  mode?: ResizeMode;
  layout?: 'nchw' | 'nhwc';
  colour?: 'rgb' | 'grey';
}): PreprocessContract {
  return {
    version: 1,
    decode: DECODE_RULE,
    colour: opts.colour ?? 'rgb',
    resize: { kernel: 'triangle-antialias', mode: opts.mode ?? 'shorter-centre-crop' },
    size: opts.size,
    range: '[0, 1] (u8 / 255)',
    mean: [...(opts.mean ?? [0, 0, 0])],
    std: [...(opts.std ?? [1, 1, 1])],
    layout: opts.layout ?? 'nchw',
  };
}

/** The fields of a version-1 contract, in order. */
const CONTRACT_FIELDS: readonly string[] = [
  'version',
  'decode',
  'colour',
  'resize',
  'size',
  'range',
  'mean',
  'std',
  'layout',
];

/** Checks a parsed contract; the error names `where` and the field. */
export function checkContract(c: unknown, where: string): PreprocessContract {
  const bad = (field: string, expected: string, got: unknown) =>
    new DataError(`${where}: preprocessing ${field} must be ${expected}, got ${JSON.stringify(got)}`);
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw bad('', 'an object', c);
  const o = c as Record<string, unknown>;
  if (o.version !== PREPROCESS_VERSION) throw bad('version', String(PREPROCESS_VERSION), o.version);
  // A field this version does not know may change what the pixels are: refused, never ignored.
  const unknown = Object.keys(o).filter((k) => !CONTRACT_FIELDS.includes(k));
  if (unknown.length > 0)
    throw new DataError(
      `${where}: preprocessing has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (version ${PREPROCESS_VERSION} has ${CONTRACT_FIELDS.join(', ')})`,
    );
  const r = o.resize as Record<string, unknown> | undefined;
  if (typeof r === 'object' && r !== null) {
    const extra = Object.keys(r).filter((k) => k !== 'kernel' && k !== 'mode');
    if (extra.length > 0)
      throw new DataError(
        `${where}: preprocessing resize has unknown field ${extra.join(', ')} (it has kernel, mode)`,
      );
  }
  if (r?.kernel !== 'triangle-antialias') throw bad('resize.kernel', '"triangle-antialias"', r?.kernel);
  if (r.mode !== 'shorter-centre-crop' && r.mode !== 'stretch')
    throw bad('resize.mode', '"shorter-centre-crop" or "stretch"', r.mode);
  if (!Number.isInteger(o.size) || (o.size as number) < 1 || (o.size as number) > 4096)
    throw bad('size', 'an integer 1..4096', o.size);
  for (const k of ['mean', 'std'] as const) {
    const v = o[k];
    if (!Array.isArray(v) || (v.length !== 3 && v.length !== 1) || !v.every((x) => Number.isFinite(x)))
      throw bad(k, '1 or 3 finite numbers', v);
  }
  if (!(o.std as number[]).every((s) => s > 0)) throw bad('std', 'positive', o.std);
  if (o.layout !== 'nchw' && o.layout !== 'nhwc') throw bad('layout', '"nchw" or "nhwc"', o.layout);
  if (o.colour !== 'rgb' && o.colour !== 'grey') throw bad('colour', '"rgb" or "grey"', o.colour);
  return o as unknown as PreprocessContract;
}

const roundHalfAway = (x: number) => Math.floor(x + 0.5);

/** [W', H'] before the crop. */
export function resizedDims(w: number, h: number, size: number, mode: ResizeMode): [number, number] {
  if (mode === 'stretch') return [size, size];
  const short = Math.min(w, h);
  return [
    w === short ? size : Math.max(size, roundHalfAway((w * size) / short)),
    h === short ? size : Math.max(size, roundHalfAway((h * size) / short)),
  ];
}

interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array[];
}

/** Triangle taps for outputs first..first+n-1 of an nIn -> nOut resize (PIL's support scaling). */
function taps(nIn: number, nOut: number, first: number, n: number): Taps {
  const scale = nIn / nOut;
  const fs = Math.max(scale, 1);
  const start = new Int32Array(n);
  const count = new Int32Array(n);
  const weights: Float64Array[] = [];
  for (let r = 0; r < n; r++) {
    const centre = (first + r + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - fs));
    const hi = Math.min(nIn, Math.ceil(centre + fs));
    const ws: number[] = [];
    let s0 = -1;
    for (let j = lo; j < hi; j++) {
      const t = Math.abs((j + 0.5 - centre) / fs);
      const w = t < 1 ? 1 - t : 0;
      if (w > 0) {
        if (s0 < 0) s0 = j;
        ws.push(w);
      }
    }
    let total = 0;
    for (const w of ws) total += w;
    start[r] = s0;
    count[r] = ws.length;
    weights.push(Float64Array.from(ws, (w) => w / total));
  }
  return { start, count, weights };
}

/**
 * uint8 [h, w, c] -> uint8 [size, size, c] by the contract's resize. Positive triangle weights
 * are contiguous, so a row's taps are start..start+count-1.
 */
export function resizeU8(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  size: number,
  mode: ResizeMode,
): Uint8Array {
  const [rw, rh] = resizedDims(w, h, size, mode);
  const left = Math.floor((rw - size) / 2);
  const top = Math.floor((rh - size) / 2);
  return resample(src, h, w, c, taps(w, rw, left, size), taps(h, rh, top, size), size, size);
}

/**
 * uint8 [h, w, c] -> uint8 [outH, outW, c]: the contract's kernel stretching the whole image (no
 * crop), for sides that are not the contract's square (a model's input, an augmentation's crop).
 * With outH = outW = size it is resizeU8(..., 'stretch').
 */
export function resizeU8To(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  outH: number,
  outW: number,
): Uint8Array {
  return resample(src, h, w, c, taps(w, outW, 0, outW), taps(h, outH, 0, outH), outH, outW);
}

/** The two passes: horizontal (taps tx) in float64, then vertical (taps ty), rounded half up. */
function resample(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  tx: Taps,
  ty: Taps,
  outH: number,
  outW: number,
): Uint8Array {
  const tmp = new Float64Array(h * outW * c);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < outW; x++) {
      const s = tx.start[x]!;
      const ws = tx.weights[x]!;
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < ws.length; k++) acc += ws[k]! * src[(y * w + s + k) * c + ch]!;
        tmp[(y * outW + x) * c + ch] = acc;
      }
    }
  const out = new Uint8Array(outH * outW * c);
  for (let y = 0; y < outH; y++) {
    const s = ty.start[y]!;
    const ws = ty.weights[y]!;
    for (let x = 0; x < outW; x++)
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < ws.length; k++) acc += ws[k]! * tmp[((s + k) * outW + x) * c + ch]!;
        const v = Math.floor(acc + 0.5);
        out[(y * outW + x) * c + ch] = Math.min(255, Math.max(0, v));
      }
  }
  return out;
}

/**
 * Decodes image bytes with sharp (EXIF orientation applied, alpha dropped, 8 bits, grey
 * replicated to 3 channels or RGB averaged to 1 by sharp's greyscale) and resizes by the contract.
 */
export async function decodeAndResize(
  bytes: Uint8Array,
  size: number,
  channels: 1 | 3 = 3,
  mode: ResizeMode = 'shorter-centre-crop',
): Promise<Uint8Array> {
  // Imported here, not at the top: only the commands that decode images pay for loading sharp.
  const { default: sharp } = await import('sharp');
  let img = sharp(bytes, { failOn: 'error' }).rotate().removeAlpha();
  img = channels === 1 ? img.greyscale() : img.toColourspace('srgb');
  const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  const px = resizeU8(
    new Uint8Array(data.buffer, data.byteOffset, data.length),
    info.height,
    info.width,
    info.channels,
    size,
    mode,
  );
  if (info.channels === channels) return px;
  // sharp keeps one channel for grey input even when asked for sRGB: replicate it.
  const out = new Uint8Array(size * size * channels);
  for (let p = 0; p < size * size; p++)
    for (let ch = 0; ch < channels; ch++) out[p * channels + ch] = px[p * info.channels]!;
  return out;
}
