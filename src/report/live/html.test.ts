/** The live section in report.html: data from outside (class names, labels) cannot become markup. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { confusedPairsHtml, confusedPairsOf } from '../confused-pairs.ts';
import { reportHtml } from '../html.ts';
import type { RunResults } from '../results.ts';
import { textTable } from '../table.ts';
import type { LiveData } from './data.ts';

const EVIL = '</script><img src=x onerror=alert(1)><!--';

const run = {
  schemaVersion: 2,
  tool: 'longtail',
  command: 'retrain',
  createdAt: '2026-11-30T00:00:00Z',
  dataset: {
    name: `set ${EVIL}`,
    classNames: [EVIL, 'b'],
    trainCounts: [10, 2],
    valSize: 0,
    testSize: 2,
    splits: { many: [], medium: [], few: [0, 1] },
    thresholds: { many: 100, few: 20 },
    source: 'x.npz',
  },
  config: {},
  environment: { backend: 'wasm', tfjs: '4', node: '20', cpus: 2, cpuModel: 'cpu', platform: 'linux' },
  stage1: null,
  methods: [
    {
      method: 'ncm',
      label: 'NCM',
      overall: 50,
      many: null,
      medium: null,
      few: 50,
      macroF1: 0.5,
      ece: 0.1,
      valOverall: null,
      perClass: [1, 0],
      confusion: [],
      weightNorms: [1, 1],
      tuned: null,
      shifted: [],
      mode: null,
      seconds: 0,
      details: {},
    },
  ],
  warnings: [],
  seconds: { total: 0, stage1: 0, features: 0, stage2: 0 },
} as unknown as RunResults;

const live: LiveData = {
  version: 1,
  numClasses: 2,
  classNames: [EVIL, 'b'],
  trainCounts: [10, 2],
  testCounts: [1, 1],
  thresholds: { many: 100, few: 20 },
  nTest: 2,
  k: 2,
  labels: Buffer.from(Int32Array.from([0, 1]).buffer).toString('base64'),
  base: null,
  methods: [
    { method: 'ncm', label: `NCM ${EVIL}`, colour: '#f28e2b', kind: 'stored', tau: null, logits: null },
  ],
};

describe('report.html with a live section', () => {
  const html = reportHtml(run, [], { live, script: 'void 0;' });

  it('carries the data as JSON that parses back to the same names, with no "<" in it', () => {
    const m = /<script type="application\/json" id="live-data">([^<]*)<\/script>/.exec(html);
    assert.ok(m, 'the data element is whole');
    const back = JSON.parse(m[1]!) as LiveData;
    assert.deepEqual(back.classNames, [EVIL, 'b']);
    assert.equal(back.methods[0]!.label, `NCM ${EVIL}`);
  });

  it('shows names only escaped: no markup from them, no inline handler', () => {
    assert.doesNotMatch(html, /<img/);
    const tags = html.match(/<[a-z][^>]*>/gi)!;
    assert.deepEqual(
      tags.filter((t) => /\son[a-z]+=/i.test(t)),
      [],
    );
    assert.equal(html.match(/<\/script>/g)!.length, 2, 'the data element and the script');
    assert.match(html, /NCM &lt;\/script&gt;&lt;img src=x onerror=alert\(1\)&gt;/);
  });

  it('offers the estimated prior only with calibrations, and says why not', () => {
    const opts = (h: string) =>
      [...h.matchAll(/<option value="(none|known|em|bbse)"([^>]*)>/g)].map((m) => [m[1], m[2]]);
    assert.deepEqual(opts(html), [
      ['none', ''],
      ['known', ''],
      ['em', ' disabled title="this page carries no calibration"'],
      ['bbse', ' disabled title="this page carries no calibration"'],
    ]);
    const cal = { temperature: 1.5, bias: [0.1, -0.1], valConfusion: null };
    const withCal = { ...live, methods: live.methods.map((m) => ({ ...m, calibration: cal })) };
    const h2 = reportHtml(run, [], { live: withCal, script: 'void 0;' });
    assert.deepEqual(opts(h2).slice(2), [
      ['em', ''],
      ['bbse', ' disabled title="it needs a labeled validation split, and this run had none"'],
    ]);
    assert.match(h2, /BBSE \(the validation confusion matrix; not offered here: it needs a labeled/);
    const pairs = Buffer.from(Int32Array.from([0, 3]).buffer).toString('base64');
    const withBbse = {
      ...withCal,
      methods: withCal.methods.map((m) => ({ ...m, calibration: { ...cal, valConfusion: pairs } })),
    };
    assert.deepEqual(opts(reportHtml(run, [], { live: withBbse, script: 'void 0;' })).slice(3), [
      ['bbse', ''],
    ]);
  });

  it('without live data (or its script) the page is static', () => {
    assert.doesNotMatch(reportHtml(run, []), /<script/);
    assert.doesNotMatch(reportHtml(run, [], { live }), /<script/);
  });
});

describe('a tau at the edge of its grid', () => {
  // A registered method's label is anyone's text: markup and terminal escapes in it.
  const label = `Evil \u001b[31mred\u001b[0m\n<img src=x onerror=alert(1)>`;
  const sweep = [0, 1, 2].map((value) => ({
    value,
    val: 0.5,
    test: { overall: 0.5, many: null, medium: null, few: 0.5 },
  }));
  const edgy = {
    ...run,
    methods: [{ ...run.methods[0]!, label, tuned: { param: 'tau', value: 2, chosenOn: 'val', sweep } }],
  } as unknown as RunResults;

  it('is one printable warning line in the terminal, no escape character', () => {
    const lines = textTable(edgy).split('\n');
    const warn = lines.filter((l) => l.startsWith('warning: '));
    assert.equal(warn.length, 1, lines.join('\n'));
    assert.match(warn[0]!, /tau = 2 is at the edge of the grid/);
    assert.match(warn[0]!, /Evil \\x1b\[31mred/);
    assert.equal(lines.length, 3, "header, the method's row, the warning");
    assert.ok(!textTable(edgy).includes('\u001b'), 'no escape character');
  });

  it('is escaped in the HTML: a warning paragraph, no markup from the label', () => {
    const html = reportHtml(edgy, []);
    assert.match(
      html,
      /<p class="warn">Warning: Evil \\x1b\[31mred\\x1b\[0m\\x0a&lt;img src=x onerror=alert\(1\)&gt;: tau = 2 is at the edge/,
    );
    assert.match(html, /grid edge!/);
    assert.doesNotMatch(html, /<img/);
  });
});

describe('the most-confused pairs', () => {
  it('name both classes escaped (markup and terminal escapes shown as text), with count and share', () => {
    const ansi = 'red \u001b[31mclass';
    const r = {
      ...run,
      dataset: { ...run.dataset, classNames: [EVIL, ansi] },
      methods: [{ ...run.methods[0]!, confusedPairs: [{ true: 1, predicted: 0, count: 3, share: 0.75 }] }],
    } as unknown as RunResults;
    const html = confusedPairsHtml(r);
    assert.match(
      html,
      /<tr><td>red \\x1b\[31mclass<\/td><td>&lt;\/script&gt;&lt;img src=x onerror=alert\(1\)&gt;&lt;!--<\/td><td>3<\/td><td>75\.0%<\/td><\/tr>/,
    );
    assert.doesNotMatch(html, /<img|<\/script/);
    // Without pairs, from the confusion matrix (older runs): the off-diagonal cells by count.
    const old = {
      ...r,
      methods: [
        {
          ...run.methods[0]!,
          confusedPairs: undefined,
          confusion: [
            [1, 3],
            [2, 0],
          ],
        },
      ],
    } as unknown as RunResults;
    assert.deepEqual(confusedPairsOf(old.methods[0]!), [
      { true: 0, predicted: 1, count: 3, share: 0.75 },
      { true: 1, predicted: 0, count: 2, share: 1 },
    ]);
  });
});
