/**
 * The preprocessing contract: longtail's resize (TypeScript) and examples/pytorch/longtail_preprocess.py
 * (NumPy) give the same uint8 pixels for the same PNG files, bit for bit; the resize matches
 * a hand-computed case and PIL's own antialiased bilinear within its 8-bit fixed-point rounding.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { tempDir } from '../../test/helpers/tmp.ts';
import { readNpy } from '../io/npy.ts';
import {
  checkContract,
  decodeAndResize,
  makeContract,
  resizedDims,
  resizeU8,
  resizeU8To,
} from './preprocess.ts';

const PY = '/usr/bin/python3';
const SCRIPT = resolve(import.meta.dirname, '../../examples/pytorch/longtail_preprocess.py');
const hasPil = spawnSync(PY, ['-c', 'import numpy, PIL'], { encoding: 'utf8' }).status === 0;

/** A small deterministic generator (mulberry32), so the images are the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('the contract resize', () => {
  it('is the identity at the same size and averages by hand-computed weights when halving', () => {
    const r = rng(1);
    const px = Uint8Array.from({ length: 8 * 8 * 3 }, () => Math.floor(r() * 256));
    assert.deepEqual(resizeU8(px, 8, 8, 3, 8, 'stretch'), px);
    // 4 -> 2 in one row: scale 2, triangle half-width 2 centred at 1 and 3. Output 0 takes
    // j = 0, 1, 2 at t = 0.25, 0.25, 0.75 -> weights .75, .75, .25 / 1.75.
    const row = Uint8Array.from([10, 20, 30, 200]);
    const out = resizeU8(row, 1, 4, 1, 2, 'stretch');
    // 2 x 1 output from a 1 x 4 row under stretch means the height is upsampled 1 -> 2 too
    // (a single source row: weight 1), so both rows equal the horizontal result.
    const h0 = Math.floor((0.75 * 10 + 0.75 * 20 + 0.25 * 30) / 1.75 + 0.5);
    const h1 = Math.floor((0.25 * 20 + 0.75 * 30 + 0.75 * 200) / 1.75 + 0.5);
    assert.deepEqual([...out], [h0, h1, h0, h1]);
  });

  it('crops the centre after resizing the shorter side', () => {
    assert.deepEqual(resizedDims(150, 100, 64, 'shorter-centre-crop'), [96, 64]);
    assert.deepEqual(resizedDims(53, 37, 64, 'shorter-centre-crop'), [92, 64]); // 91.68 -> 92
    assert.deepEqual(resizedDims(53, 37, 64, 'stretch'), [64, 64]);
  });

  it('resizeU8To: any output sides; square it is the stretch mode; a 1x4 row to 1x2 by hand', () => {
    // scale 2, support 2: output 0 (centre 1) takes 0, 40, 80 with weights .75, .75, .25;
    // output 1 (centre 3) takes 40, 80, 120 with .25, .75, .75 (divided by 1.75).
    assert.deepEqual(Array.from(resizeU8To(Uint8Array.from([0, 40, 80, 120]), 1, 4, 1, 1, 2)), [29, 91]);
    const src = Uint8Array.from({ length: 37 * 53 * 3 }, (_, i) => (i * 131 + 7) % 256);
    assert.deepEqual(resizeU8To(src, 37, 53, 3, 20, 20), resizeU8(src, 37, 53, 3, 20, 'stretch'));
    const flat = resizeU8To(new Uint8Array(5 * 3).fill(77), 5, 3, 1, 9, 4);
    assert.equal(flat.length, 36);
    assert.ok(flat.every((v) => v === 77));
  });

  it('checks a contract field by field, naming the field', () => {
    const c = makeContract({ size: 64, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    assert.deepEqual(checkContract(JSON.parse(JSON.stringify(c)), 'b.json'), c);
    assert.throws(
      () => checkContract({ ...c, resize: { kernel: 'lanczos3', mode: 'stretch' } }, 'run/backbone.json'),
      /^DataError: run\/backbone.json: preprocessing resize.kernel must be "triangle-antialias", got "lanczos3"$/,
    );
    assert.throws(() => checkContract({ ...c, std: [1, 0, 1] }, 'm'), /std must be positive/);
    assert.throws(() => checkContract({ ...c, version: 2 }, 'm'), /version must be 1, got 2/);
    assert.throws(
      () => checkContract({ ...c, gamma: 2.2 }, 'm'),
      /^DataError: m: preprocessing has unknown field gamma \(version 1 has version, decode/,
    );
    assert.throws(
      () => checkContract({ ...c, resize: { ...c.resize, antialias: false } }, 'm'),
      /m: preprocessing resize has unknown field antialias/,
    );
  });
});

describe('TypeScript and NumPy preprocess the same PNGs identically', {
  skip: !hasPil && 'no numpy/PIL',
}, () => {
  it('uint8 pixels equal exactly over 24 images of many shapes, grey, RGBA, up- and downscaled', async () => {
    const dir = tempDir();
    const r = rng(7);
    const paths: string[] = [];
    const shapes: [number, number, 1 | 3 | 4][] = [];
    for (let i = 0; i < 24; i++) {
      const w = 5 + Math.floor(r() * 300);
      const h = 5 + Math.floor(r() * 300);
      const ch = ([1, 3, 4] as const)[i % 3]!;
      shapes.push([w, h, ch]);
      // Smooth gradients plus noise: exercises both flat areas and edges.
      const raw = Buffer.alloc(w * h * ch);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++)
          for (let c = 0; c < ch; c++)
            raw[(y * w + x) * ch + c] = Math.min(
              255,
              Math.floor(((x + y * (c + 1)) * 255) / (w + h * 3) + r() * 40),
            );
      const p = join(dir, `im${i}.png`);
      await sharp(raw, { raw: { width: w, height: h, channels: ch } })
        .png()
        .toFile(p);
      paths.push(p);
    }
    for (const [size, mode] of [
      [64, 'shorter-centre-crop'],
      [224, 'shorter-centre-crop'],
      [32, 'stretch'],
    ] as const) {
      const out = join(dir, `py-${size}-${mode}.npy`);
      const py = spawnSync(PY, [SCRIPT, String(size), mode, out, ...paths], { encoding: 'utf8' });
      assert.equal(py.status, 0, py.stderr);
      const ref = readNpy(out);
      assert.deepEqual(ref.shape, [paths.length, size, size, 3]);
      for (let i = 0; i < paths.length; i++) {
        const ts = await decodeAndResize(readFileSync(paths[i]!), size, 3, mode);
        const want = (ref.data as Uint8Array).subarray(i * size * size * 3, (i + 1) * size * size * 3);
        let diff = 0;
        for (let k = 0; k < ts.length; k++) if (ts[k] !== want[k]) diff++;
        assert.equal(diff, 0, `image ${i} ${shapes[i]!.join('x')} at ${size} ${mode}: ${diff} values differ`);
      }
    }
  });

  it('is within one unit of PIL antialiased bilinear (PIL rounds to 8 bits between passes)', () => {
    const dir = tempDir();
    const out = join(dir, 'pil.npy');
    const code = `
import numpy as np
from PIL import Image
g = np.random.default_rng(3)
a = g.integers(0, 256, (37, 53, 3), dtype=np.uint8)
np.save('${out}', np.stack([a[:32, :32], np.asarray(Image.fromarray(a).resize((32, 32), Image.BILINEAR))]))
np.save('${out}.src.npy', a)
`;
    const py = spawnSync(PY, ['-c', code], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const src = readNpy(`${out}.src.npy`).data as Uint8Array;
    const pil = (readNpy(out).data as Uint8Array).subarray(32 * 32 * 3);
    const ours = resizeU8(src, 37, 53, 3, 32, 'stretch');
    let max = 0;
    for (let k = 0; k < ours.length; k++) max = Math.max(max, Math.abs(ours[k]! - pil[k]!));
    assert.ok(max <= 1, `max difference from PIL ${max}`);
  });
});
