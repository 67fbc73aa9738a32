/**
 * Image folders (train/ test/ val/, one subfolder per class) and class-name labels in list files:
 * loading, the drawn validation split, every refusal with its message, and class names shown
 * escaped from results.json to report.html, the SVG charts, the terminal and predict (through
 * the command line: the demo as a real process, the rest in this process).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { runCli, runInProcess } from '../../test/helpers/cli.ts';
import { tempDir } from '../../test/helpers/tmp.ts';
import { DataError } from '../errors.ts';
import { printable } from '../io/display.ts';
import { compareCodePoints, sortByCodePoint } from './class-names.ts';
import { decodeImage } from './decode-images.ts';
import { loadListDataset } from './image-list.ts';
import { loadDataset } from './registry.ts';
import type { ImageSet, LongTailDataset } from './types.ts';

/** The escape character that starts an ANSI sequence. */
const ESC = '\x1b';

let nextId = 1;
/** A PNG of one colour unique to it (so a decoded image identifies its file), 20x24 (cropped to a square). */
async function png(path: string): Promise<void> {
  const id = nextId++;
  mkdirSync(dirname(path), { recursive: true });
  await sharp({
    create: {
      width: 20,
      height: 24,
      channels: 3,
      background: { r: id % 256, g: (id * 37) % 256, b: 40 * Math.floor(id / 256) },
    },
  })
    .png()
    .toFile(path);
}

/** Writes `split/class/i.png` for each count. */
async function makeFolder(root: string, splits: Record<string, Record<string, number>>): Promise<string> {
  for (const [split, classes] of Object.entries(splits))
    for (const [name, n] of Object.entries(classes))
      for (let i = 0; i < n; i++) await png(join(root, split, name, `img${String(i).padStart(3, '0')}.png`));
  return root;
}

const SIZE = 16;
const perImage = SIZE * SIZE * 3;
const hash = (px: Uint8Array) => createHash('sha256').update(px).digest('hex');
const hashes = (s: ImageSet) =>
  Array.from({ length: s.labels.length }, (_, i) =>
    hash(s.pixels.subarray(i * perImage, (i + 1) * perImage)),
  );

/** Every image file under `root/split` by the hash of its decoded pixels (the file's identity). */
async function fileByPixels(root: string, split: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const n of readdirSync(dir)) {
      const p = join(dir, n);
      if (statSync(p).isDirectory()) await walk(p);
      else if (n.endsWith('.png') && !n.startsWith('.'))
        out.set(hash(await decodeImage(p, SIZE)), relative(root, p));
    }
  };
  await walk(join(root, split));
  return out;
}

const load = (dataDir: string, o: Record<string, unknown> = {}): Promise<LongTailDataset> =>
  loadDataset('imagefolder', { dataDir, imageSize: SIZE, valPerClass: 2, ...o });

describe('class names: order by code point', () => {
  it('sorts by code point, not by locale or UTF-16 units', () => {
    // U+1F600 (an emoji, surrogates D83D DE00) is above U+FF5A; a UTF-16 sort puts it below.
    assert.deepEqual(sortByCodePoint(['b', 'ｚ', '😀', 'B', 'a', 'é', 'ab']), [
      'B',
      'a',
      'ab',
      'b',
      'é',
      'ｚ',
      '😀',
    ]);
    assert.ok(compareCodePoints('a', 'a') === 0 && compareCodePoints('a', 'ab') < 0);
  });
});

