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

/**
 * Random access to the bytes of something: a regular file read by offset (no whole-file buffer,
 * so size is not limited by Node's 2 GiB `readFile` ceiling) or a buffer already in memory.
 */
export interface ByteSource {
  /** What the bytes are, for messages (a path, or a path and an entry name). */
  readonly where: string;
  readonly size: number;
  /** Fills `dest` with the bytes at `position`; refuses a range past the end. */
  readInto(dest: Uint8Array, position: number): void;
  close(): void;
}

/** A buffer as a ByteSource. */
export function bufferSource(bytes: Uint8Array, where: string): ByteSource {
  return {
    where,
    size: bytes.length,
    readInto(dest, position) {
      if (position < 0 || position + dest.length > bytes.length)
        throw new DataError(
          `${where}: truncated (needs bytes ${position}..${position + dest.length}, has ${bytes.length})`,
        );
      dest.set(bytes.subarray(position, position + dest.length));
    },
    close() {},
  };
}

/** Opens a regular file as a ByteSource (see `openRegularFile`); close it when done. */
export function fileSource(path: string, what: string): ByteSource {
  const { fd, size } = openRegularFile(path, what);
  let open = true;
  return {
    where: path,
    size,
    readInto(dest, position) {
      let got = 0;
      while (got < dest.length) {
        let n: number;
        try {
          // Node 20 caps one read at 2 GiB; callers read in chunks well below that.
          n = readSync(fd, dest, got, Math.min(dest.length - got, 1 << 30), position + got);
        } catch (e) {
          throw new DataError(`${path}: cannot read ${what} (${errCode(e)})`);
        }
        if (n === 0)
          throw new DataError(
            `${path}: ${what} ended at byte ${position + got} while ${position + dest.length} were expected (truncated or shrinking)`,
          );
        got += n;
      }
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** Where streamed bytes go, in order (an array being filled, e.g. a .npy decoder). */
export interface ByteSink {
  /**
   * The sink's own memory for the next bytes, at most `max` of them, when bytes can land there as
   * they are (then `advance` says how many did); null when the sink must convert (`write`).
   */
  direct(max: number): Uint8Array | null;
  advance(n: number): void;
  /** Takes a piece of the stream (copied or converted; the piece may be reused afterwards). */
  write(piece: Uint8Array): void;
}

/**
 * Moves `length` bytes at `position` of a source into a sink, `chunkBytes` at a time: straight into
 * the sink's memory when it allows (no intermediate buffer), else through one chunk-sized buffer.
 */
export function pumpRange(
  src: ByteSource,
  position: number,
  length: number,
  sink: ByteSink,
  chunkBytes: number,
): void {
  let scratch: Uint8Array | null = null;
  for (let done = 0; done < length; ) {
    const want = Math.min(chunkBytes, length - done);
    const view = sink.direct(want);
    if (view !== null) {
      src.readInto(view, position + done);
      sink.advance(view.length);
      done += view.length;
    } else {
      scratch ??= new Uint8Array(Math.min(chunkBytes, length));
      const piece = scratch.subarray(0, want);
      src.readInto(piece, position + done);
      sink.write(piece);
      done += want;
    }
  }
}
