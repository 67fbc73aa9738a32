import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.ts';
import { expandInputs } from './inputs.ts';

describe('predict inputs (expandInputs)', () => {
  const top = tempDir();
  const dir = join(top, 'lists');
  mkdirSync(join(dir, 'imgs'), { recursive: true });
  writeFileSync(join(top, 'secret.png'), 'outside');
  writeFileSync(join(dir, 'imgs', 'a.png'), 'a');
  writeFileSync(join(dir, 'imgs', 'b.jpg'), 'b');
  symlinkSync(join(top, 'secret.png'), join(dir, 'imgs', 'link.png'));
  spawnSync('mkfifo', [join(dir, 'imgs', 'pipe.png')]);
  spawnSync('mkfifo', [join(top, 'direct.png')]);

  it('keeps list paths inside the list folder and reports non-regular files as problems, without opening them', () => {
    const list = join(dir, 'list.txt');
    writeFileSync(list, 'imgs/a.png 0\n../secret.png 0\n/etc/passwd 0\nimgs/link.png 0\nimgs/pipe.png 0\n');
    const { files, problems } = expandInputs([
      list,
      join(dir, 'imgs'),
      join(top, 'direct.png'),
      join(top, 'nope'),
    ]);
    // A folder named on the command line is the user's own choice: its symlinks are followed.
    const imgs = ['a.png', 'b.jpg', 'link.png'].map((f) => join(dir, 'imgs', f));
    assert.deepEqual(files, [imgs[0], ...imgs]);
    assert.deepEqual(problems, [
      `${list}:2: path '../secret.png' leads out of ${dir} (paths must stay inside their root)`,
      `${list}:3: path '/etc/passwd' is absolute; paths must be relative to ${dir}`,
      `${list}:4: path 'imgs/link.png' resolves to ${join(top, 'secret.png')}, outside ${dir} (a symlink may not lead out of the root)`,
      `${list}:5: ${join(dir, 'imgs', 'pipe.png')} is a FIFO (named pipe), not a regular file; only regular files are read`,
      `${join(dir, 'imgs', 'pipe.png')} is a FIFO (named pipe), not a regular file; only regular files are read`,
      `${join(top, 'direct.png')} is a FIFO (named pipe), not a regular file; only regular files are read`,
      `${join(top, 'nope')}: no such file or folder`,
    ]);
  });
});