describe('imagefolder data set', () => {
  const root = tempDir();
  const names = ['zebra', 'Apple', 'mango']; // sorted: Apple, mango, zebra
  before(async () => {
    await makeFolder(root, {
      train: { zebra: 40, Apple: 12, mango: 4 },
      test: { zebra: 3, Apple: 2, mango: 2 },
    });
    writeFileSync(join(root, 'train', 'Apple', '.DS_Store'), 'not an image');
    writeFileSync(join(root, 'train', 'Apple', '._img000.png'), 'AppleDouble resource fork');
    mkdirSync(join(root, 'train', '.hidden'));
  });

  it('loads classes by folder name in code-point order; hidden files are ignored', async () => {
    const warnings: string[] = [];
    const d = await load(root, { onWarning: (m: string) => warnings.push(m) });
    assert.equal(d.name, 'imagefolder');
    assert.deepEqual(d.classNames, sortByCodePoint(names));
    assert.deepEqual(d.classNames, ['Apple', 'mango', 'zebra']);
    assert.deepEqual(d.trainCounts, [10, 2, 38]);
    assert.equal(d.val?.labels.length, 6);
    assert.equal(d.test.labels.length, 7);
    assert.deepEqual([d.train.height, d.train.width, d.train.channels], [SIZE, SIZE, 3]);
    assert.deepEqual(warnings, []);
  });

  it('draws a balanced validation split from train/ only, disjoint from training by file, the same for the same seed', async () => {
    const a = await load(root, { valSeed: 3 });
    const b = await load(root, { valSeed: 3 });
    const c = await load(root, { valSeed: 4 });
    const trainFiles = await fileByPixels(root, 'train');
    const testFiles = await fileByPixels(root, 'test');
    const files = (s: ImageSet) => hashes(s).map((h) => trainFiles.get(h) ?? testFiles.get(h) ?? '?');
    const valFiles = files(a.val!);
    const trainOf = files(a.train);
    // k per class, every one a file of train/ of that class, none used for training.
    assert.deepEqual([...a.val!.labels], [0, 0, 1, 1, 2, 2]);
    for (const [i, f] of valFiles.entries())
      assert.ok(f.startsWith(`train/${a.classNames[a.val!.labels[i]!]}/`), f);
    assert.equal(new Set([...valFiles, ...trainOf]).size, valFiles.length + trainOf.length);
    assert.equal(trainOf.length + valFiles.length, 56);
    // Recorded: results.json (via the profile) says which images were held out.
    assert.equal(a.profile.kind, 'given');
    assert.deepEqual(a.profile.kind === 'given' && a.profile.validation, {
      from: 'train/',
      perClass: 2,
      seed: 3,
      files: valFiles,
    });
    assert.match(a.source, /validation: 2 per class drawn from train\/ with --val-seed 3/);
    // The same seed, the same images; another seed, others.
    assert.deepEqual(files(b.val!), valFiles);
    assert.deepEqual([...b.train.pixels], [...a.train.pixels]);
    assert.notDeepEqual(files(c.val!), valFiles);
  });

  it('uses val/ when there is one, whole, and draws nothing', async () => {
    const dir = await makeFolder(tempDir(), {
      train: { a: 3, b: 2 },
      val: { a: 1, b: 1 },
      test: { a: 1, b: 1 },
    });
    const d = await load(dir, { valPerClass: 20 });
    assert.deepEqual(d.trainCounts, [3, 2]);
    assert.equal(d.val?.labels.length, 2);
    assert.deepEqual(d.profile, { kind: 'given' });
  });

  it('warns once, naming them, about files that are not images, and skips them', async () => {
    const dir = await makeFolder(tempDir(), { train: { a: 3, b: 3 }, test: { a: 1, b: 1 } });
    writeFileSync(join(dir, 'train', 'a', 'notes.txt'), 'x');
    writeFileSync(join(dir, 'train', 'README.md'), 'x');
    const warnings: string[] = [];
    const d = await load(dir, { valPerClass: 1, onWarning: (m: string) => warnings.push(m) });
    assert.deepEqual(d.classNames, ['a', 'b']);
    assert.equal(warnings.length, 1);
    assert.equal(
      warnings[0],
      `skipped 2 file(s) under ${dir} that are not images (by extension) or not class folders: ` +
        `${join(dir, 'train', 'README.md')}, ${join(dir, 'train', 'a', 'notes.txt')}`,
    );
  });
});

