/**
 * Time of NCM as the `stage2 ncm` bench case runs it (centroids from the training features, then
 * the test split's scores), split into its parts, wall and CPU ms, on the bench's synthetic
 * 100,000 x 512 features (1000 classes) or a feature file.
 *
 *   node --import tsx bench/profile-ncm.ts [--file F.npz] [--repeats 3] [--parts]
 *
 * --parts also times the scores' kernels one by one over the same blocks as the classifier
 * (transform, product, distance epilogue), each summed over the blocks.
 * For a sampling profile: `node --cpu-prof --cpu-prof-dir DIR --import tsx bench/profile-ncm.ts`,
 * then `node bench/cpuprofile-top.mjs DIR/*.cpuprofile`.
 */
import { initBackend } from '../src/backend/backend.ts';
import { headKernels } from '../src/backend/native-head.ts';
import { bigFloats } from '../src/classifiers/linear-ops.ts';
import { ncm } from '../src/classifiers/ncm.ts';
import { defaultChunkRows } from '../src/eval/metrics.ts';
import { loadFeatureFile } from '../src/features/feature-set.ts';
import { syntheticFeatures } from './synthetic.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const file = arg('file', '');
const repeats = Number(arg('repeats', '3'));
const parts = process.argv.includes('--parts');

await initBackend('wasm');
const fs = file ? loadFeatureFile(file) : syntheticFeatures(false);
const cpu = (c: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(c);
  return (u.user + u.system) / 1000;
};
const ms = (t: number, c: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(c);
  return `${(performance.now() - t).toFixed(0)} ms wall, ${((u.user + u.system) / 1000).toFixed(0)} ms CPU (${(u.system / 1000).toFixed(0)} system)`;
};
for (let r = 0; r < repeats; r++) {
  let t = performance.now();
  let c = process.cpuUsage();
  const clf = ncm(fs);
  const fit = ms(t, c);
  t = performance.now();
  c = process.cpuUsage();
  clf.logits(fs.test.features, fs.test.labels.length);
  process.stdout.write(`centroids ${fit}; test scores ${ms(t, c)}\n`);
  if (!parts) continue;
  // The scores' parts, block by block as LinearRows.compute runs them.
  const k = headKernels();
  const spec = clf.linear!;
  const { dim: d, numClasses: C } = fs;
  const n = fs.test.labels.length;
  const step = defaultChunkRows(C, d);
  const x = bigFloats(step * d);
  const zt = bigFloats(step * C);
  const out = bigFloats(n * C);
  const packed = k.packA(spec.weight, C, d)!;
  const mean = spec.transform.kind === 'cl2n' ? spec.transform.mean : null;
  const sum = { transform: 0, product: 0, epilogue: 0 };
  for (let s = 0; s < n; s += step) {
    const m = Math.min(step, n - s);
    let c0 = process.cpuUsage();
    k.transformRows(fs.test.features.subarray(s * d, (s + m) * d), mean, x, m, d);
    sum.transform += cpu(c0);
    c0 = process.cpuUsage();
    k.matmulNT(packed, true, x, zt, C, d, m);
    sum.product += cpu(c0);
    c0 = process.cpuUsage();
    k.logitRows(zt, C, m, out, s * C, null, spec.sqDistance ?? null, x, d);
    sum.epilogue += cpu(c0);
  }
  const gflop = (2 * n * C * d) / 1e9;
  process.stdout.write(
    `  parts (CPU ms): transform ${sum.transform.toFixed(0)}, product ${sum.product.toFixed(0)} ` +
      `(${(gflop / (sum.product / 1000)).toFixed(0)} GFLOP/s), epilogue ${sum.epilogue.toFixed(0)}\n`,
  );
}
