import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { runIsolated } from '../../test/helpers/isolated.ts';
import { tempDir } from '../../test/helpers/tmp.ts';
import { deflatedZeros, zerosCrc } from '../../test/helpers/zip.ts';
import { ConfigError, DataError } from '../errors.ts';
import { loadCifarLt, readCifarBinary } from './cifar.ts';
import { checkSplits } from './dataset.ts';
import {
  BUNDLED_FASHION_MNIST_DIR,
  IDX_CHECKSUM_FILES,
  loadMnistLt,
  verifyChecksums,
} from './fashion-mnist.ts';
import { readIdx, readIdxImageSet } from './idx.ts';
import { loadListDataset, parseImageList } from './image-list.ts';
import { loadDataset } from './registry.ts';

function idxBytes(dims: number[], data: number[] | Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => {
    head.writeUInt32BE(d, 4 + 4 * i);
  });
  return Buffer.concat([head, Buffer.from(data)]);
}

describe('IDX reader', () => {
  const dir = tempDir();
  it('reads plain and gzipped files', () => {
    const imgs = idxBytes([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]);
    writeFileSync(join(dir, 'i'), imgs);
    writeFileSync(join(dir, 'i.gz'), gzipSync(imgs));
    writeFileSync(join(dir, 'l'), idxBytes([2], [3, 9]));
    for (const f of ['i', 'i.gz']) {
      const s = readIdxImageSet(join(dir, f), join(dir, 'l'));
      assert.deepEqual([...s.pixels], [0, 1, 2, 3, 4, 5, 6, 7]);
      assert.deepEqual([...s.labels], [3, 9]);
      assert.equal(s.height, 2);
    }
  });
  it('refuses wrong magic, truncation and count mismatches, naming the file', () => {
    const bad = join(dir, 'bad');
    writeFileSync(bad, Buffer.from([1, 2, 3, 4, 5]));
    assert.throws(
      () => readIdx(bad),
      (e: Error) => e instanceof DataError && e.message.startsWith(bad) && /magic/.test(e.message),
    );
    const trunc = join(dir, 'trunc');
    writeFileSync(trunc, idxBytes([10, 2, 2], [1, 2, 3]));
    assert.throws(() => readIdx(trunc), new RegExp(`${trunc}: truncated`));
    writeFileSync(join(dir, 'l3'), idxBytes([3], [1, 2, 3]));
    writeFileSync(join(dir, 'i2'), idxBytes([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]));
    assert.throws(
      () => readIdxImageSet(join(dir, 'i2'), join(dir, 'l3')),
      /has 3 labels but .* has 2 images/,
    );
    const corrupt = join(dir, 'c.gz');
    writeFileSync(corrupt, Buffer.from([0x1f, 0x8b, 1, 2, 3]));
    assert.throws(() => readIdx(corrupt), /corrupt gzip/);
  });

  it('reads a file whatever its gzip member count, exactly header plus data', () => {
    const imgs = idxBytes(
      [3, 2, 2],
      Array.from({ length: 12 }, (_, i) => i * 20),
    );
    // Two gzip members one after the other are one gzip stream (RFC 1952), as `cat a.gz b.gz`.
    const two = join(dir, 'two.gz');
    writeFileSync(two, Buffer.concat([gzipSync(imgs.subarray(0, 7)), gzipSync(imgs.subarray(7))]));
    assert.deepEqual([...readIdx(two, 3).data], [...imgs.subarray(16)]);
  });

  it('refuses data past what the header declares: plain, gzipped, and bytes after the gzip stream', () => {
    const imgs = idxBytes([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]);
    const extra = Buffer.concat([imgs, Buffer.from([9])]);
    const cases: [string, Buffer, string][] = [
      [
        'plain',
        extra,
        'holds more than the 24 bytes its IDX header declares (2 x 2 x 2); trailing data is refused',
      ],
      [
        'inflated',
        gzipSync(extra),
        'decompresses to more than the 24 bytes its IDX header declares (2 x 2 x 2); trailing data is refused',
      ],
    ];
    for (const [name, bytes, message] of cases) {
      const p = join(dir, `${name}-extra`);
      writeFileSync(p, bytes);
      assert.throws(
        () => readIdx(p),
        (e: Error) => e instanceof DataError && e.message === `${p}: ${message}`,
        name,
      );
    }
    const after = join(dir, 'after.gz');
    writeFileSync(after, Buffer.concat([gzipSync(imgs), Buffer.alloc(4096)]));
    assert.throws(
      () => readIdx(after),
      (e: Error) =>
        e instanceof DataError &&
        e.message === `${after}: 4096 bytes after the end of the gzip stream; trailing data is refused`,
    );
    // Far more bytes after it than a gzip of the declared data could take: refused unread.
    const huge = join(dir, 'huge-after.gz');
    writeFileSync(huge, Buffer.concat([gzipSync(imgs), Buffer.alloc(2 << 20)]));
    assert.throws(
      () => readIdx(huge),
      (e: Error) =>
        e instanceof DataError &&
        e.message ===
          `${huge}: is ${gzipSync(imgs).length + (2 << 20)} bytes, more than a gzip of the 24 bytes its IDX header declares can be; trailing data is refused`,
    );
  });

  it('stops inflating at the declared data: 1 GiB of zeros after it in a 1 MB .gz is refused (RSS measured in a child)', () => {
    // A gzip member (RFC 1952: header, DEFLATE, CRC-32, size mod 2^32) holding a 60,000-label
    // file and then 1 GiB of zeros.
    const labels = idxBytes([60000], new Uint8Array(60000).fill(3));
    const p = join(dir, 'trailing-zeros.gz');
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(zerosCrc(labels, 1024), 0);
    trailer.writeUInt32LE((labels.length + 2 ** 30) % 2 ** 32, 4);
    const header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    writeFileSync(p, Buffer.concat([header, deflatedZeros(labels, 1024), trailer]));
    const idx = join(import.meta.dirname, 'idx.ts');
    const r = runIsolated(`
      import { readIdx } from ${JSON.stringify(idx)};
      const base = process.resourceUsage().maxRSS;
      let message = null;
      try { readIdx(${JSON.stringify(p)}, 1); } catch (e) { message = e.name + ': ' + e.message; }
      console.log(JSON.stringify({ message, growthMiB: (process.resourceUsage().maxRSS - base) / 1024 }));`);
    assert.equal(r.timedOut, false);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(
      out.message,
      `DataError: ${p}: decompresses to more than the 60008 bytes its IDX header declares (60000); trailing data is refused`,
    );
    assert.ok(out.growthMiB < 64, `peak RSS grew by ${out.growthMiB} MiB`);
    console.log(`IDX .gz with 1 GiB of trailing zeros: peak RSS growth ${out.growthMiB.toFixed(1)} MiB`);
  });
});

