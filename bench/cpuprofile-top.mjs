// Top self time of a V8 .cpuprofile (node --cpu-prof): functions by self time, with their file.
//   node bench/cpuprofile-top.mjs FILE.cpuprofile... [N]
import { readFileSync, statSync } from 'node:fs';

// The profile with the most samples when given several (tsx's own worker writes one too).
const args = process.argv.slice(2);
const n = /^\d+$/.test(args.at(-1) ?? '') ? args.pop() : '30';
const file = args.sort((a, b) => statSync(b).size - statSync(a).size)[0];
if (!file) {
  process.stderr.write('usage: node bench/cpuprofile-top.mjs FILE.cpuprofile [N]\n');
  process.exit(2);
}
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((nd) => [nd.id, nd]));
const self = new Map();
const dt = prof.timeDeltas;
for (let i = 0; i < prof.samples.length; i++) {
  const nd = byId.get(prof.samples[i]);
  const f = nd.callFrame;
  const url = f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|bench)\//, '$1/');
  const key = `${f.functionName || '(anonymous)'}  ${url}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(n));
console.log(`total ${(total / 1000).toFixed(0)} ms sampled`);
for (const [k, v] of rows)
  console.log(
    `${((100 * v) / total).toFixed(1).padStart(5)}%  ${(v / 1000).toFixed(0).padStart(6)} ms  ${k}`,
  );
