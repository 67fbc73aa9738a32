// Worker bootstrap, for the sources only (the compiled package starts workers on their .js entry,
// see spawn.ts): worker threads do not inherit tsx's loader, so register it, then load the
// TypeScript entry named in workerData.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
