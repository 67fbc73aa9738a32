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
import { ncm } from '../src/classifiers/ncm.ts';
import { defaultChunkRows } from '../src/eval/metrics.ts';
import { loadFeatureFile } from '../src/features/feature-set.ts';
import { bigFloats } from '../src/io/huge-pages.ts';
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
  // The parts, block by block as ncm() and LinearRows.compute run them.
  const k = headKernels();
  const spec = clf.linear!;
  const { dim: d, numClasses: C } = fs;
  const tr = fs.train;
  const nt = tr.labels.length;
  const sum = { mean: 0, trainTransform: 0, classSums: 0, transform: 0, product: 0 };
  let c0 = process.cpuUsage();
  k.meanRows(tr.features, nt, d, nt, new Float32Array(d));
  sum.mean += cpu(c0);
  const mean = spec.transform.kind === 'cl2n' ? spec.transform.mean : null;
  const cstep = Math.floor(65536 / d);
  const xb = new Float32Array(cstep * d);
  const sums = new Float32Array(C * d);
  for (let s = 0; s < nt; s += cstep) {
    const m = Math.min(cstep, nt - s);
    c0 = process.cpuUsage();
    k.transformRows(tr.features.subarray(s * d, (s + m) * d), mean, xb, m, d);
    sum.trainTransform += cpu(c0);
    c0 = process.cpuUsage();
    k.addRows(xb, tr.labels.subarray(s, s + m), sums, m, d, C);
    sum.classSums += cpu(c0);
  }
  const n = fs.test.labels.length;
  const step = defaultChunkRows(C, d);
  const x = bigFloats(step * d);
  const out = bigFloats(n * C);
  out.fill(0); // faulted in here, not in the product
  const panels = k.packPanels(spec.weight, C, d)!;
  for (let s = 0; s < n; s += step) {
    const m = Math.min(step, n - s);
    c0 = process.cpuUsage();
    k.transformRows(fs.test.features.subarray(s * d, (s + m) * d), mean, x, m, d);
    sum.transform += cpu(c0);
    c0 = process.cpuUsage();
    k.rowsProduct(panels, x, m, d, C, out, s * C, null, spec.sqDistance ?? null);
    sum.product += cpu(c0);
  }
  const gflop = (2 * n * C * d) / 1e9;
  process.stdout.write(
    `  parts (CPU ms): mean ${sum.mean.toFixed(0)}, train transform ${sum.trainTransform.toFixed(0)}, ` +
      `class sums ${sum.classSums.toFixed(0)}; test transform ${sum.transform.toFixed(0)}, ` +
      `product + distance ${sum.product.toFixed(0)} (${(gflop / (sum.product / 1000)).toFixed(0)} GFLOP/s)\n`,
  );
}
