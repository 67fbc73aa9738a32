/**
 * The tiny ONNX model the ONNX tests share: x [n, 1, 28, 28] -> Flatten -> MatMul W [784, 8] ->
 * y [n, 8], an 8-d feature extractor for 28x28 grey images, written with longtail's own protobuf
 * bindings. W is embedded (raw bytes) or external (an entry naming a file, as ONNX stores it).
 */
import { writeFileSync } from 'node:fs';
import { onnx } from '../../src/models/onnx-file.ts';

/** Input pixels (28 x 28) and output features. */
export const MATMUL_IN = 28 * 28;
export const MATMUL_OUT = 8;
/** W's size in bytes (float32), as an external entry's `length` string. */
export const MATMUL_BYTES = String(MATMUL_IN * MATMUL_OUT * 4);

/** The weight [784, 8], deterministic and all different. */
export function matmulWeight(): Float32Array {
  const w = new Float32Array(MATMUL_IN * MATMUL_OUT);
  for (let i = 0; i < w.length; i++) w[i] = (((i * 7919) % 211) - 105) / 1000;
  return w;
}

/**
 * Writes the model to `path`; `external` gives W's external entry (location, offset and length as
 * strings, as ONNX stores them; a missing key is left out) instead of embedding it.
 */
export function matmulModel(
  path: string,
  external?: { location: string; offset?: string; length?: string },
): void {
  const init = external
    ? {
        name: 'W',
        dims: [MATMUL_IN, MATMUL_OUT],
        dataType: 1,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: Object.entries(external)
          .filter(([, v]) => v !== undefined)
          .map(([key, value]) => ({ key, value })),
      }
    : {
        name: 'W',
        dims: [MATMUL_IN, MATMUL_OUT],
        dataType: 1,
        rawData: new Uint8Array(matmulWeight().buffer),
      };
  const m = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'matmul',
      input: [
        {
          name: 'x',
          type: {
            tensorType: {
              elemType: 1,
              shape: { dim: [{ dimParam: 'n' }, { dimValue: 1 }, { dimValue: 28 }, { dimValue: 28 }] },
            },
          },
        },
      ],
      output: [{ name: 'y' }],
      node: [
        { opType: 'Flatten', input: ['x'], output: ['f'], attribute: [{ name: 'axis', type: 2, i: 1 }] },
        { opType: 'MatMul', input: ['f', 'W'], output: ['y'] },
      ],
      initializer: [init],
    },
  });
  writeFileSync(path, onnx.ModelProto.encode(m).finish());
}

/** W's bytes at `offset` in a file (filler before it), `cut` bytes short. */
export function matmulWeightFile(path: string, offset: number, cut = 0): void {
  const raw = new Uint8Array(matmulWeight().buffer);
  const buf = new Uint8Array(offset + raw.length - cut);
  buf.fill(7, 0, offset);
  buf.set(raw.subarray(0, raw.length - cut), offset);
  writeFileSync(path, buf);
}
