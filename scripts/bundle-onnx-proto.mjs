// Bundles `onnx-proto` (the ONNX protobuf classes) with the protobufjs 7 it runs on into one ES
// module:  node scripts/bundle-onnx-proto.mjs OUT_FILE   (npm run build: dist/vendor/onnx-proto.js)
//
// Why: onnx-proto depends on protobufjs 6 (22 MB installed, with its CLI's dependencies), and npm
// applies the repository's `overrides` entry (protobufjs 7, 3.4 MB) only in the root project, so a
// user's plain `npm install longtail` would get protobufjs 6. Bundled at build time with the
// repository's protobufjs 7 (about 0.1 MB minified), onnx-proto is a dev dependency and a user
// installs neither. scripts/build.mjs points dist/'s imports of `onnx-proto` at this file.
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.argv[2] === undefined) {
  process.stderr.write('usage: node scripts/bundle-onnx-proto.mjs OUT_FILE\n');
  process.exit(2);
}
const out = resolve(process.argv[2]);

mkdirSync(dirname(out), { recursive: true });
await build({
  stdin: { contents: "import p from 'onnx-proto';\nexport default p;\n", resolveDir: ROOT, loader: 'js' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  outfile: out,
  legalComments: 'none',
  logLevel: 'warning',
  banner: {
    // CommonJS code in the bundle requires Node's built-ins (stream, fs): an ES module has no `require`.
    js:
      "import { createRequire as __longtailRequire } from 'node:module'; const require = __longtailRequire(import.meta.url);\n" +
      '/* longtail: onnx-proto (MIT) with protobufjs 7 (BSD-3-Clause), bundled by scripts/bundle-onnx-proto.mjs (do not edit) */',
  },
});
