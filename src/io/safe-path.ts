/**
 * Path rules for anything a data file names: a path from a list or checksum file stays inside its
 * root (symlinks resolved, so a link cannot lead out), and only regular files are read (a FIFO
 * would block the reader forever, a device such as /dev/zero never ends). Every error names the
 * place (`file:line`), the rule and the value.
 */
import { realpathSync, type Stats, statSync } from 'node:fs';
import { isAbsolute, normalize, relative, resolve, sep } from 'node:path';
import { DataError } from '../errors.ts';

/** What kind of file system object `s` is, in words, for messages. */
export function fileKind(s: Stats): string {
  if (s.isFile()) return 'regular file';
  if (s.isDirectory()) return 'folder';
  if (s.isFIFO()) return 'FIFO (named pipe)';
  if (s.isSocket()) return 'socket';
  if (s.isCharacterDevice()) return 'character device';
  if (s.isBlockDevice()) return 'block device';
  return 'special file';
}

/** The message for a path that is not a regular file; shared by the checks here and by readers. */
export function notRegularMessage(path: string, s: Stats, where: string): string {
  const at = where === path ? path : `${where}: ${path}`;
  return `${at} is a ${fileKind(s)}, not a regular file; only regular files are read`;
}

function inside(root: string, p: string): boolean {
  const r = relative(root, p);
  return r === '' || (r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r));
}

/**
 * Resolves `rel` (a path read from a file) against `root` and returns its real path, refusing an
 * absolute path, a path that climbs out with `..`, and one whose real path (symlinks followed)
 * lies outside the real `root`. The lexical checks come first, so a refused path is never touched
 * on disk (an error cannot reveal whether a file outside exists). `where` names the line.
 */
export function resolveInside(root: string, rel: string, where: string): string {
  if (isAbsolute(rel) || /^[a-zA-Z]:[\\/]/.test(rel)) {
    throw new DataError(`${where}: path '${rel}' is absolute; paths must be relative to ${root}`);
  }
  const lexical = normalize(rel);
  if (lexical === '..' || lexical.startsWith(`..${sep}`)) {
    throw new DataError(`${where}: path '${rel}' leads out of ${root} (paths must stay inside their root)`);
  }
  let realRoot: string;
  try {
    realRoot = realpathSync.native(root);
  } catch (e) {
    throw new DataError(`${where}: root folder ${root} cannot be used (${errCode(e)})`);
  }
  const joined = resolve(realRoot, lexical);
  let real: string;
  try {
    real = realpathSync.native(joined);
  } catch (e) {
    const code = errCode(e);
    throw new DataError(
      code === 'ENOENT'
        ? `${where}: ${joined} does not exist`
        : `${where}: ${joined} cannot be used (${code})`,
    );
  }
  if (!inside(realRoot, real)) {
    throw new DataError(
      `${where}: path '${rel}' resolves to ${real}, outside ${realRoot} (a symlink may not lead out of the root)`,
    );
  }
  return real;
}

/** Refuses anything but a regular file (folders, FIFOs, sockets, devices), without opening it. */
export function assertRegularFile(path: string, where: string): void {
  let s: Stats;
  try {
    s = statSync(path);
  } catch (e) {
    throw new DataError(`${where === path ? path : `${where}: ${path}`}: cannot use (${errCode(e)})`);
  }
  if (!s.isFile()) throw new DataError(notRegularMessage(path, s, where));
}

/** The errno code of a file system error (ENOENT, EACCES, ...), or its text. */
export function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}
