import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maxRelErr, randomArray } from '../../test/helpers/arrays.ts';
import { loadNativeAddon } from '../native-addon.ts';
import { createRng } from '../random/rng.ts';
import { initBackend } from './backend.ts';
import { type HeadKernels, nativeHeadKernels, tsHeadKernels } from './native-head.ts';

/** The kernel sets to check: TypeScript always, native where the addon is built and enabled. */
const sets: [string, () => HeadKernels | null][] = [
  ['typescript', () => tsHeadKernels],
  ['native', () => nativeHeadKernels()],
];

/** Shapes with batch sizes on and off the 8-lane vectors, one class to many. */
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 8, 5],
  [7, 13, 4],
  [16, 21, 9],
  [37, 40, 17],
];

describe('stage-2 head kernels against a plain double-precision reference', () => {
  for (const [name, get] of sets) {
    it(`${name}: transpose, products, forward statistics, gradient sums and SGD`, async (t) => {
      const k = get();
      if (k === null) return t.skip('native addon not available');
      await initBackend('wasm');
      for (const [seed, [Cw, B, d]] of SHAPES.entries()) {
        for (const variant of [0, 1, 2, 3]) {
          const rng = createRng(100 + seed, variant);
          const tag = `${name} Cw ${Cw} B ${B} d ${d} variant ${variant}`;
          const scale = variant & 1 ? Float32Array.from(randomArray(Cw, rng), (v) => 1 + 0.3 * v) : null;
          const offset = variant & 2 ? Float32Array.from(randomArray(Cw, rng), (v) => 2 * v) : null;
          const x = randomArray(B * d, rng);
          const w = randomArray(Cw * d, rng);
          const bias = randomArray(Cw, rng);
          // transpose: xt [d, B]
          const xt = new Float32Array(d * B);
          k.transpose(x, xt, B, d);
          for (let r = 0; r < B; r++)
            for (let j = 0; j < d; j++) assert.equal(xt[j * B + r], x[r * d + j], `${tag}: transpose`);
          // products: a [Cw, B] = W X^T
          const a = new Float32Array(Cw * B);
          k.matmul(w, xt, a, Cw, d, B);
          const ref = new Float64Array(Cw * B);
          for (let c = 0; c < Cw; c++)
            for (let r = 0; r < B; r++) {
              let s = 0;
              for (let j = 0; j < d; j++) s += w[c * d + j]! * x[r * d + j]!;
              ref[c * B + r] = s;
            }
          assert.ok(maxRelErr(a, ref) < 1e-5, `${tag}: product`);
          // forward statistics, from the float products (so only the fused pass is checked here).
          const e = new Float32Array(Cw * B);
          const max = new Float32Array(B);
          const sum = new Float32Array(B);
          const prod = a.slice();
          k.forward(a, bias, scale, offset, e, max, sum, Cw, B);
          const z = (c: number, r: number) =>
            (prod[c * B + r]! + bias[c]!) * (scale ? scale[c]! : 1) + (offset ? offset[c]! : 0);
          for (let r = 0; r < B; r++) {
            let m = -Infinity;
            for (let c = 0; c < Cw; c++) m = Math.max(m, z(c, r));
            let s = 0;
            for (let c = 0; c < Cw; c++) {
              const ex = Math.exp(z(c, r) - m);
              s += ex;
              assert.ok(Math.abs(e[c * B + r]! - ex) < 2e-6, `${tag}: exp ${e[c * B + r]} vs ${ex}`);
              assert.ok(Math.abs(a[c * B + r]! - (prod[c * B + r]! + bias[c]!)) < 1e-5, `${tag}: a`);
            }
            assert.ok(Math.abs(max[r]! - m) < 1e-5 * Math.max(1, Math.abs(m)), `${tag}: max`);
            assert.ok(Math.abs(sum[r]! - s) < 1e-5 * s, `${tag}: sum ${sum[r]} vs ${s}`);
          }
          // gradient: g = e f - onehot hv; sums over rows, plain and times a.
          const f = Float32Array.from(randomArray(B, rng), (v) => Math.abs(v) / B);
          const hv = Float32Array.from(randomArray(B, rng), (v) => 1 + Math.abs(v));
          const hot = Int32Array.from({ length: B }, () => Math.floor(rng.next() * (Cw + 2)) - 1);
          hot[0] = Math.min(Cw - 1, 0); // at least one label here
          for (const withA of [false, true]) {
            const g = e.slice();
            const out = new Float32Array(Cw);
            k.backward(g, f, hot, hv, withA ? a : null, out, Cw, B);
            for (let c = 0; c < Cw; c++) {
              let s = 0;
              let scaleRef = 0;
              for (let r = 0; r < B; r++) {
                const gr = e[c * B + r]! * f[r]! - (hot[r] === c ? hv[r]! : 0);
                assert.ok(Math.abs(g[c * B + r]! - gr) < 1e-6 * Math.max(1, Math.abs(gr)), `${tag}: g`);
                const term = withA ? gr * a[c * B + r]! : gr;
                s += term;
                scaleRef += Math.abs(term);
              }
              assert.ok(
                Math.abs(out[c]! - s) < 1e-6 * Math.max(1, scaleRef),
                `${tag}: row sum ${out[c]} vs ${s}`,
              );
            }
          }
          // SGD (PyTorch's rule) over an odd length, from a nonzero momentum buffer.
          const n = Cw * d + 3;
          const p = randomArray(n, rng);
          const grad = randomArray(n, rng);
          const buf = randomArray(n, rng);
          const [p0, b0] = [p.slice(), buf.slice()];
          k.sgd(p, grad, buf, 0.9, 5e-4, 0.1);
          for (let i = 0; i < n; i++) {
            const bRef = 0.9 * b0[i]! + (grad[i]! + 5e-4 * p0[i]!);
            assert.ok(Math.abs(buf[i]! - bRef) < 1e-6 * Math.max(1, Math.abs(bRef)), `${tag}: momentum`);
            assert.ok(
              Math.abs(p[i]! - (p0[i]! - 0.1 * bRef)) < 1e-6 * Math.max(1, Math.abs(p0[i]!)),
              `${tag}: sgd`,
            );
          }
        }
      }
    });
  }

  it('native and TypeScript kernels agree within float rounding on a head-sized step', async (t) => {
    const nat = nativeHeadKernels();
    if (nat === null) return t.skip('native addon not available');
    await initBackend('wasm');
    const [Cw, B, d] = [123, 61, 48];
    const rng = createRng(7);
    const x = randomArray(B * d, rng);
    const w = Float32Array.from(randomArray(Cw * d, rng), (v) => 0.5 * v);
    const bias = randomArray(Cw, rng);
    const scale = Float32Array.from(randomArray(Cw, rng), (v) => 1 + 0.2 * v);
    const offset = randomArray(Cw, rng);
    const run = (k: HeadKernels) => {
      const xt = new Float32Array(d * B);
      const a = new Float32Array(Cw * B);
      const e = new Float32Array(Cw * B);
      const [max, sum] = [new Float32Array(B), new Float32Array(B)];
      k.transpose(x, xt, B, d);
      k.matmul(w, xt, a, Cw, d, B);
      k.forward(a, bias, scale, offset, e, max, sum, Cw, B);
      const f = Float32Array.from(sum, (s) => 1 / (s * B));
      const hot = Int32Array.from({ length: B }, (_, r) => (r * 7) % (Cw + 5));
      const hv = new Float32Array(B).fill(1 / B);
      const ds = new Float32Array(Cw);
      k.backward(e, f, hot, hv, a, ds, Cw, B);
      const dw = new Float32Array(Cw * d);
      k.matmul(e, x, dw, Cw, B, d);
      return { a, e, max, sum, ds, dw };
    };
    const got = run(nat);
    const ref = run(tsHeadKernels);
    for (const key of ['a', 'e', 'max', 'sum', 'ds', 'dw'] as const)
      assert.ok(maxRelErr(got[key], ref[key]) < 1e-5, `${key}: ${maxRelErr(got[key], ref[key])}`);
  });

  it('native product: bit-identical to the addon matmul, and near a double reference, across block sizes', (t) => {
    const nat = nativeHeadKernels();
    const addon = loadNativeAddon();
    if (nat === null || addon === null) return t.skip('native addon not available');
    const rng = createRng(9);
    // Shapes crossing the packed product's blocks (12-row strips, 32-column panels, 256-deep and
    // 256-wide blocks) and their tails, and cRT's backward at ImageNet-LT's size (G^T X).
    for (const [M, K, N] of [
      [1, 1, 1],
      [13, 7, 5],
      [25, 300, 33],
      [97, 513, 70],
      [130, 260, 40],
      [37, 600, 300],
      [500, 128, 2048],
    ] as [number, number, number][]) {
      const a = randomArray(M * K, rng);
      const b = randomArray(K * N, rng);
      const c = new Float32Array(M * N);
      nat.matmul(a, b, c, M, K, N);
      const heap = new Float32Array(M * K + K * N + M * N);
      heap.set(a, 0);
      heap.set(b, M * K);
      addon.matmul(heap.buffer, 0, 4 * M * K, 4 * (M * K + K * N), Int32Array.of(1, 1, M, K, N));
      assert.deepEqual(c, heap.subarray(M * K + K * N), `${M}x${K}x${N}: bit-identical`);
      const ref = new Float64Array(M * N);
      for (let i = 0; i < M; i++)
        for (let k = 0; k < K; k++) {
          const v = a[i * K + k]!;
          for (let j = 0; j < N; j++) ref[i * N + j] = ref[i * N + j]! + v * b[k * N + j]!;
        }
      assert.ok(maxRelErr(c, ref) < 1e-5, `${M}x${K}x${N}: ${maxRelErr(c, ref)}`);
    }
  });

  it('A x^T from the batch rows, A plain or packed once: bit-identical to transpose + product', (t) => {
    const rng = createRng(10);
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [13, 7, 5],
      [25, 300, 33],
      [97, 1030, 70],
      [130, 513, 129],
      [30, 260, 290],
    ];
    for (const [name, get] of sets) {
      const k = get();
      if (k === null) {
        t.diagnostic(`${name}: native addon not available`);
        continue;
      }
      for (const [M, K, N] of shapes) {
        const tag = `${name} ${M}x${K}x${N}`;
        const a = randomArray(M * K, rng);
        const x = randomArray(N * K, rng); // [N, K]
        const xt = new Float32Array(K * N);
        k.transpose(x, xt, N, K);
        const want = new Float32Array(M * N);
        k.matmul(a, xt, want, M, K, N);
        const got = new Float32Array(M * N).fill(Number.NaN);
        k.matmulNT(a, false, x, got, M, K, N);
        assert.deepEqual(got, want, `${tag}: plain`);
        const packed = k.packA(a, M, K);
        if (name === 'typescript') assert.equal(packed, null);
        if (packed === null) continue;
        assert.equal(packed.length, Math.ceil(M / 12) * 12 * K);
        assert.equal(k.packedSize(M, K), packed.length);
        // Packed into a caller's array, shared with worker threads: the same floats.
        const into = new Float32Array(new SharedArrayBuffer(4 * packed.length)).fill(Number.NaN);
        assert.equal(k.packA(a, M, K, into), into);
        assert.deepEqual(into, packed, `${tag}: packed into a shared array`);
        // The same packed weight against several batches (LWS: packed once, used every step).
        for (let rep = 0; rep < 2; rep++) {
          const y = randomArray(N * K, rng);
          const yt = new Float32Array(K * N);
          k.transpose(y, yt, N, K);
          k.matmul(a, yt, want, M, K, N);
          got.fill(Number.NaN);
          k.matmulNT(packed, true, y, got, M, K, N);
          assert.deepEqual(got, want, `${tag}: packed, batch ${rep}`);
        }
      }
    }
    // Refusals name the function and the argument.
    const nat = nativeHeadKernels();
    assert.equal(tsHeadKernels.packedSize(24, 5), 0);
    if (nat?.packA(new Float32Array(4), 2, 2)) {
      assert.throws(
        () => nat.packA(new Float32Array(4), 2, 2, new Float32Array(nat.packedSize(2, 2) - 1)),
        /headPackA: out must be a Float32Array of headPackedSize\(M, K\)/,
      );
    }
    if (nat?.packA(new Float32Array(4), 2, 2))
      assert.throws(
        () => nat.matmulNT(new Float32Array(3), true, new Float32Array(4), new Float32Array(4), 2, 2, 2),
        /headMatmulNT: a must be a Float32Array of M \* K \(packed: headPackA's\)/,
      );
    assert.throws(
      () =>
        tsHeadKernels.matmulNT(new Float32Array(4), true, new Float32Array(4), new Float32Array(4), 2, 2, 2),
      /no packed product in the TypeScript kernels/,
    );
  });

  it('A x^T with the batch rows picked from x by index (LWS: no gathered copy): bit-identical to gather + product', (t) => {
    const rng = createRng(11);
    // Rows repeated and out of order; N past one 256-column block, K past one 256-deep block.
    const shapes: [number, number, number, number][] = [
      [1, 1, 1, 1],
      [13, 7, 5, 9],
      [25, 300, 33, 40],
      [30, 260, 290, 50],
    ];
    for (const [name, get] of sets) {
      const k = get();
      if (k === null) {
        t.diagnostic(`${name}: native addon not available`);
        continue;
      }
      for (const [M, K, N, n] of shapes) {
        const tag = `${name} ${M}x${K}x${N} from ${n} rows`;
        const a = randomArray(M * K, rng);
        const x = randomArray(n * K, rng);
        const rows = Int32Array.from({ length: N }, () => Math.floor(rng.next() * n));
        rows[0] = n - 1; // the last row of x, whose end is x's end
        const g = new Float32Array(N * K); // the gathered batch, then the plain reference
        for (let j = 0; j < N; j++) g.set(x.subarray(rows[j]! * K, (rows[j]! + 1) * K), j * K);
        const gt = new Float32Array(K * N);
        k.transpose(g, gt, N, K);
        const want = new Float32Array(M * N);
        k.matmul(a, gt, want, M, K, N);
        const got = new Float32Array(M * N).fill(Number.NaN);
        k.matmulNTRows(a, false, x, rows, got, M, K, N);
        assert.deepEqual(got, want, `${tag}: plain`);
        const packed = k.packA(a, M, K);
        if (packed === null) continue;
        got.fill(Number.NaN);
        k.matmulNTRows(packed, true, x, rows, got, M, K, N);
        assert.deepEqual(got, want, `${tag}: packed`);
      }
      // An index outside x is refused before anything is written.
      const c = new Float32Array(4).fill(7);
      assert.throws(
        () =>
          k.matmulNTRows(new Float32Array(4), false, new Float32Array(6), Int32Array.of(0, 3), c, 2, 2, 2),
        name === 'native'
          ? /headMatmulNTRows: a row index is outside x/
          : /row index 3 is outside the 3 rows/,
      );
      assert.deepEqual(c, new Float32Array(4).fill(7));
    }
  });
});

