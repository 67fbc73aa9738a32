/**
 * Time of NCM as the `stage2 ncm` bench case runs it (centroids from the training features, then
 * the test split's scores), split into its parts, wall and CPU ms, on the bench's synthetic
 * 100,000 x 512 features (1000 classes) or a feature file.
 *
 *   node --import tsx bench/profile-ncm.ts [--file F.npz] [--repeats 3]
 *
 * For a sampling profile: `node --cpu-prof --cpu-prof-dir DIR --import tsx bench/profile-ncm.ts`,
 * then `node bench/cpuprofile-top.mjs DIR/*.cpuprofile`.
 */
import { initBackend } from '../src/backend/backend.ts';
import { ncm } from '../src/classifiers/ncm.ts';
import { loadFeatureFile } from '../src/features/feature-set.ts';
import { syntheticFeatures } from './synthetic.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const file = arg('file', '');
const repeats = Number(arg('repeats', '3'));

await initBackend('wasm');
const fs = file ? loadFeatureFile(file) : syntheticFeatures(false);
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
}