describe('imagefolder refusals (one line, naming the folder or file)', () => {
  const good = { train: { cat: 4, dog: 4 }, test: { cat: 1, dog: 1 } };
  const cases: {
    name: string;
    make: (dir: string) => Promise<void>;
    message: (dir: string) => string;
  }[] = [
    {
      name: 'a class folder missing from test/',
      make: async (d) => void (await makeFolder(d, { train: good.train, test: { cat: 1 } })),
      message: (d) =>
        `${join(d, 'test')}: class folder(s) 'dog' of train/ missing; every split needs the same 2 class folders as train/`,
    },
    {
      name: 'an extra class folder in test/',
      make: async (d) => void (await makeFolder(d, { train: good.train, test: { cat: 1, dog: 1, owl: 1 } })),
      message: (d) =>
        `${join(d, 'test')}: class folder(s) 'owl' not in train/; every split needs the same 2 class folders as train/`,
    },
    {
      name: 'an empty class folder',
      make: async (d) => {
        await makeFolder(d, good);
        mkdirSync(join(d, 'train', 'emu'));
        mkdirSync(join(d, 'test', 'emu'));
        writeFileSync(join(d, 'train', 'emu', '.DS_Store'), '');
      },
      message: (d) =>
        `${join(d, 'train', 'emu')}: class folder 'emu' holds no images (by extension: .png, .jpg, .jpeg, .webp, .gif, .tif, .tiff, .bmp, .avif)`,
    },
    {
      name: 'class folders whose names differ only in case',
      make: async (d) => void (await makeFolder(d, { train: { Cat: 3, cat: 3 }, test: { Cat: 1, cat: 1 } })),
      message: (d) =>
        `${join(d, 'train')}: class folders 'Cat' and 'cat' differ only in case; they collide on case-insensitive file systems and in exports: rename or merge one`,
    },
    {
      name: 'a missing split folder',
      make: async (d) => void (await makeFolder(d, { train: good.train })),
      message: (d) =>
        `${d}: no test/ folder; an image folder holds train/ and test/ (and optionally val/), each with one subfolder per class`,
    },
    {
      name: 'an image that fails to decode',
      make: async (d) => {
        await makeFolder(d, good);
        writeFileSync(join(d, 'test', 'dog', 'broken.png'), 'this is not a png');
      },
      message: (d) =>
        `${d}: cannot decode 'test/dog/broken.png' (Input buffer contains unsupported image format)`,
    },
    {
      name: 'a class too small for the validation draw',
      make: async (d) =>
        void (await makeFolder(d, { train: { cat: 4, dog: 2, emu: 1 }, test: { cat: 1, dog: 1, emu: 1 } })),
      message: (d) =>
        `${join(d, 'train')}: class(es) 'dog' (2), 'emu' (1) too small to draw 2 validation images (--val-per-class 2) ` +
        'and keep one for training (each needs at least 3); add images, add a val/ folder, or lower --val-per-class',
    },
    {
      name: 'an image symlink leading out of the data folder',
      make: async (d) => {
        await makeFolder(d, good);
        await png(join(d, '..', `${d.split('/').pop()}-outside.png`));
        symlinkSync(join(d, '..', `${d.split('/').pop()}-outside.png`), join(d, 'train', 'cat', 'link.png'));
      },
      message: (d) =>
        `${d}: path 'train/cat/link.png' resolves to ${join(d, '..', `${d.split('/').pop()}-outside.png`)}, outside ${d} (a symlink may not lead out of the root)`,
    },
  ];

  const top = tempDir();
  for (const [i, c] of cases.entries()) {
    it(`refuses ${c.name}`, async () => {
      const dir = join(top, `case${i}`);
      mkdirSync(dir);
      await c.make(dir);
      await assert.rejects(load(dir), (e: Error) => {
        assert.ok(e instanceof DataError, String(e));
        assert.equal(e.message, c.message(dir));
        assert.ok(!e.message.includes('\n'));
        return true;
      });
    });
  }

  // Each CLI run costs seconds; every refusal above is a DataError, so two stand for the path to stderr.
  it('refuses through the CLI: one line, exit 2, an existing run folder unchanged', async () => {
    const run = tempDir();
    writeFileSync(join(run, 'config.json'), '{"command":"demo"}\n');
    writeFileSync(join(run, 'results.json'), '{}\n');
    const before = readdirSync(run).map((f) => [f, readFileSync(join(run, f), 'utf8')]);
    for (const [i, c] of cases.entries()) {
      if (!['a class folder missing from test/', 'an image that fails to decode'].includes(c.name)) continue;
      const dir = join(top, `case${i}`);
      const r = await runInProcess([
        ...['data', 'summary', '--dataset', 'imagefolder', '--data-dir', dir, '--image-size', '16'],
        ...['--val-per-class', '2', '--out', run, '--force'],
      ]);
      assert.equal(r.code, 2, `${c.name}: ${r.stderr}`);
      assert.equal(r.stderr, `longtail: ${c.message(dir)}\n`, c.name);
    }
    assert.deepEqual(
      readdirSync(run).map((f) => [f, readFileSync(join(run, f), 'utf8')]),
      before,
    );
  });
});

