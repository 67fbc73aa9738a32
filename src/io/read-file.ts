/**
 * The one way data files are read: open without blocking (a FIFO opens at once instead of
 * waiting for a writer), refuse anything that is not a regular file from the open descriptor
 * (no window between a check and the read), optionally refuse a file above a size limit, then
 * read it whole. Errors are DataErrors naming the file and what it was meant to be.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { DataError } from '../errors.ts';
import { errCode, notRegularMessage } from './safe-path.ts';

export interface ReadCheckedOptions {
  /** Refuse a file larger than this many bytes. */
  maxBytes?: number;
  /** Appended to the too-large message, e.g. how to raise the limit. */
  limitHint?: string;
}

/** An open regular file: its descriptor and size. Close it with `closeSync(fd)`. */
export function openRegularFile(path: string, what: string, opts: ReadCheckedOptions = {}) {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new DataError(`${path}: cannot read ${what} (${errCode(e)})`);
  }
  try {
    const s = fstatSync(fd);
    if (!s.isFile()) throw new DataError(notRegularMessage(path, s, path));
    if (opts.maxBytes !== undefined && s.size > opts.maxBytes) {
      throw new DataError(
        `${path}: ${what} is ${s.size} bytes, more than the limit of ${opts.maxBytes} bytes${opts.limitHint ?? ''}`,
      );
    }
    return { fd, size: s.size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Reads a regular file whole; `what` says what it is for messages ("list file", "IDX file"). */
export function readFileChecked(path: string, what: string, opts: ReadCheckedOptions = {}): Buffer {
  const { fd, size } = openRegularFile(path, what, opts);
  try {
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    if (got < size) throw new DataError(`${path}: ${what} shrank while being read (${got} of ${size} bytes)`);
    return buf;
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`${path}: cannot read ${what} (${errCode(e)})`);
  } finally {
    closeSync(fd);
  }
}

/** Calls `onChunk` with successive pieces of a regular file (bounded memory, e.g. for hashing). */
export function readFileChunks(path: string, what: string, onChunk: (chunk: Uint8Array) => void): void {
  const { fd } = openRegularFile(path, what);
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        throw new DataError(`${path}: cannot read ${what} (${errCode(e)})`);
      }
      if (n === 0) return;
      onChunk(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
}
