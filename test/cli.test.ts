import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from './helpers/cli.ts';

describe('longtail CLI basics', () => {
  it('--help lists the commands and exits 0', () => {
    const r = runCli(['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage: longtail/);
    assert.match(r.stdout, /doctor/);
  });
  it('an unknown command is a clear error with exit code 2', () => {
    const r = runCli(['trian']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'trian'/);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/); // no stack trace
  });
  it('doctor reports the wasm backend here and the bundled data intact', () => {
    const r = runCli(['doctor', '--json'], { LONGTAIL_BACKEND: '' });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.backend, 'wasm');
    assert.equal(j.wasmSimd, true);
    assert.equal(j.bundledData.ok, true);
    assert.ok(j.availableBackends.includes('cpu'));
  });
  it('an unknown backend lists the valid ones, exit code 2', () => {
    const r = runCli(['doctor', '--backend', 'gpu']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown backend 'gpu' \(--backend\); valid backends: tensorflow, wasm, cpu/);
    const n = runCli(['doctor', '--backend', 'tensorflow']);
    assert.equal(n.code, 2);
    assert.match(
      n.stderr,
      /backend 'tensorflow' is not available.*install @tensorflow\/tfjs-node.*available: wasm, cpu/,
    );
  });
});
