/**
 * IDX files (the MNIST / Fashion-MNIST format), plain or gzipped. Refuses a wrong magic number,
 * a truncated file and image/label count mismatches, naming the file.
 */
import { constants as bufferConstants } from 'node:buffer';
import { gunzipSync } from 'node:zlib';
import { DataError } from '../errors.ts';
import { maxArrayBytes, RAISE_LIMIT_HINT } from '../io/limits.ts';
import { readFileChecked } from '../io/read-file.ts';
import type { ImageSet } from './types.ts';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Reads an IDX file of unsigned bytes (type code 0x08). */
export function readIdx(path: string, expectedRank?: number): IdxArray {
  // One Buffer holds the file and one its decompressed bytes: Node's Buffer ceiling applies too.
  const limit = Math.min(maxArrayBytes(), bufferConstants.MAX_LENGTH);
  let raw = readFileChecked(path, 'IDX file', { maxBytes: limit, limitHint: RAISE_LIMIT_HINT });
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      raw = gunzipSync(raw, { maxOutputLength: limit });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new DataError(
          `${path}: decompresses to more than the limit of ${limit} bytes${RAISE_LIMIT_HINT}`,
        );
      }
      throw new DataError(`${path}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0) {
    throw new DataError(`${path}: not an IDX file (magic number must start with two zero bytes)`);
  }
  if (raw[2] !== 0x08) {
    throw new DataError(
      `${path}: IDX type code 0x${raw[2]!.toString(16)} is not supported (expected 0x08, unsigned byte)`,
    );
  }
  const rank = raw[3]!;
  if (expectedRank !== undefined && rank !== expectedRank) {
    throw new DataError(`${path}: IDX file has ${rank} dimensions, expected ${expectedRank}`);
  }
  const header = 4 + 4 * rank;
  if (raw.length < header) throw new DataError(`${path}: truncated IDX header`);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(raw.readUInt32BE(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  if (raw.length - header < size) {
    throw new DataError(
      `${path}: truncated: header promises ${size} bytes of data, file has ${raw.length - header}`,
    );
  }
  return { dims, data: new Uint8Array(raw.buffer, raw.byteOffset + header, size) };
}

/** Reads an images file ([n, h, w]) and its labels file ([n]) into an ImageSet. */
export function readIdxImageSet(imagesPath: string, labelsPath: string, numClasses = 10): ImageSet {
  const images = readIdx(imagesPath, 3);
  const labels = readIdx(labelsPath, 1);
  const [n, h, w] = images.dims as [number, number, number];
  if (labels.dims[0] !== n) {
    throw new DataError(`${labelsPath}: has ${labels.dims[0]} labels but ${imagesPath} has ${n} images`);
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = labels.data[i]!;
    if (l >= numClasses)
      throw new DataError(`${labelsPath}: label ${l} at index ${i} is outside 0..${numClasses - 1}`);
    out[i] = l;
  }
  return { pixels: images.data, labels: out, height: h, width: w, channels: 1 };
}
