/**
 * An ONNX backbone whose input side is not the data's: the images reach the model resized by
 * the preprocessing contract's kernel (src/data/preprocess.ts), the only kernel longtail resizes
 * with, not by a second one (tfjs bilinear, before). The model is the shared Flatten->MatMul
 * (28 x 28 grey -> 8); the data are 40 x 40, so the resize shrinks, where an antialiased
 * triangle filter and plain bilinear interpolation differ.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/backend.ts';
import { resizeU8To } from '../src/data/preprocess.ts';
import { createOnnxBackbone } from '../src/models/onnx-backbone.ts';
import { MATMUL_IN, MATMUL_OUT, matmulModel, matmulWeight } from './helpers/onnx-models.ts';
import { tempDir } from './helpers/tmp.ts';

describe('ONNX backbone with another input side than the data', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it("resizes by the contract's kernel: the features of the contract-resized images", (t) => {
    const model = join(tempDir(), 'm.onnx');
    matmulModel(model);
    const n = 4;
    const S = 40;
    const u8 = Uint8Array.from({ length: n * S * S }, (_, i) => (i * 97 + ((i / S) | 0) * 13) % 256);
    const W = matmulWeight();
    /** The features in float64: (the image resized by the contract, / 255) x W. */
    const expected = (resize: (img: Uint8Array) => ArrayLike<number>) => {
      const f = new Float64Array(n * MATMUL_OUT);
      for (let k = 0; k < n; k++) {
        const x = resize(u8.subarray(k * S * S, (k + 1) * S * S));
        for (let i = 0; i < MATMUL_IN; i++)
          for (let j = 0; j < MATMUL_OUT; j++) f[k * MATMUL_OUT + j]! += x[i]! * W[i * MATMUL_OUT + j]!;
      }
      return f;
    };
    const contract = expected((img) => Float64Array.from(resizeU8To(img, S, S, 1, 28, 28), (v) => v / 255));
    // The second kernel longtail used before: tfjs bilinear with half-pixel centres.
    const bilinear = expected((img) =>
      tf.tidy(() =>
        tf.image
          .resizeBilinear(
            tf.tensor3d(
              Float32Array.from(img, (v) => v / 255),
              [S, S, 1],
            ),
            [28, 28],
            false,
            true,
          )
          .dataSync(),
      ),
    );
    const b = createOnnxBackbone({ path: model }, [S, S, 1]);
    let got: Float32Array;
    try {
      got = tf
        .tidy(() =>
          b.features(
            tf.tensor4d(
              Float32Array.from(u8, (v) => v / 255),
              [n, S, S, 1],
            ),
            false,
          ),
        )
        .dataSync() as Float32Array;
    } finally {
      b.dispose();
    }
    const rel = (a: ArrayLike<number>, ref: ArrayLike<number>) => {
      let num = 0;
      let den = 0;
      for (let i = 0; i < ref.length; i++) {
        num += (a[i]! - ref[i]!) ** 2;
        den += ref[i]! ** 2;
      }
      return Math.sqrt(num / den);
    };
    t.diagnostic(
      `relative L2 to the contract's resize ${rel(got, contract).toExponential(2)}; to bilinear ${rel(got, bilinear).toExponential(2)}`,
    );
    assert.ok(rel(got, contract) < 1e-6, `contract: ${rel(got, contract)}`);
    // The check can tell the kernels apart: bilinear is far from the contract here.
    assert.ok(rel(bilinear, contract) > 1e-3, `bilinear vs contract ${rel(bilinear, contract)}`);
  });
});
