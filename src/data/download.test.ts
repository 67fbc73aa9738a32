import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tar from 'tar';
import { tempDir } from '../../test/helpers/tmp.ts';
import { loadCifarLt } from './cifar.ts';
import { downloadCifar } from './download.ts';

describe('CIFAR download (from a local server, as the official archive is laid out)', () => {
  let server: Server;
  let base = '';
  let md5 = '';
  before(async () => {
    // A miniature cifar-10-binary.tar.gz: cifar-10-batches-bin/ with the six batch files.
    const src = tempDir();
    const folder = join(src, 'cifar-10-batches-bin');
    mkdirSync(folder);
    const rec = (label: number) => Buffer.concat([Buffer.from([label]), Buffer.alloc(3072, label * 20)]);
    for (let f = 1; f <= 5; f++)
      writeFileSync(
        join(folder, `data_batch_${f}.bin`),
        Buffer.concat(Array.from({ length: 20 }, (_, i) => rec(i % 10))),
      );
    writeFileSync(
      join(folder, 'test_batch.bin'),
      Buffer.concat(Array.from({ length: 10 }, (_, i) => rec(i))),
    );
    const archive = join(src, 'cifar.tar.gz');
    await tar.c({ gzip: true, file: archive, cwd: src }, ['cifar-10-batches-bin']);
    const bytes = readFileSync(archive);
    md5 = createHash('md5').update(bytes).digest('hex');
    server = createServer((req, res) => {
      if (req.url === '/cifar.tar.gz') res.end(bytes);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it('downloads, checks the MD5, unpacks, and the data set loads', async () => {
    const dir = tempDir();
    const got = await downloadCifar('cifar10', dir, { url: `${base}/cifar.tar.gz`, md5 });
    assert.equal(got, join(dir, 'cifar-10-batches-bin'));
    const d = loadCifarLt('cifar10', { dataDir: dir, maxPerClass: 10, imbalance: 10, valPerClass: 0 });
    assert.equal(d.test.labels.length, 10);
    assert.equal(
      d.train.labels.length,
      d.trainCounts.reduce((a, b) => a + b),
    );
    // Already there: no second download.
    assert.equal(await downloadCifar('cifar10', dir, { url: `${base}/missing`, md5 }), got);
  });

  it('refuses a checksum mismatch and a failed request, writing nothing', async () => {
    const dir = tempDir();
    await assert.rejects(
      downloadCifar('cifar10', dir, { url: `${base}/cifar.tar.gz`, md5: '0'.repeat(32) }),
      /checksum mismatch.*nothing was written/,
    );
    await assert.rejects(downloadCifar('cifar10', dir, { url: `${base}/missing`, md5 }), /HTTP 404/);
    assert.ok(!existsSync(join(dir, 'cifar-10-batches-bin')));
    assert.deepEqual(existsSync(dir) ? readdirSync(dir) : [], []);
  });
});