describe('list files with class names', () => {
  const root = tempDir();
  before(async () => {
    for (const f of ['a1', 'a2', 'a3', 'z1', 'z2', 't1', 't2']) await png(join(root, `${f}.png`));
    const lists = {
      'int-train.txt': 'z1.png 0\na1.png 1\nz2.png 0\na2.png 1\na3.png 1\n',
      'int-test.txt': 't1.png 0\nt2.png 1\n',
      'name-train.txt': 'z1.png zeta\na1.png alpha\nz2.png zeta\na2.png alpha\na3.png alpha\n',
      'name-test.txt': 't1.png zeta\nt2.png alpha\n',
      'classes.txt': 'zeta\nalpha\n',
      'mixed.txt': 'z1.png 0\na1.png alpha\n',
      'unknown.txt': 't1.png zeta\nt2.png omega\n',
      'twice.txt': 'zeta\nalpha\n\nzeta\n',
    };
    for (const [f, text] of Object.entries(lists)) writeFileSync(join(root, f), text);
  });
  const list = (train: string, test: string, classesFile?: string) =>
    loadListDataset({
      trainList: join(root, train),
      testList: join(root, test),
      dataRoot: root,
      imageSize: SIZE,
      ...(classesFile ? { classesFile: join(root, classesFile) } : {}),
    });

  it('with a classes file, name labels give the same data set as integer labels in that order', async () => {
    const ints = await list('int-train.txt', 'int-test.txt');
    const named = await list('name-train.txt', 'name-test.txt', 'classes.txt');
    assert.deepEqual(named.classNames, ['zeta', 'alpha']);
    assert.deepEqual([...named.train.labels], [...ints.train.labels]);
    assert.deepEqual([...named.test.labels], [...ints.test.labels]);
    assert.deepEqual(named.trainCounts, ints.trainCounts);
    assert.ok(Buffer.from(named.train.pixels).equals(Buffer.from(ints.train.pixels)));
    // The classes file also names integer labels.
    assert.deepEqual((await list('int-train.txt', 'int-test.txt', 'classes.txt')).classNames, [
      'zeta',
      'alpha',
    ]);
  });

  it('without a classes file, names are sorted by code point', async () => {
    const d = await list('name-train.txt', 'name-test.txt');
    assert.deepEqual(d.classNames, ['alpha', 'zeta']);
    assert.deepEqual([...d.train.labels], [1, 0, 1, 0, 0]);
    assert.deepEqual(d.trainCounts, [3, 2]);
  });

  it('refuses mixed labels, unknown names and lists of different kinds, naming file and line', async () => {
    const f = (n: string) => join(root, n);
    await assert.rejects(list('mixed.txt', 'int-test.txt'), {
      message: `${f('mixed.txt')}:2: label 'alpha' is a class name but line 1's ('0') is an integer; a list uses integer labels or class names, not both`,
    });
    await assert.rejects(list('name-train.txt', 'unknown.txt'), {
      message: `${f('unknown.txt')}:2: class 'omega' is not one of the 2 classes of ${f('name-train.txt')}`,
    });
    await assert.rejects(list('name-train.txt', 'name-test.txt', 'twice.txt'), {
      message: `${f('twice.txt')}:4: class 'zeta' is already named on line 1`,
    });
    await assert.rejects(list('name-train.txt', 'int-test.txt'), {
      message: `${f('int-test.txt')}:1: labels are integers but ${f('name-train.txt')}'s are class names; every list of a data set uses the same kind of label`,
    });
  });
});

