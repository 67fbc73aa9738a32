import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cliCallbacks } from '../src/cli/reporting.ts';

describe("a command's progress and Ctrl-C handler", () => {
  it('during() removes the Ctrl-C handler when the work throws, and returns what it returns', async () => {
    const before = process.listenerCount('SIGINT');
    const cb = cliCallbacks();
    assert.equal(process.listenerCount('SIGINT'), before + 1);
    await assert.rejects(
      cb.during(async () => {
        throw new Error('bad input');
      }),
      /bad input/,
    );
    assert.equal(process.listenerCount('SIGINT'), before);

    const ok = cliCallbacks();
    assert.equal(await ok.during(async () => 42), 42);
    assert.equal(process.listenerCount('SIGINT'), before);
  });
});
