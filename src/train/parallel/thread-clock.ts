/**
 * This thread's scheduler clock (Linux `/proc/thread-self/schedstat`): nanoseconds on a core and
 * nanoseconds runnable but waiting for one. Node 20 has no per-thread CPU time, and
 * process.cpuUsage sums every thread, so a profile of one replica reads this. Null elsewhere.
 */
import { readFileSync } from 'node:fs';

export interface ThreadClock {
  /** Nanoseconds this thread ran on a core. */
  cpuNs: number;
  /** Nanoseconds this thread was runnable but waited for a core (the machine's other load). */
  queuedNs: number;
}

let available = process.platform === 'linux';

export function threadClock(): ThreadClock | null {
  if (!available) return null;
  try {
    const [cpu, queued] = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ');
    return { cpuNs: Number(cpu), queuedNs: Number(queued) };
  } catch {
    available = false; // no schedstat (a kernel without it, a sandbox): stop trying
    return null;
  }
}
