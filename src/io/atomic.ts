/**
 * Atomic writes: a temp file in the same folder, flushed to disk (fsync), then renamed over the
 * target, so a crash or power loss leaves either the old file or the new one, never half of
 * one. The temp name carries a longtail mark and the writer's pid (`<file>.longtail-<pid>-<n>.tmp`),
 * so a temp file orphaned by a killed process can be recognised and removed later
 * (`removeOrphanTemps`) without touching a user's own `*.1.2.tmp` files. Every completed write
 * is reported to the listener a run folder installs (run-folder.ts records it in the folder's
 * manifest, which is what `--force` may remove).
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';

let counter = 0;
const TEMP = /^(.+)\.longtail-(\d+)-(\d+)\.tmp$/;

/** The temp name of a write to `path` (a sibling; `removeOrphanTemps` recognises it). */
export function tempPathFor(path: string): string {
  return `${path}.longtail-${process.pid}-${++counter}.tmp`;
}

let onWritten: ((path: string) => void) | null = null;

/** Installs the listener told of each completed atomic write (one: the run-folder manifest). */
export function setWriteListener(listener: ((path: string) => void) | null): void {
  onWritten = listener;
}

/**
 * `mkdir -p` one level at a time: a recursive mkdirSync reports EROFS (a read-only mount) or
 * EACCES as ENOENT on some platforms and Node versions; creating each missing level itself
 * gives the real reason, which the command line turns into a one-line error.
 */
export function makeFolder(dir: string): void {
  const missing: string[] = [];
  let d = resolve(dir);
  for (;;) {
    try {
      if (statSync(d).isDirectory()) break;
      mkdirSync(d); // a file in the way: the EEXIST / ENOTDIR names it
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    missing.push(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  for (const m of missing.reverse()) {
    try {
      mkdirSync(m);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // made meanwhile by another process
    }
  }
}

export function fsyncDir(dir: string): void {
  // Makes the rename itself durable; not every platform can open a folder (Windows), so best effort.
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // ignore: the data is already on disk, only the directory entry may lag
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  writeFileAtomicWith(path, (fd) => {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
  });
}

/**
 * As `writeFileAtomic`, for content too large to build in memory: `write` writes it to the temp
 * file's descriptor (in pieces, at positions if it likes) before the flush and rename.
 */
export function writeFileAtomicWith(path: string, write: (fd: number) => void): void {
  makeFolder(dirname(path));
  const tmp = tempPathFor(path);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx');
    write(fd);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dirname(path));
  onWritten?.(path);
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Whether a process of this host with that pid runs (EPERM: it runs, as another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temp files in `dir` left by writers that no longer run (killed mid-write). */
export function removeOrphanTemps(dir: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = TEMP.exec(name);
    if (!m) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || alive(pid)) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}
