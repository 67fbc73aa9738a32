/**
 * Optional download of the official CIFAR binary archives (users with internet; never needed
 * by the tests, which serve a local archive). The archive's MD5 (published with the data set)
 * is checked before anything is unpacked; unpacking goes to a temporary folder renamed into
 * place, so a failed download leaves nothing half-written.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.ts';

export const CIFAR_ARCHIVES = {
  cifar10: {
    url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
    md5: 'c32a1d4ab5d03f1284b67883e8d87530',
    folder: 'cifar-10-batches-bin',
  },
  cifar100: {
    url: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
    md5: '03b5dce01913d631647c71ecec9e9cb8',
    folder: 'cifar-100-binary',
  },
} as const;

export interface DownloadOptions {
  /** Overrides the official address (a mirror, or a local server in tests). */
  url?: string;
  /** Overrides the expected MD5 (with `url`). */
  md5?: string;
  onProgress?: (bytes: number, total: number | null) => void;
}

/** Downloads and unpacks CIFAR-10 or CIFAR-100 into `dir` (its official sub-folder), unless already there. */
export async function downloadCifar(
  kind: 'cifar10' | 'cifar100',
  dir: string,
  opts: DownloadOptions = {},
): Promise<string> {
  const a = CIFAR_ARCHIVES[kind];
  const target = join(dir, a.folder);
  if (existsSync(target)) return target;
  const url = opts.url ?? a.url;
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new DataError(
      `cannot download ${url} (${(e as Error).message}); put the official files in --data-dir instead`,
    );
  }
  if (!res.ok || !res.body) throw new DataError(`cannot download ${url}: HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length')) || null;
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    bytes += chunk.length;
    opts.onProgress?.(bytes, total);
  }
  const buf = Buffer.concat(chunks);
  const md5 = createHash('md5').update(buf).digest('hex');
  const expected = opts.md5 ?? a.md5;
  if (md5 !== expected)
    throw new DataError(`${url}: checksum mismatch (MD5 ${md5}, expected ${expected}); nothing was written`);
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(join(dir, '.download-'));
  try {
    const archive = join(tmp, 'archive.tar.gz');
    writeFileSync(archive, buf);
    const tar = await import('tar'); // loaded only when an archive is unpacked
    await tar.x({ file: archive, cwd: tmp, strict: true });
    if (!existsSync(join(tmp, a.folder)))
      throw new DataError(`${url}: the archive has no ${a.folder}/ folder`);
    renameSync(join(tmp, a.folder), target);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return target;
}