describe('imagefolder end to end (CLI): class names in results, report, charts, table, predict, export', () => {
  const root = tempDir();
  const html = '<img src=x onerror=alert(1)>';
  const ansi = `${ESC}[31mred`;
  const names = ['cat', html, ansi];
  const out = join(tempDir(), 'run');
  let demo: ReturnType<typeof runCli>;
  before(async () => {
    await makeFolder(root, {
      train: { cat: 40, [html]: 12, [ansi]: 4 },
      test: { cat: 3, [html]: 3, [ansi]: 3 },
    });
    demo = runCli(
      [
        ...['demo', '--dataset', 'imagefolder', '--data-dir', root, '--backbone', 'resnet8'],
        ...[
          '--epochs',
          '1',
          '--batch-size',
          '8',
          '--image-size',
          '16',
          '--threads',
          '1',
          '--val-per-class',
          '2',
        ],
        ...['--crt-epochs', '1', '--lws-epochs', '1', '--out', out],
      ],
      { LONGTAIL_BACKEND: 'wasm' },
    );
  });

  it('runs a whole demo and records the class names and the held-out images in results.json', () => {
    assert.equal(demo.code, 0, demo.stderr);
    const r = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    assert.deepEqual(r.dataset.classNames, sortByCodePoint(names));
    assert.deepEqual(r.dataset.classNames, [ansi, html, 'cat']);
    assert.deepEqual(r.dataset.trainCounts, [2, 10, 38]);
    assert.equal(r.dataset.valSize, 6);
    assert.equal(r.dataset.profile.validation.files.length, 6);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).dataset, 'imagefolder');
    assert.ok(!(demo.stdout + demo.stderr).includes(ESC));
  });

  it('shows the names escaped in report.html and every SVG chart, never as markup or escape codes', () => {
    const files = [
      join(out, 'report.html'),
      ...readdirSync(join(out, 'charts'))
        .filter((f) => f.endsWith('.svg'))
        .map((f) => join(out, 'charts', f)),
    ];
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      assert.doesNotMatch(text, /<img/, f);
      assert.ok(!text.includes(ESC), f);
    }
    const report = readFileSync(join(out, 'report.html'), 'utf8');
    assert.ok(report.includes('&lt;img src=x onerror=alert(1)&gt;'));
    assert.ok(report.includes(printable(ansi)) && printable(ansi) === '\\x1b[31mred');
    const counts = readFileSync(join(out, 'charts', 'class-counts.svg'), 'utf8');
    assert.ok(counts.includes('&lt;img src=x onerror=alert(1)&gt;') && counts.includes('\\x1b[31mred'));
  });

  it('predict prints the names as text; --json and the exported labels keep them exact', async () => {
    const img = join(root, 'test', ansi, 'img000.png');
    const p = await runInProcess(['predict', '--run', out, '--method', 'crt', '--top-k', '3', img]);
    assert.equal(p.code, 0, p.stderr);
    assert.ok(!p.stdout.includes(ESC));
    for (const n of names) assert.ok(p.stdout.includes(printable(n)), p.stdout);
    const j = await runInProcess(['predict', '--run', out, '--method', 'crt', '--top-k', '3', '--json', img]);
    const top = JSON.parse(j.stdout).predictions[0].top.map((t: { name: string }) => t.name);
    assert.deepEqual([...top].sort(), [...names].sort());
    const exp = join(tempDir(), 'model');
    const e = await runInProcess(['export', '--run', out, '--method', 'crt', '--out', exp]);
    assert.equal(e.code, 0, e.stderr);
    assert.deepEqual(JSON.parse(readFileSync(join(exp, 'labels.json'), 'utf8')), [ansi, html, 'cat']);
  });

  it('data summary prints the names in its table as text', async () => {
    const r = await runInProcess([
      ...['data', 'summary', '--dataset', 'imagefolder', '--data-dir', root, '--image-size', '16'],
      ...['--val-per-class', '2', '--out', join(tempDir(), 'summary')],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(ESC));
    assert.match(r.stdout, /^0 +\\x1b\[31mred +2 +few/m);
    assert.match(r.stdout, /^1 +<img src=x onerror=alert\(1\)> +10 +few/m);
  });
});

describe('list files of iNaturalist 2018 length', () => {
  it('loads a 437,513-line list up to its images (no stack overflow on the label count)', async () => {
    const dir = tempDir();
    // iNaturalist 2018's train list: 437,513 lines over 8,142 classes. The images are absent: the
    // list is read, labels counted, every path checked, and all missing ones reported at once.
    const n = 437_513;
    const lines = Array.from({ length: n }, (_, i) => `train_val2018/${i % 8142}/${i}.jpg ${i % 8142}`);
    const list = join(dir, 'train2018.txt');
    writeFileSync(list, `${lines.join('\n')}\n`);
    const test = join(dir, 'val2018.txt');
    writeFileSync(test, 'val/0.jpg 0\n');
    await assert.rejects(
      loadListDataset({ trainList: list, testList: test, dataRoot: dir, imageSize: 8 }),
      (e: Error) =>
        e instanceof DataError &&
        e.message.startsWith(`${n} image(s) of ${list} could not be used:\n  ${list}:1: `) &&
        e.message.includes('train_val2018/0/0.jpg'),
    );
  });
});

describe('a class folder named __proto__', () => {
  it('is a class like any other: loaded, counted and charted (data summary through the CLI)', async () => {
    const root = tempDir();
    // A computed key: `{ __proto__: 5 }` would set the object's prototype instead.
    await makeFolder(root, {
      train: { cat: 7, ['__proto__']: 5, dog: 3 },
      test: { cat: 1, ['__proto__']: 1, dog: 1 },
    });
    const d = await load(root, { valPerClass: 1 });
    assert.deepEqual(d.classNames, ['__proto__', 'cat', 'dog']);
    assert.deepEqual(d.trainCounts, [4, 6, 2]);
    const out = join(tempDir(), 'summary');
    const r = await runInProcess([
      ...['data', 'summary', '--dataset', 'imagefolder', '--data-dir', root, '--image-size', '16'],
      ...['--val-per-class', '1', '--out', out],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /Error|ERROR| {4}at /);
    assert.match(r.stdout, /^0 +__proto__ +4 +few/m);
    // The chart has its three bars, each labelled with its class and its count.
    const svg = readFileSync(join(out, 'class-counts.svg'), 'utf8');
    const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    for (const t of ['__proto__', 'cat', 'dog', '4', '6', '2'])
      assert.ok(texts.includes(t), `${t} in ${texts}`);
  });
});
