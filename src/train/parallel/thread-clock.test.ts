import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countersSince, threadClock, threadCounters } from './thread-clock.ts';

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

describe("this thread's event counters", () => {
  it('counts the page faults of touching fresh memory and the switches of sleeping', {
    skip: process.platform !== 'linux',
  }, () => {
    const a = threadCounters();
    assert.ok(a !== null, 'Linux has /proc/thread-self/stat and status');
    // 16 MiB of fresh pages, touched once each: at least one fault per 2 MiB (huge pages) and
    // in practice one per 4 KiB page.
    const big = new Uint8Array(16 << 20);
    for (let i = 0; i < big.length; i += 4096) big[i] = 1;
    const b = threadCounters()!;
    assert.ok(b.minorFaults - a.minorFaults >= 8, `${b.minorFaults - a.minorFaults} faults`);
    const cell = new Int32Array(new SharedArrayBuffer(4));
    for (let k = 0; k < 3; k++) Atomics.wait(cell, 0, 0, 5); // blocks this thread 5 ms
    const d = countersSince(b, threadCounters()!);
    assert.ok(d.voluntarySwitches >= 3, `${d.voluntarySwitches} voluntary switches over 3 sleeps`);
    assert.ok(d.majorFaults >= 0 && d.involuntarySwitches >= 0);
  });
});
