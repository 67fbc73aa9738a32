import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { threadClock } from './thread-clock.ts';

describe("this thread's scheduler clock", () => {
  it('counts time on a core while this thread computes, and not while it sleeps', {
    skip: process.platform !== 'linux',
  }, async () => {
    const a = threadClock();
    assert.ok(a !== null, 'Linux has /proc/thread-self/schedstat');
    // Busy until 20 ms on a core have passed by the clock itself (however loaded the machine).
    const start = performance.now();
    let x = 0;
    let b = threadClock()!;
    while (b.cpuNs - a.cpuNs < 20e6 && performance.now() - start < 20_000) {
      for (let i = 0; i < 1e5; i++) x += Math.sqrt(i);
      b = threadClock()!;
    }
    assert.ok(x > 0);
    assert.ok(b.cpuNs - a.cpuNs >= 20e6, `on core ${(b.cpuNs - a.cpuNs) / 1e6} ms`);
    // On a core for no longer than the wall time that passed.
    assert.ok((b.cpuNs - a.cpuNs) / 1e6 <= performance.now() - start + 1);
    assert.ok(b.queuedNs >= a.queuedNs);
    // Asleep for 200 ms: a few ms on a core at most (timers, the event loop).
    await new Promise((r) => setTimeout(r, 200));
    const c = threadClock()!;
    assert.ok(c.cpuNs - b.cpuNs < 50e6, `asleep, yet ${(c.cpuNs - b.cpuNs) / 1e6} ms on core`);
  });
});
