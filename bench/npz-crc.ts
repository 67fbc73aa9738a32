/**
 * What checking each .npz entry's CRC-32 costs a large read: writes a feature-file-like .npz of
 * `--gib` GiB (float32, stored, as np.savez writes it) to a temporary folder, reads it with
 * readNpz `--runs` times, and times CRC-32 alone over the same number of bytes in memory (the
 * work the check adds; it runs on each chunk after it lands). The file is removed at the end.
 *
 *   node --import tsx bench/npz-crc.ts [--gib 2] [--runs 3]
 *
 * Prints the read rate (page cache warm after the first run), the CRC-32 rate, and the CRC's
 * share of the read time. CRC-32 is node:zlib's (Node >= 20.15), else a slicing-by-8 table.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpz, writeNpz } from '../src/io/npy.ts';
import { crc32 } from '../src/io/zip.ts';

const argv = process.argv.slice(2);
const num = (name: string, def: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const gib = num('gib', 2);
const runs = num('runs', 3);
const d = 512;
const rows = Math.floor((gib * 2 ** 30) / (4 * d));
const dir = mkdtempSync(join(tmpdir(), 'longtail-npz-crc-'));
try {
  const features = new Float32Array(rows * d);
  for (let i = 0; i < features.length; i += 1021) features[i] = i % 97;
  const path = join(dir, 'features.npz');
  writeNpz(path, { train_features: { data: features, shape: [rows, d] } });
  const bytes = features.byteLength;
  const mb = bytes / 1e6;
  const reads: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    const a = readNpz(path).get('train_features')!;
    reads.push(performance.now() - t);
    if (a.data.length !== features.length) throw new Error('short read');
  }
  const crcs: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    // The reader's chunks: 64 MiB.
    let c = 0;
    const u8 = new Uint8Array(features.buffer);
    for (let o = 0; o < u8.length; o += 64 << 20) c = crc32(u8.subarray(o, o + (64 << 20)), c);
    crcs.push(performance.now() - t);
  }
  const best = (xs: number[]) => Math.min(...xs);
  const read = best(reads.slice(1).length ? reads.slice(1) : reads);
  const crc = best(crcs);
  console.log(
    `file: ${(bytes / 2 ** 30).toFixed(2)} GiB of float32 (${rows} x ${d}), ${runs} runs, best of the warm ones`,
  );
  console.log(
    `readNpz (CRC checked): ${read.toFixed(0)} ms, ${(mb / (read / 1000)).toFixed(0)} MB/s (all runs: ${reads.map((x) => x.toFixed(0)).join(', ')} ms)`,
  );
  console.log(
    `CRC-32 alone:          ${crc.toFixed(0)} ms, ${(mb / (crc / 1000)).toFixed(0)} MB/s (all runs: ${crcs.map((x) => x.toFixed(0)).join(', ')} ms)`,
  );
  console.log(`CRC share of the read: ${((100 * crc) / read).toFixed(1)}%`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
