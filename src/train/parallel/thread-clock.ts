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

/**
 * Counts of this thread's events (Linux `/proc/thread-self/stat` and `status`): page faults
 * served without and with a disk read, and the times it gave up its core by itself (blocked: a
 * lock, a garbage collector's safepoint, I/O) or was taken off it. For profiles: what else
 * than arithmetic a slow shard did. Null elsewhere.
 */
export interface ThreadCounters {
  minorFaults: number;
  majorFaults: number;
  voluntarySwitches: number;
  involuntarySwitches: number;
}

export function threadCounters(): ThreadCounters | null {
  if (!available) return null;
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'latin1');
    // Fields after the command name (which may hold spaces): state, ppid, ... minflt is the 8th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync('/proc/thread-self/status', 'latin1');
    const field = (name: string) =>
      Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
    return {
      minorFaults: Number(f[7]),
      majorFaults: Number(f[9]),
      voluntarySwitches: field('voluntary_ctxt_switches'),
      involuntarySwitches: field('nonvoluntary_ctxt_switches'),
    };
  } catch {
    return null;
  }
}

/** b - a, field by field. */
export function countersSince(a: ThreadCounters, b: ThreadCounters): ThreadCounters {
  return {
    minorFaults: b.minorFaults - a.minorFaults,
    majorFaults: b.majorFaults - a.majorFaults,
    voluntarySwitches: b.voluntarySwitches - a.voluntarySwitches,
    involuntarySwitches: b.involuntarySwitches - a.involuntarySwitches,
  };
}