describe('stage-2 row kernels (NCM centroids and scores, evaluation logits)', () => {
  it('by hand: centring and normalising, class sums, logits with bias, NCM distances', () => {
    for (const [name, get] of sets) {
      const k = get();
      if (k === null) continue;
      const mean = new Float32Array(2);
      k.meanRows(Float32Array.of(1, 4, 3, 8), 2, 2, 2, mean);
      assert.deepEqual(Array.from(mean), [2, 6], name);
      const out = new Float32Array(6);
      // [5, 10] - [2, 6] = [3, 4] -> [0.6, 0.8]; a row equal to the mean stays 0 (norm clamped).
      k.transformRows(Float32Array.of(5, 10, 2, 6, -1, 6), mean, out, 3, 2);
      assert.deepEqual(Array.from(out), [0.6, 0.8, 0, 0, -1, 0].map(Math.fround), name);
      const sums = new Float32Array(4);
      k.addRows(Float32Array.of(1, 2, 3, 4, 5, 6), Int32Array.of(1, 0, 1), sums, 3, 2, 2);
      assert.deepEqual(Array.from(sums), [3, 4, 6, 8], name);
      // zt [C=2, m=2]: class-major products; out row-major with the bias, from offset 1.
      const z = new Float32Array(5);
      k.logitRows(Float32Array.of(1, 2, 3, 4), 2, 2, z, 1, Float32Array.of(10, 20), null, null, 2);
      assert.deepEqual(Array.from(z), [0, 11, 23, 12, 24], name);
      // NCM: x = [0.6, 0.8], c0 = [1, 0], c1 = [0.6, 0.8]: -||x - c|| = -sqrt(0.8), 0.
      const x = Float32Array.of(0.6, 0.8);
      const dot = [Math.fround(0.6), Math.fround(0.6 * 0.6 + 0.8 * 0.8)];
      const s = new Float32Array(2);
      k.logitRows(Float32Array.from(dot), 2, 1, s, 0, null, Float32Array.of(1, dot[1]!), x, 2);
      assert.ok(Math.abs(s[0]! + Math.sqrt(0.8)) < 1e-6 && Math.abs(s[1]!) < 1e-3, `${name}: ${s}`);
      assert.throws(
        () => k.addRows(Float32Array.of(1, 2), Int32Array.of(2), new Float32Array(4), 1, 2, 2),
        /a label is outside 0 .. C-1/,
      );
    }
  });

  it("native: the TypeScript kernels' bits over random shapes, clamps and NaN", (t) => {
    const nat = nativeHeadKernels();
    if (nat === null || !nat.native) return t.skip('native addon not available');
    for (let seed = 0; seed < 24; seed++) {
      const rng = createRng(500 + seed);
      const n = 1 + Math.floor(rng.next() * 70);
      const d = 1 + Math.floor(rng.next() * 90);
      const C = 1 + Math.floor(rng.next() * 75);
      const tag = `seed ${seed} n ${n} d ${d} C ${C}`;
      const f = randomArray(n * d, rng);
      for (let i = 0; i < n * d; i++) f[i] = f[i]! * 3 + 1; // off-centre, so centring matters
      if (seed % 4 === 0) f.fill(0.25, 0, d); // a row that may equal the mean
      const mTs = new Float32Array(d);
      const mNat = new Float32Array(d);
      tsHeadKernels.meanRows(f, n, d, n, mTs);
      nat.meanRows(f, n, d, n, mNat);
      assert.deepEqual(mNat, mTs, `${tag}: mean`);
      for (const mean of [mTs, null]) {
        const a = new Float32Array(n * d);
        const b = new Float32Array(n * d);
        tsHeadKernels.transformRows(f, mean, a, n, d);
        nat.transformRows(f, mean, b, n, d);
        assert.deepEqual(b, a, `${tag}: transform ${mean ? 'cl2n' : 'l2n'}`);
      }
      const labels = Int32Array.from({ length: n }, () => Math.floor(rng.next() * C));
      const cTs = randomArray(C * d, rng);
      const cNat = cTs.slice();
      tsHeadKernels.addRows(f, labels, cTs, n, d, C);
      nat.addRows(f, labels, cNat, n, d, C);
      assert.deepEqual(cNat, cTs, `${tag}: class sums`);
      // zt [C, n]; sq chosen so some distances go below 0 (clamped) and one is NaN.
      const zt = randomArray(C * n, rng);
      const sq = Float32Array.from(randomArray(C, rng), (v) => v * 4);
      sq[0] = Number.NaN;
      const bias = randomArray(C, rng);
      for (const [b, q] of [
        [bias, null],
        [null, null],
        [null, sq],
      ] as const) {
        const off = seed % 3;
        const want = new Float32Array(off + n * C).fill(7);
        const got = new Float32Array(off + n * C).fill(7);
        tsHeadKernels.logitRows(zt, C, n, want, off, b, q, q ? f : null, d);
        nat.logitRows(zt, C, n, got, off, b, q, q ? f : null, d);
        const bad = got.findIndex((v, i) => !Object.is(v, want[i]));
        assert.equal(
          bad,
          -1,
          `${tag}: logits ${b ? 'bias' : q ? 'ncm' : 'plain'} at ${bad}: ${got[bad]} vs ${want[bad]}`,
        );
      }
    }
    // Refusals name the function and the argument.
    assert.throws(
      () => nat.logitRows(new Float32Array(4), 2, 2, new Float32Array(4), 1, null, null, null, 1),
      /headLogitRows: out must hold offset \+ m \* C floats/,
    );
    assert.throws(
      () =>
        nat.logitRows(new Float32Array(4), 2, 2, new Float32Array(4), 0, null, new Float32Array(2), null, 3),
      /headLogitRows: x must be a Float32Array of m \* d \(required with sq\)/,
    );
    assert.throws(
      () => nat.transformRows(new Float32Array(6), null, new Float32Array(5), 2, 3),
      /headTransformRows: out must be a Float32Array of n \* d/,
    );
  });

  it('rowsProduct: the bits of matmulNT + logitRows (bias, plain, NCM distance) over random shapes, K blocks and NaN', (t) => {
    const nat = nativeHeadKernels();
    if (nat === null || nat.panelsSize(1, 1) === 0) return t.skip('AVX-512 rows product not available');
    // K past 512 (two blocks, the chains continued through out), C off the 32-class panels, m off
    // the 12-row strips and under 8 (the sums' eight-row groups).
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [5, 7, 33],
      [13, 17, 40],
      [25, 64, 31],
      [12, 9, 513],
      [30, 600, 70],
      [7, 1100, 5],
    ];
    for (const [seed, [m, K, C]] of shapes.entries()) {
      const rng = createRng(900 + seed);
      const tag = `m ${m} K ${K} C ${C}`;
      const x = randomArray(m * K, rng);
      const w = randomArray(C * K, rng);
      const sq = Float32Array.from(randomArray(C, rng), (v) => v * v * K * 0.3); // some distances clamp at 0
      if (C > 2) sq[2] = Number.NaN;
      if (m > 1) x[K] = Number.NaN; // row 1 is NaN throughout
      const bias = randomArray(C, rng);
      const panels: Float32Array = nat.packPanels(w, C, K)!;
      assert.equal(panels.length, nat.panelsSize(C, K), `${tag}: panels' size`);
      const zt = new Float32Array(C * m);
      nat.matmulNT(w, false, x, zt, C, K, m);
      for (const [b, q] of [
        [bias, null],
        [null, null],
        [null, sq],
      ] as const) {
        const off = seed % 3;
        const want = new Float32Array(off + m * C + 2).fill(7);
        const got = new Float32Array(off + m * C + 2).fill(7);
        nat.logitRows(zt, C, m, want, off, b, q, q ? x : null, K);
        nat.rowsProduct(panels, x, m, K, C, got, off, b, q);
        const bad = got.findIndex((v, i) => !Object.is(v, want[i]));
        const what = b ? 'bias' : q ? 'ncm' : 'plain';
        assert.equal(bad, -1, `${tag}: ${what} at ${bad}: ${got[bad]} vs ${want[bad]}`);
      }
    }
    // A by-hand case: x = [3, 4], centroids (0, 0) and (3, 0): distances 5 and 4, so -5 and -4.
    const p = nat.packPanels(Float32Array.of(0, 0, 3, 0), 2, 2)!;
    const out = new Float32Array(2);
    nat.rowsProduct(p, Float32Array.of(3, 4), 1, 2, 2, out, 0, null, Float32Array.of(0, 9));
    assert.deepEqual([...out], [-5, -4]);
    assert.throws(
      () => nat.rowsProduct(p, Float32Array.of(3, 4), 1, 2, 2, new Float32Array(2), 1, null, null),
      /headRowsProduct: out must hold offset \+ m \* C floats/,
    );
    assert.throws(
      () =>
        nat.rowsProduct(
          p,
          Float32Array.of(3, 4),
          1,
          2,
          2,
          out,
          0,
          Float32Array.of(1, 2),
          Float32Array.of(0, 9),
        ),
      /headRowsProduct: bias and sq cannot both be given/,
    );
    assert.throws(
      () => nat.rowsProduct(new Float32Array(3), Float32Array.of(3, 4), 1, 2, 2, out, 0, null, null),
      /headRowsProduct: panels must be a Float32Array of headPanelsSize\(C, K\)/,
    );
  });

  it("moveColumns: LWS's kept products between row-major and class-major, by hand and native = TypeScript", () => {
    // src class-major [Cw = 3, ld 4]: (j, c) at c * 4 + j holds 10 c + j.
    const src = Float32Array.from({ length: 12 }, (_, i) => 10 * Math.floor(i / 4) + (i % 4));
    for (const [name, k] of [
      ['typescript', tsHeadKernels],
      ['native', nativeHeadKernels()],
    ] as const) {
      if (k === null) continue;
      // Columns 3 and 1 into rows 0 and 2 of a row-major [3 rows, ld 5].
      const rm = new Float32Array(15).fill(-1);
      k.moveColumns(src, false, Int32Array.of(3, 1), 4, rm, true, Int32Array.of(0, 2), 5, 2, 3);
      assert.deepEqual([...rm], [3, 13, 23, -1, -1, -1, -1, -1, -1, -1, 1, 11, 21, -1, -1], name);
      // And back into columns 2 and 0 of a class-major [3, ld 3].
      const cm = new Float32Array(9).fill(-1);
      k.moveColumns(rm, true, Int32Array.of(0, 2), 5, cm, false, Int32Array.of(2, 0), 3, 2, 3);
      assert.deepEqual([...cm], [1, -1, 3, 11, -1, 13, 21, -1, 23], name);
    }
    const nat = nativeHeadKernels();
    if (nat === null) return;
    // An index reaching outside its array is refused, nothing written.
    const dst = new Float32Array(9).fill(-1);
    assert.throws(
      () => nat.moveColumns(src, false, Int32Array.of(4), 4, dst, false, Int32Array.of(0), 3, 1, 3),
      /headMoveColumns: an index reaches outside its array/,
    );
    assert.deepEqual([...dst], new Array(9).fill(-1));
  });
});

