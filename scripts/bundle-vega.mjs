// Bundles the chart renderer (vega's parser and headless View, vega-lite's compiler) into one ES
// module that plain Node loads:  node scripts/bundle-vega.mjs [OUT_FILE]
// (default src/report/vega-bundle.js).
//
// Why: charts must render in every install (SVG through vega's `View.toSVG()`, PNG through sharp,
// which longtail already depends on), but vega and vega-lite installed as dependencies are about
// 43 MB (d3 modules, topojson, the canvas fallbacks, every package's copy of its sources and
// types). The code the SVG path runs is a few MB once bundled and minified. `canvas` (node-canvas)
// stays external: vega uses it only for the canvas renderer and for text measurement when it is
// installed, and estimates text widths without it (what the SVG renderer needs).
//
// Run by `npm ci` (prepare) for the repository's sources and by `npm run build` for dist/; the
// output is generated, never committed (.gitignore). vega and vega-lite are dev dependencies
// pinned to exact versions, so every build bundles the same release.
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.argv[2] ?? join(ROOT, 'src', 'report', 'vega-bundle.js'));

mkdirSync(dirname(out), { recursive: true });
await build({
  stdin: {
    contents: "export { parse, View } from 'vega';\nexport { compile } from 'vega-lite';\n",
    resolveDir: ROOT,
    loader: 'js',
  },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  external: ['canvas'],
  outfile: out,
  legalComments: 'none',
  logLevel: 'warning',
  banner: {
    // CommonJS code in the bundle requires Node's built-ins (stream, fs): an ES module has no `require`.
    js:
      "import { createRequire as __longtailRequire } from 'node:module'; const require = __longtailRequire(import.meta.url);\n" +
      '/* longtail chart renderer: vega and vega-lite (BSD-3-Clause), bundled by scripts/bundle-vega.mjs (do not edit) */',
  },
});
