/**
 * The package as a user gets it: `npm pack` (prepack builds dist/) and `npm ci` of the tarball into
 * a new project, with production dependencies only and no network. Used by test/package.test.ts
 * and by the `package` case of `npm run bench`.
 *
 * Packing runs in a staging copy of the repository (the files `npm pack` reads, node_modules linked),
 * so the build writes nothing inside the repository. Installing offline needs a lockfile, since
 * npm's cache holds the tarballs `npm ci` fetched but not the registry's package documents that
 * resolving versions would need: the project's lockfile is the repository's, with the dev-only
 * entries left out and the packed tarball as its one dependency.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');

/** What the staging copy needs for `npm pack` (package.json "files" plus what the build reads). */
const STAGED = [
  'package.json',
  'README.md',
  'tsconfig.json',
  'tsconfig.build.json',
  'bin',
  'scripts',
  'src',
  'native/binding.gyp',
  'native/src',
  'data/fashion-mnist',
];

function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync('npm', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', ...env },
    timeout: 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0)
    throw new Error(`npm ${args.join(' ')} failed in ${cwd} (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Packs the repository into `dir`; the tarball's path. */
export function packPackage(dir: string): string {
  const stage = join(dir, 'stage');
  for (const p of STAGED) cpSync(join(ROOT, p), join(stage, p), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(stage, 'node_modules'), 'dir');
  const out = npm(['pack', '--json', '--pack-destination', dir], stage);
  const [info] = JSON.parse(out.slice(out.indexOf('[\n'))) as { filename: string }[];
  return join(dir, info!.filename);
}

/** The files in a tarball, without the leading `package/`. */
export function tarballFiles(tgz: string): string[] {
  const r = spawnSync('tar', ['tzf', tgz], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`tar tzf ${tgz}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((f) => f !== '')
    .map((f) => f.replace(/^package\//, ''));
}

interface LockEntry {
  dev?: boolean;
  link?: boolean;
  [k: string]: unknown;
}

/**
 * Installs the tarball into a new project `dir` (production dependencies, offline, npm's
 * lifecycle scripts on: the native addon builds as for a user). Returns npm's output.
 */
export function installTarball(tgz: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
  const spec = `file:${relative(dir, tgz)}`;
  const bytes = readFileSync(tgz);
  const packages: Record<string, LockEntry> = {
    '': { name: 'longtail-user', version: '1.0.0', dependencies: { longtail: spec } },
    'node_modules/longtail': {
      version: pkg.version,
      resolved: spec,
      integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
      hasInstallScript: true,
      license: pkg.license,
      dependencies: pkg.dependencies,
      peerDependencies: pkg.peerDependencies,
      peerDependenciesMeta: pkg.peerDependenciesMeta,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages as Record<string, LockEntry>)) {
    if (path.startsWith('node_modules/') && !entry.dev && !entry.link) packages[path] = entry;
  }
  // No `overrides`: npm applies them only in the root project, so the user's project is a plain
  // one (onnx-proto and its protobufjs are bundled into dist/ at build time, not dependencies).
  const user = {
    name: 'longtail-user',
    version: '1.0.0',
    private: true,
    type: 'module',
    dependencies: { longtail: spec },
  };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(user, null, 2)}\n`);
  writeFileSync(
    join(dir, 'package-lock.json'),
    `${JSON.stringify({ name: 'longtail-user', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2)}\n`,
  );
  return npm(['ci', '--offline', '--omit=dev', '--no-audit', '--no-fund'], dir);
}

/** Bytes on disk under `dir` (allocated blocks, as `du`), symbolic links not followed. */
export function diskUsage(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const s = statSync(p, { throwIfNoEntry: false });
      if (e.isSymbolicLink() || s === undefined) continue;
      total += s.blocks * 512;
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return total;
}