describe('argmaxColumns: tfjs mul, add and argMax to the answer', () => {
  it('native and TypeScript give tf.argMax(z * scale + shift) over random shapes, ties, -0 and NaN', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    await initBackend('wasm');
    const nat = nativeHeadKernels();
    const kernels: [string, HeadKernels][] = [['typescript', tsHeadKernels]];
    if (nat?.native) kernels.push(['native', nat]);
    for (let seed = 0; seed < 40; seed++) {
      const rng = createRng(900 + seed);
      const m = 1 + Math.floor(rng.next() * 9);
      const C = 1 + Math.floor(rng.next() * (seed % 2 ? 70 : 15));
      // Few distinct values, so ties are common; some rows with -0 / +0, NaN or -Infinity.
      const z = Float32Array.from({ length: m * C }, () => Math.round(rng.next() * 4) / 4 - 0.5);
      if (seed % 5 === 1) z.fill(0).fill(-0, 0, Math.floor(z.length / 2));
      if (seed % 7 === 2) z[Math.floor(rng.next() * z.length)] = Number.NaN;
      if (seed % 7 === 3) z[0] = Number.NaN; // a row's first value
      if (seed % 6 === 4) z.fill(Number.NEGATIVE_INFINITY, 0, Math.min(z.length, C + 3));
      const scale = seed % 3 === 0 ? null : Float32Array.from({ length: C }, () => 0.5 + rng.next());
      const shift =
        seed % 4 === 0 ? null : Float32Array.from({ length: C }, () => Math.round(rng.next() * 2) / 4);
      const want = tf.tidy(() => {
        let y: import('@tensorflow/tfjs-core').Tensor = tf.tensor2d(z, [m, C]);
        if (scale) y = tf.mul(y, tf.tensor1d(scale));
        if (shift) y = tf.add(y, tf.tensor1d(shift));
        return Array.from(tf.argMax(y, 1).dataSync());
      });
      for (const [name, k] of kernels) {
        const got = new Int32Array(m).fill(-1);
        k.argmaxColumns(z, m, C, scale, shift, got);
        assert.deepEqual([...got], want, `${name} seed ${seed} m ${m} C ${C}`);
      }
    }
  });
});