describe('fashion-mnist-lt (bundled, docs/formats.md)', () => {
  const d = loadMnistLt('fashion-mnist-lt');
  const full = readIdxImageSet(
    join(BUNDLED_FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'),
    join(BUNDLED_FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz'),
  );
  it('has the protocol counts and sizes', () => {
    assert.deepEqual(d.trainCounts, [1000, 599, 359, 215, 129, 77, 46, 27, 16, 10]);
    assert.equal(d.train.labels.length, 2478);
    assert.equal(d.val?.labels.length, 200);
    assert.equal(d.test.labels.length, 10000);
    assert.equal(d.classNames[9], 'Ankle boot');
  });
  it('trains on the first n_c of each class and validates on the last 20, in file order', () => {
    const byClass: number[][] = Array.from({ length: 10 }, () => []);
    full.labels.forEach((l, i) => {
      byClass[l]!.push(i);
    });
    const img = (set: typeof full, i: number) => set.pixels.subarray(i * 784, (i + 1) * 784);
    // Train images come class by class in file order.
    let k = 0;
    for (let c = 0; c < 10; c++) {
      for (const i of [0, d.trainCounts[c]! - 1]) {
        assert.deepEqual(img(d.train, k + i), img(full, byClass[c]![i]!));
        assert.equal(d.train.labels[k + i], c);
      }
      k += d.trainCounts[c]!;
      const v = d.val!;
      assert.deepEqual(img(v, c * 20), img(full, byClass[c]![byClass[c]!.length - 20]!));
      assert.deepEqual(img(v, c * 20 + 19), img(full, byClass[c]![byClass[c]!.length - 1]!));
    }
  });
  it('refuses n_max + 20 > 6000 with a message that says why', () => {
    assert.throws(
      () => loadMnistLt('fashion-mnist-lt', { maxPerClass: 5990, imbalance: 10 }),
      /would overlap/,
    );
    const big = loadMnistLt('fashion-mnist-lt', { maxPerClass: 5000, imbalance: 100 });
    assert.deepEqual(big.trainCounts, [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
  });
  it('detects a checksum mismatch in a copied folder', () => {
    const dir = tempDir();
    for (const f of [
      'SHA256SUMS',
      't10k-labels-idx1-ubyte.gz',
      't10k-images-idx3-ubyte.gz',
      'train-images-idx3-ubyte.gz',
    ]) {
      copyFileSync(join(BUNDLED_FASHION_MNIST_DIR, f), join(dir, f));
    }
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), 'not the labels');
    assert.throws(
      () => loadMnistLt('mnist-lt', { dataDir: dir }),
      /train-labels-idx1-ubyte.gz: checksum mismatch/,
    );
  });
  it('mnist-lt without --data-dir is a clear error', async () => {
    await assert.rejects(loadDataset('mnist-lt'), /needs --data-dir/);
    await assert.rejects(
      loadDataset('imagenet'),
      /unknown dataset 'imagenet'; valid datasets: fashion-mnist-lt/,
    );
  });
});

describe('CIFAR binary files', () => {
  /** Writes CIFAR-10 records in the official layout: label byte then R, G, B planes. */
  function cifar10Record(label: number, seed: number): Buffer {
    const b = Buffer.alloc(3073);
    b[0] = label;
    for (let p = 0; p < 3072; p++) b[1 + p] = (seed * 31 + p * 7) % 256;
    return b;
  }
  const dir = tempDir();
  const sub = join(dir, 'cifar-10-batches-bin');
  mkdirSync(sub);
  for (let f = 1; f <= 5; f++) {
    const recs = Array.from({ length: 60 }, (_, i) => cifar10Record(i % 10, f * 100 + i));
    writeFileSync(join(sub, `data_batch_${f}.bin`), Buffer.concat(recs));
  }
  writeFileSync(
    join(sub, 'test_batch.bin'),
    Buffer.concat(Array.from({ length: 20 }, (_, i) => cifar10Record(i % 10, i))),
  );

  it('converts CHW planes to HWC pixels', () => {
    const s = readCifarBinary(join(sub, 'test_batch.bin'), 'cifar10');
    assert.equal(s.labels.length, 20);
    const rec = cifar10Record(3, 3);
    // pixel p of image 3: R = rec[1 + p], G = rec[1 + 1024 + p], B = rec[1 + 2048 + p]
    for (const p of [0, 17, 1023]) {
      assert.equal(s.pixels[3 * 3072 + 3 * p], rec[1 + p]);
      assert.equal(s.pixels[3 * 3072 + 3 * p + 1], rec[1 + 1024 + p]);
      assert.equal(s.pixels[3 * 3072 + 3 * p + 2], rec[1 + 2048 + p]);
    }
  });
  it('builds CIFAR-10-LT with the exponential profile from the official layout', () => {
    const d = loadCifarLt('cifar10', { dataDir: dir, maxPerClass: 30, imbalance: 10, valPerClass: 0 });
    // NumPy: [int(30 * (0.1 ** (i / 9.0))) for i in range(10)]
    assert.deepEqual(d.trainCounts, [30, 23, 17, 13, 10, 8, 6, 5, 3, 3]);
    assert.equal(
      d.train.labels.length,
      d.trainCounts.reduce((a, b) => a + b),
    );
    assert.equal(d.test.labels.length, 20);
    assert.equal(d.classNames[0], 'airplane');
    assert.equal(d.val, null);
  });
  it('--subset-seed picks another subset with the same counts; the default is the reference subset', async () => {
    const opts = { dataDir: dir, maxPerClass: 20, imbalance: 10, valPerClass: 0 };
    const a = await loadDataset('cifar10-lt', opts);
    const b = await loadDataset('cifar10-lt', { ...opts, subsetSeed: 0 });
    const c = await loadDataset('cifar10-lt', { ...opts, subsetSeed: 1 });
    assert.deepEqual(a.train.pixels, b.train.pixels);
    assert.deepEqual(c.trainCounts, a.trainCounts);
    assert.notDeepEqual(c.train.pixels, a.train.pixels);
  });
  it('takes a balanced validation set from the images the tail left out', () => {
    const d = loadCifarLt('cifar10', { dataDir: dir, maxPerClass: 20, imbalance: 10, valPerClass: 5 });
    assert.equal(d.val?.labels.length, 50);
  });
  it('the loader picks the NumPy golden subset (LDAM-DRW reference, seed 0) through numpySubset', () => {
    // 600 records over five batch files, label (7i mod 10), index i written into pixel 0 (R low byte, G high byte).
    const gdir = join(tempDir(), 'cifar-10-batches-bin');
    mkdirSync(gdir);
    const rec = (i: number) => {
      const b = Buffer.alloc(3073);
      b[0] = (i * 7) % 10;
      b[1] = i & 255;
      b[1 + 1024] = i >> 8;
      return b;
    };
    for (let f = 0; f < 5; f++) {
      const recs = Array.from({ length: 120 }, (_, k) => rec(f * 120 + k));
      writeFileSync(join(gdir, `data_batch_${f + 1}.bin`), Buffer.concat(recs));
    }
    writeFileSync(join(gdir, 'test_batch.bin'), Buffer.concat([rec(0), rec(1)]));
    const d = loadCifarLt('cifar10', { dataDir: gdir, maxPerClass: 40, imbalance: 10, valPerClass: 0 });
    const picked = Array.from({ length: d.train.labels.length }, (_, k) => {
      const px = d.train.pixels;
      return px[k * 3072]! + 256 * px[k * 3072 + 1]!;
    });
    // Golden (np.random.seed(0); per class: idx = np.where(labels == c)[0]; shuffle; idx[:n]):
    assert.equal(picked.length, 159);
    assert.deepEqual(picked.slice(0, 12), [260, 350, 590, 280, 110, 20, 340, 580, 400, 220, 40, 100]);
    assert.equal(
      picked.reduce((a, b) => a + b),
      49891,
    );
  });
  it('refuses a truncated file, naming it', () => {
    const bad = join(tempDir(), 'test_batch.bin');
    writeFileSync(bad, Buffer.alloc(3000));
    assert.throws(() => readCifarBinary(bad, 'cifar10'), new RegExp(`${bad}: size 3000 is not a multiple`));
  });
});

describe('image list files', () => {
  const root = tempDir();
  const write = async (rel: string, colour: [number, number, number], size = 40) => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    await sharp({
      create: {
        width: size,
        height: size + 10,
        channels: 3,
        background: { r: colour[0], g: colour[1], b: colour[2] },
      },
    })
      .png()
      .toFile(join(root, rel));
  };
  it('parses lines and refuses bad ones with file and line', () => {
    const f = join(root, 'bad.txt');
    writeFileSync(f, 'a.jpg 0\nb.jpg\n');
    assert.throws(() => parseImageList(f), new RegExp(`${f}:2: expected 'relative/path label'`));
    writeFileSync(f, 'a.jpg 0\nb.jpg x1\n');
    assert.throws(
      () => parseImageList(f),
      new RegExp(`${f}:2: label 'x1' is a class name but line 1's \\('0'\\) is an integer`),
    );
    writeFileSync(f, 'a.jpg 0\n\nb.jpg 7\n');
    assert.throws(() => parseImageList(f, 3), new RegExp(`${f}:3: label 7 is out of range 0..2`));
    writeFileSync(f, 'dir with space/a b.jpg 2\n');
    assert.deepEqual(parseImageList(f), [{ path: 'dir with space/a b.jpg', label: 2, line: 1 }]);
  });
  it('decodes, resizes and centre-crops a tree of generated images', async () => {
    await write('train/c0/a.png', [255, 0, 0]);
    await write('train/c0/b.png', [250, 0, 0]);
    await write('train/c1/a.png', [0, 0, 255]);
    await write('test/c0/a.png', [255, 0, 0]);
    await write('test/c1/a.png', [0, 0, 255]);
    writeFileSync(join(root, 'train.txt'), 'train/c0/a.png 0\ntrain/c0/b.png 0\ntrain/c1/a.png 1\n');
    writeFileSync(join(root, 'test.txt'), 'test/c0/a.png 0\ntest/c1/a.png 1\n');
    const d = await loadListDataset({
      trainList: join(root, 'train.txt'),
      testList: join(root, 'test.txt'),
      dataRoot: root,
      imageSize: 16,
    });
    assert.deepEqual(d.trainCounts, [2, 1]);
    assert.equal(d.train.height, 16);
    assert.equal(d.train.channels, 3);
    assert.deepEqual([...d.test.pixels.subarray(0, 3)], [255, 0, 0]);
    assert.deepEqual([...d.test.pixels.subarray(16 * 16 * 3, 16 * 16 * 3 + 3)], [0, 0, 255]);
  });
  it('reports every missing or undecodable image with its line', async () => {
    writeFileSync(join(root, 'broken.png'), 'this is not a png');
    writeFileSync(join(root, 'list2.txt'), 'train/c0/a.png 0\nnope.png 1\nbroken.png 1\n');
    await assert.rejects(
      loadListDataset({
        trainList: join(root, 'list2.txt'),
        testList: join(root, 'test.txt'),
        dataRoot: root,
        imageSize: 8,
      }),
      (e: Error) =>
        e instanceof DataError &&
        /2 image\(s\)/.test(e.message) &&
        /list2.txt:2: .*nope.png does not exist/.test(e.message) &&
        /list2.txt:3: cannot decode/.test(e.message),
    );
  });
  it('refuses a class with no training image', async () => {
    writeFileSync(join(root, 'gap.txt'), 'train/c0/a.png 0\ntrain/c1/a.png 2\n');
    await assert.rejects(
      loadListDataset({
        trainList: join(root, 'gap.txt'),
        testList: join(root, 'test.txt'),
        dataRoot: root,
        imageSize: 8,
      }),
      /class 1 has no training image/,
    );
  });
});

describe('data-layer refusals (paths, special files, sizes, empty splits)', () => {
  const png = (path: string, size = 12) =>
    sharp({ create: { width: size, height: size, channels: 3, background: { r: 9, g: 9, b: 9 } } })
      .png()
      .toFile(path);

  it('refuses list paths that leave --data-root (.., absolute, symlink), naming file:line and the rule', async () => {
    const top = tempDir();
    const root = join(top, 'root');
    mkdirSync(root);
    await png(join(top, 'outside.png'));
    await png(join(root, 'in.png'));
    symlinkSync(join(top, 'outside.png'), join(root, 'link.png'));
    const list = join(root, 'train.txt');
    writeFileSync(list, 'in.png 0\n../outside.png 0\n/etc/passwd 0\nlink.png 0\n/no/such/file.png 0\n');
    await assert.rejects(
      loadListDataset({ trainList: list, testList: list, dataRoot: root, imageSize: 8 }),
      (e: Error) =>
        e instanceof DataError &&
        e.message.includes(`4 image(s) of ${list} could not be used`) &&
        e.message.includes(
          `${list}:2: path '../outside.png' leads out of ${root} (paths must stay inside their root)`,
        ) &&
        e.message.includes(`${list}:3: path '/etc/passwd' is absolute; paths must be relative to ${root}`) &&
        e.message.includes(
          `${list}:4: path 'link.png' resolves to ${join(top, 'outside.png')}, outside ${root}`,
        ) &&
        // An absolute path is refused before it is looked at: nothing says whether it exists.
        e.message.includes(`${list}:5: path '/no/such/file.png' is absolute`),
    );
  });

  it('refuses a FIFO among list images instead of hanging on it', () => {
    const root = tempDir();
    spawnSync('mkfifo', [join(root, 'pipe.png')]);
    writeFileSync(join(root, 'train.txt'), 'pipe.png 0\n');
    const mod = join(import.meta.dirname, 'image-list.ts');
    const r = runIsolated(
      `import { loadImageList } from ${JSON.stringify(mod)};
       try { await loadImageList(${JSON.stringify(join(root, 'train.txt'))}, ${JSON.stringify(root)}, 1, { imageSize: 8 }); }
       catch (e) { console.log(e.message); }`,
    );
    assert.equal(r.timedOut, false, 'a FIFO in a list hung the loader');
    assert.match(
      r.stdout,
      new RegExp(
        `train.txt:1: ${root}/pipe.png is a FIFO \\(named pipe\\), not a regular file; only regular files are read`,
      ),
    );
  });

  it('refuses --image-size outside 8..1024 before decoding anything', async () => {
    for (const size of [50000, 4, 12.5]) {
      await assert.rejects(
        loadListDataset({
          trainList: '/nonexistent.txt',
          testList: '/nonexistent.txt',
          dataRoot: '/',
          imageSize: size,
        }),
        (e: Error) =>
          e instanceof ConfigError &&
          e.message ===
            `--image-size must be an integer in 8..1024 (the square side images are resized to), got ${size}`,
      );
    }
  });

  it('refuses splits whose images differ in size from the training images, naming sizes and sources', () => {
    const set = (h: number, n = 1) => ({
      pixels: new Uint8Array(n * h * h * 3),
      labels: new Int32Array(n),
      height: h,
      width: h,
      channels: 3,
    });
    assert.throws(
      () =>
        checkSplits({
          train: { set: set(32), source: 'train.txt' },
          val: null,
          test: { set: set(64), source: 'test.txt' },
        }),
      new DataError(
        'test.txt: test images are 64x64x3 (height x width x channels) but training images (train.txt) are 32x32x3; every split must have the same image size',
      ),
    );
    assert.throws(
      () =>
        checkSplits({
          train: { set: set(32), source: 'train.txt' },
          val: { set: set(32, 0), source: 'val.txt' },
          test: { set: set(32), source: 'test.txt' },
        }),
      new DataError('val.txt: the validation split has no images (every split needs at least one)'),
    );
  });

  /** An MNIST-style folder: `perClass` 2x2 training images a class, test images of `testSide`. */
  function mnistDir(perClass: number, testCount: number, testSide = 2): string {
    const dir = tempDir();
    const n = perClass * 10;
    writeFileSync(join(dir, 'train-images-idx3-ubyte'), idxBytes([n, 2, 2], new Uint8Array(n * 4)));
    writeFileSync(
      join(dir, 'train-labels-idx1-ubyte'),
      idxBytes(
        [n],
        Array.from({ length: n }, (_, i) => i % 10),
      ),
    );
    writeFileSync(
      join(dir, 't10k-images-idx3-ubyte'),
      idxBytes([testCount, testSide, testSide], new Uint8Array(testCount * testSide * testSide)),
    );
    writeFileSync(
      join(dir, 't10k-labels-idx1-ubyte'),
      idxBytes(
        [testCount],
        Array.from({ length: testCount }, (_, i) => i % 10),
      ),
    );
    return dir;
  }

  it('refuses an empty test set and test images of another size, naming the split and its file', () => {
    const opts = { maxPerClass: 10, imbalance: 2, valPerClass: 2 };
    const empty = mnistDir(12, 0);
    assert.throws(
      () => loadMnistLt('mnist-lt', { dataDir: empty, ...opts }),
      new DataError(
        `${join(empty, 't10k-images-idx3-ubyte')}: the test split has no images (every split needs at least one)`,
      ),
    );
    const other = mnistDir(12, 10, 3);
    assert.throws(
      () => loadMnistLt('mnist-lt', { dataDir: other, ...opts }),
      new DataError(
        `${join(other, 't10k-images-idx3-ubyte')}: test images are 3x3x1 (height x width x channels) but training images ` +
          `(${join(other, 'train-images-idx3-ubyte')}) are 2x2x1; every split must have the same image size`,
      ),
    );
    assert.equal(
      loadMnistLt('mnist-lt', { dataDir: mnistDir(12, 10), ...opts }).train.labels.length > 0,
      true,
    );
  });

  it('refuses a profile that leaves a class with no training image, naming the class and settings', () => {
    assert.throws(
      () => loadMnistLt('fashion-mnist-lt', { maxPerClass: 1 }),
      new ConfigError(
        '--max-per-class 1 with --imbalance 100 leaves class 1 (and 8 more) with 0 training images ' +
          '(n_c = floor(n_max * IF^(-c / 9))); every class needs at least one: use --max-per-class >= 100 or a smaller --imbalance',
      ),
    );
  });

  it('SHA256SUMS may only name the data set files, inside the folder, regular files', () => {
    const dir = tempDir();
    for (const f of IDX_CHECKSUM_FILES.filter((f) => f.endsWith('.gz')))
      copyFileSync(join(BUNDLED_FASHION_MNIST_DIR, f), join(dir, f));
    const sums = readFileSync(join(BUNDLED_FASHION_MNIST_DIR, 'SHA256SUMS'), 'utf8');
    const zero = '0'.repeat(64);
    const refuse = (entry: string, message: string) => {
      writeFileSync(join(dir, 'SHA256SUMS'), `${sums}${zero}  ${entry}\n`);
      assert.equal(verifyChecksums(dir), message, entry);
    };
    const only = `SHA256SUMS may only list ${IDX_CHECKSUM_FILES.join(', ')}`;
    for (const entry of ['/etc/hostname', '/dev/zero', '../outside', 'LICENSE'])
      refuse(entry, `${join(dir, 'SHA256SUMS')}:5: '${entry}' is not one of this data set's files; ${only}`);
    // A known name that is a symlink out of the folder is refused too (realpath).
    const outside = join(tempDir(), 'elsewhere');
    writeFileSync(outside, 'secret');
    symlinkSync(outside, join(dir, 'train-labels-idx1-ubyte'));
    refuse(
      'train-labels-idx1-ubyte',
      `${join(dir, 'SHA256SUMS')}:5: path 'train-labels-idx1-ubyte' resolves to ${outside}, outside ${dir} (a symlink may not lead out of the root)`,
    );
    writeFileSync(join(dir, 'SHA256SUMS'), sums);
    assert.equal(verifyChecksums(dir), null);
  });

  it('SHA256SUMS naming a FIFO among the known files is refused, not hung on', () => {
    const dir = tempDir();
    spawnSync('mkfifo', [join(dir, 'train-images-idx3-ubyte')]);
    writeFileSync(join(dir, 'SHA256SUMS'), `${'0'.repeat(64)}  train-images-idx3-ubyte\n`);
    const mod = join(import.meta.dirname, 'fashion-mnist.ts');
    const r = runIsolated(
      `import { verifyChecksums } from ${JSON.stringify(mod)}; console.log(verifyChecksums(${JSON.stringify(dir)}));`,
    );
    assert.equal(r.timedOut, false, 'hashing a FIFO hung');
    assert.equal(
      r.stdout.trim(),
      `${dir}/train-images-idx3-ubyte is a FIFO (named pipe), not a regular file; only regular files are read`,
    );
  });
});
