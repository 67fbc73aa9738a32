import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SPLIT_COLOURS } from '../palette.ts';
import { renderSvg } from '../render.ts';
import { type RunResults, RunResultsSchema } from '../results.ts';
import { allCharts } from './all-charts.ts';
import { classCountChart } from './class-counts.ts';
import { integerTicks, MAX_CONFUSION_CLASSES, type VegaLiteSpec } from './common.ts';
import { confusionChart } from './confusion.ts';
import { f1EceChart } from './f1-ece.ts';
import { perClassChart } from './per-class.ts';
import { perClassBySplitChart, perClassSplitSummary, quantile } from './per-class-splits.ts';
import { bestMethods, CORRECTIONS, priorCorrectionChart } from './prior-correction.ts';
import { splitBarsChart } from './split-accuracy.ts';
import { trainingCurvesChart } from './training-curves.ts';

const ESC = '\u001b';

type Method = RunResults['methods'][number];

/** A method's results with hand-picked numbers (the rest consistent with `k` classes). */
function method(name: string, label: string, k: number, over: Partial<Method> = {}): Method {
  return {
    method: name,
    label,
    overall: 50,
    many: 60,
    medium: 40,
    few: 0,
    macroF1: 0.4,
    ece: 0.1,
    valOverall: null,
    perClass: Array.from({ length: k }, (_, c) => (c % 2 === 0 ? 0.5 : 0)),
    confusion: Array.from({ length: k }, (_, t) => Array.from({ length: k }, (_, p) => (t === p ? 3 : 1))),
    weightNorms: Array.from({ length: k }, (_, c) => 1 + c / 10),
    tuned: null,
    shifted: [],
    mode: 'features',
    seconds: 0,
    details: {},
    ...over,
  };
}

/** A valid results.json (checked against its schema) with these methods and classes. */
function run(
  methods: Method[],
  trainCounts: number[],
  opts: { classNames?: string[]; epochs?: number } = {},
): RunResults {
  const k = trainCounts.length;
  const history = Array.from({ length: opts.epochs ?? 0 }, (_, i) => ({
    epoch: i + 1,
    lr: 0.1,
    loss: 2 - i / 10,
    trainAcc: 30 + i,
    valAcc: 20 + i,
    imagesPerSec: 100,
    seconds: 1,
  }));
  return RunResultsSchema.parse({
    schemaVersion: 2,
    tool: 'longtail',
    command: 'demo',
    createdAt: '2026-11-30T00:00:00Z',
    dataset: {
      name: 'synthetic',
      classNames: opts.classNames ?? trainCounts.map((_, c) => `class ${c}`),
      trainCounts,
      valSize: 0,
      testSize: 10 * k,
      splits: { many: [], medium: [], few: [] },
      thresholds: { many: 100, few: 20 },
      source: 'test',
    },
    config: {},
    environment: { backend: 'cpu', tfjs: '4', node: '20', cpus: 1, cpuModel: 'x', platform: 'linux' },
    stage1: history.length ? { history, bestEpoch: 1, bestValAcc: 20, seconds: 1 } : null,
    methods,
    warnings: [],
    seconds: { total: 0, stage1: 0, features: 0, stage2: 0 },
  });
}

/** Every colour scale over `field` in a spec (nested layers, facets): domain value -> colour. */
function colourMaps(spec: unknown, field: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      const scale = o.scale as { domain?: unknown; range?: unknown } | undefined;
      if (o.field === field && Array.isArray(scale?.domain) && Array.isArray(scale?.range)) {
        assert.equal(scale.domain.length, scale.range.length);
        out.push(new Map(scale.domain.map((d, i) => [String(d), String((scale.range as unknown[])[i])])));
      }
      Object.values(o).forEach(walk);
    }
  };
  walk(spec);
  return out;
}

/** Every encoding channel (x, y, xOffset, ...) of a spec, nested layers and facets included. */
function channels(spec: unknown, name: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      const enc = o.encoding as Record<string, Record<string, unknown>> | undefined;
      if (enc?.[name]) out.push(enc[name]);
      Object.values(o).forEach(walk);
    }
  };
  walk(spec);
  return out;
}

/** The text of the SVG's <text> elements of one role (axis labels, marks). */
function svgTexts(svg: string, role: string): string[][] {
  const groups = [...svg.matchAll(new RegExp(`class="[^"]*${role}[^"]*"[^>]*>(.*?)</g>`, 'gs'))];
  return groups.map((g) => [...g[1]!.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => t[1]!));
}

const all = ['joint', 'ncm', 'crt', 'tau-norm', 'lws'];
const labels: Record<string, string> = {
  joint: 'Joint',
  ncm: 'NCM',
  crt: 'cRT',
  'tau-norm': 'tau-norm',
  lws: 'LWS',
};

describe('chart colours', () => {
  it('one colour per method in every chart of a run and between runs with different methods', () => {
    const counts = [300, 120, 50, 30, 10, 5];
    const a = run(
      all.map((m) => method(m, labels[m]!, counts.length)),
      counts,
      { epochs: 3 },
    );
    const b = run(
      ['lws', 'joint'].map((m) => method(m, labels[m]!, counts.length)),
      counts,
    );
    const seen = new Map<string, string>();
    let scales = 0;
    for (const r of [a, b])
      for (const [name, spec] of Object.entries(allCharts(r))) {
        for (const map of colourMaps(spec, 'method')) {
          scales++;
          // Only the run's own methods are in the scale, in table order.
          assert.deepEqual(
            [...map.keys()],
            r.methods.map((m) => m.label),
            name,
          );
          for (const [label, colour] of map) {
            assert.equal(seen.get(label) ?? colour, colour, `${label} in ${name}`);
            seen.set(label, colour);
          }
        }
      }
    assert.ok(scales >= 8, `${scales} method colour scales`);
    // The registry's fixed colours, not an order-dependent scheme.
    assert.equal(seen.get('Joint'), '#4e79a7');
    assert.equal(seen.get('LWS'), '#007700');
    assert.equal(new Set(seen.values()).size, all.length);
  });

  it('one colour per split (All / many / medium / few) wherever splits are coloured', () => {
    const counts = [300, 120, 50, 30, 10, 5];
    const tuned = {
      param: 'tau',
      value: 1,
      chosenOn: 'val' as const,
      sweep: [0, 1, 2].map((v) => ({
        value: v,
        val: null,
        test: { overall: 0.5, many: 0.6, medium: 0.4, few: 0.1 },
      })),
    };
    const r = run([method('tau-norm', 'tau-norm', counts.length, { tuned })], counts);
    const charts = allCharts(r);
    let scales = 0;
    for (const name of ['tau-norm-sweep', 'class-counts', 'per-class-accuracy']) {
      const maps = colourMaps(charts[name], 'split');
      assert.ok(maps.length > 0, name);
      for (const map of maps) {
        scales++;
        for (const [split, colour] of map)
          assert.equal(colour, SPLIT_COLOURS[split as keyof typeof SPLIT_COLOURS], `${split} in ${name}`);
      }
    }
    assert.ok(scales >= 3);
    // The class-count chart's legend names only the splits present: here all three.
    assert.deepEqual([...colourMaps(charts['class-counts'], 'split')[0]!.keys()], ['many', 'medium', 'few']);
  });
});

describe('chart axes and labels', () => {
  it('integerTicks: whole numbers, at most about max of them, at 1 / 2 / 5 x 10^n steps', () => {
    assert.deepEqual(integerTicks(1, 2), [1, 2]);
    assert.deepEqual(integerTicks(1, 1), [1]);
    assert.deepEqual(integerTicks(1, 10, 10), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(integerTicks(1, 30, 10), [5, 10, 15, 20, 25, 30]);
    assert.deepEqual(integerTicks(1, 1000, 10), [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
    for (let hi = 1; hi < 400; hi += 7) {
      const t = integerTicks(1, hi, 12);
      assert.ok(t.length >= 1 && t.length <= 13, `${hi}: ${t.length}`);
      assert.ok(t.every((v) => Number.isInteger(v) && v >= 1 && v <= hi));
    }
  });

  it('epochs are integers: the spec asks for integer ticks and the drawn SVG has no fractional one', async () => {
    for (const epochs of [1, 2, 7, 30]) {
      const spec = trainingCurvesChart(run([method('joint', 'Joint', 3)], [50, 20, 5], { epochs }))!;
      const x = channels(spec, 'x').find((c) => c.field === 'epoch' && c.axis)!;
      const axis = x.axis as { format: string; values: number[]; labelAngle: number };
      assert.equal(axis.format, 'd');
      assert.equal(axis.labelAngle, 0);
      assert.ok(axis.values.every(Number.isInteger));
      const svg = await renderSvg(spec);
      // Two panels (accuracy, loss), each with an epoch axis labelled with exactly the integer ticks.
      const want = integerTicks(1, epochs, 12).map(String);
      const groups = svgTexts(svg, 'role-axis-label');
      assert.equal(groups.filter((l) => l.join() === want.join()).length, 2, JSON.stringify(groups));
      // The old axis read "1 2 2" (a tick at 1.5 formatted as an integer).
      for (const l of groups) assert.equal(new Set(l).size, l.length, `repeated label: ${l.join(' ')}`);
    }
  });

  it('short labels (splits, priors, ranks) are horizontal', () => {
    const counts = [300, 120, 50, 30, 10, 5];
    const r = run([method('joint', 'Joint', counts.length)], counts);
    const bars = splitBarsChart(r);
    for (const x of channels(bars, 'x')) assert.equal((x.axis as { labelAngle: number }).labelAngle, 0);
    const pc = perClassChart(r);
    for (const x of channels(pc, 'x').filter((c) => c.axis))
      assert.equal((x.axis as { labelAngle: number }).labelAngle, 0);
  });

  it('a bar of value 0 is drawn (a line in its colour) and labelled 0.0', async () => {
    // Few-shot of Joint is 0: the case that looked like a missing bar.
    const r = run(
      [method('joint', 'Joint', 3, { few: 0 }), method('crt', 'cRT', 3, { few: 30 })],
      [150, 50, 5],
    );
    const spec = splitBarsChart(r);
    const layers = spec.layer as {
      mark: { type: string };
      encoding: Record<string, { field?: string; format?: string }>;
    }[];
    const bar = layers.find((l) => l.mark.type === 'bar')!;
    assert.equal(bar.encoding.stroke!.field, 'method'); // the outline keeps a zero-height bar visible
    const text = layers.find((l) => l.mark.type === 'text')!;
    assert.deepEqual([text.encoding.text!.field, text.encoding.text!.format], ['value', '.1f']);
    const zero = spec.data.values.filter((v) => v.value === 0);
    assert.deepEqual(zero, [{ method: 'Joint', split: 'few', group: 'few', accuracy: 0, value: 0 }]);
    const svg = await renderSvg(spec);
    const marks = svgTexts(svg, 'role-mark').flat();
    // Every bar's value is written: All, many, medium, few for both methods.
    assert.deepEqual(marks.sort(), ['0.0', '30.0', '40.0', '40.0', '50.0', '50.0', '60.0', '60.0']);
    const rects = svg.match(/aria-roledescription="bar"[^>]*>/g) ?? [];
    assert.equal(rects.length, 8);
    for (const rect of rects) assert.match(rect, /stroke="#[0-9a-f]{6}"/);
  });

  it('names an absent split instead of leaving a gap', () => {
    const r = run([method('joint', 'Joint', 2, { many: null })], [50, 5]);
    const title = splitBarsChart(r).title as { subtitle: string };
    assert.equal(title.subtitle, 'no bar for many: no class has more than 100 training images');
  });
});

describe('charts of what results.json holds', () => {
  const counts = [5, 50, 20]; // head to tail: class 1, class 2, class 0
  const names = ['tail', 'head', 'middle'];

  it('per-class accuracy: classes head to tail by training count, per method, absent classes left out', () => {
    const perClass = [0.1, 0.9, null];
    const r = run([method('crt', 'cRT', 3, { perClass })], counts, { classNames: names });
    const v = perClassChart(r).data.values;
    assert.deepEqual(
      v.map((p) => [p.rank, p.class, p.trainCount, p.accuracy]),
      [
        [1, 'head', 50, 90],
        [3, 'tail', 5, 10],
      ],
    );
  });

  it('per-class accuracy of hundreds of classes: a moving mean per method over each class as a faint line', () => {
    const k = 500;
    const counts = Array.from({ length: k }, (_, c) => 500 - c);
    const r = run([method('joint', 'Joint', k)], counts);
    const spec = perClassChart(r) as VegaLiteSpec & { spec: { layer: Record<string, unknown>[] } };
    const lines = spec.spec.layer.filter((l) => (l.mark as { type: string }).type === 'line');
    // No bar per class above 200 classes: one faint line of the classes, one of the moving mean.
    assert.equal(spec.spec.layer.filter((l) => (l.mark as { type: string }).type === 'rect').length, 1);
    assert.equal(lines.length, 2);
    const line = lines.find((l) => l.transform !== undefined)!;
    const w = (line.transform as { window: unknown; frame: number[]; groupby: string[] }[])[0]!;
    assert.deepEqual([w.frame, w.groupby], [[-10, 10], ['method']]);
    assert.equal((spec.title as { subtitle: string }).subtitle, 'line: mean over 21 neighbouring classes');
    const small = perClassChart(run([method('joint', 'Joint', 3)], [50, 20, 5])) as typeof spec;
    assert.equal(small.spec.layer.filter((l) => (l.mark as { type: string }).type === 'line').length, 0);
  });

  it('macro-F1 and ECE per method, written on the bars', () => {
    const r = run(
      [
        method('joint', 'Joint', 3, { macroF1: 0.25, ece: 0.3 }),
        method('ncm', 'NCM', 3, { macroF1: 0.5, ece: 0 }),
      ],
      counts,
    );
    const spec = f1EceChart(r);
    assert.deepEqual(
      spec.data.values.map((p) => [p.method, p.metric, p.value]),
      [
        ['Joint', 'macro-F1', 0.25],
        ['Joint', 'ECE (lower is better)', 0.3],
        ['NCM', 'macro-F1', 0.5],
        ['NCM', 'ECE (lower is better)', 0],
      ],
    );
    const text = channels(spec, 'text')[0]!;
    assert.deepEqual([text.field, text.format], ['value', '.3f']);
  });

  it('confusion matrices: rows normalised, head to tail; none for [] or for more than 50 classes', () => {
    // confusion[true][predicted]: class 1 (head) has 8 images, 6 right, 2 called class 0.
    const confusion = [
      [1, 1, 0],
      [2, 6, 0],
      [0, 0, 0],
    ];
    const r = run([method('joint', 'Joint', 3, { confusion })], counts, { classNames: names });
    const cells = confusionChart(r)!.data.values;
    assert.equal(cells.length, 9);
    const cell = (t: string, p: string) => cells.find((c) => c.true === t && c.predicted === p)!;
    assert.deepEqual([cell('head', 'head').count, cell('head', 'head').share], [6, 0.75]);
    assert.equal(cell('head', 'tail').share, 0.25);
    assert.equal(cell('middle', 'middle').share, 0); // no test image: an empty row, not NaN
    assert.deepEqual(
      cells.filter((c) => c.predicted === 'head').map((c) => c.trueRank),
      [1, 2, 3],
    );
    const none = run([method('joint', 'Joint', 3, { confusion: [] })], counts);
    assert.equal(confusionChart(none), null);
    assert.ok(!('confusion' in allCharts(none)));
    assert.ok('per-class-accuracy' in allCharts(none) && 'f1-ece' in allCharts(none));
    const k = MAX_CONFUSION_CLASSES + 1;
    const big = run(
      [method('joint', 'Joint', k)],
      Array.from({ length: k }, (_, c) => 200 - c),
    );
    assert.equal(confusionChart(big), null);
  });

  it('class names are shown as text: no control character in a spec, no markup in the SVG', async () => {
    const hostile = ['<img src=x onerror=alert(1)>', `${ESC}[31mred`, 'plain'];
    const r = run([method('joint', `Joint${ESC}[2J`, 3), method('crt', 'cRT', 3)], [150, 50, 5], {
      classNames: hostile,
      epochs: 2,
    });
    const charts: Record<string, VegaLiteSpec> = { ...allCharts(r), counts: classCountChart(r.dataset) };
    for (const [name, spec] of Object.entries(charts)) {
      const json = JSON.stringify(spec);
      assert.ok(!json.includes(ESC), name);
      const svg = await renderSvg(spec);
      assert.doesNotMatch(svg, /<img/, name);
      assert.ok(!svg.includes(ESC), name);
    }
    const svg = await renderSvg(charts.confusion!);
    if (svg !== null) {
      assert.ok(svg.includes('&lt;img src=x onerror=alert(1)&gt;'));
      assert.ok(svg.includes('\\x1b[31mred'));
      assert.ok(svg.includes('Joint\\x1b[2J'));
    }
  });
});

describe('charts for many classes and shifted priors', () => {
  it('per-class accuracy by split: quartiles as NumPy computes them (linear), only above 50 classes', () => {
    // 60 classes: 20 many (> 100), 20 medium, 20 few (< 20) training images.
    const counts = [...new Array(20).fill(300), ...new Array(20).fill(50), ...new Array(20).fill(5)];
    // Few classes' accuracies: 0, 0, 0.5, 1, 1/3, 0, 1, then 13 without test images (null).
    const few = [0, 0, 0.5, 1, 1 / 3, 0, 1, ...new Array<null>(13).fill(null)];
    const perClass = [...new Array(20).fill(0.9), ...new Array(20).fill(0.5), ...few];
    const r = run([method('joint', 'Joint', 60, { perClass, confusion: [] })], counts);
    const s = perClassSplitSummary(r);
    const f = s.find((x) => x.split === 'few')!;
    // np.quantile([0, 0, 50, 100, 33.3, 0, 100], [0.25, 0.5, 0.75]) = [0, 33.33, 75].
    assert.equal(f.classes, 7);
    assert.deepEqual([f.min, f.q1, f.q3, f.max], [0, 0, 75, 100]);
    assert.ok(Math.abs(f.median - 100 / 3) < 1e-9);
    assert.deepEqual(
      s.map((x) => [x.split, x.median]),
      [
        ['many', 90],
        ['medium', 50],
        ['few', f.median],
      ],
    );
    assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
    const spec = perClassBySplitChart(r)!;
    assert.equal(JSON.stringify(spec).includes('"median"'), true);
    assert.equal(perClassBySplitChart(run([method('joint', 'Joint', 6)], [300, 120, 50, 30, 10, 5])), null);
  });

  it('accuracy against the shift ratio: four lines per best method from results.json, ratio 1 the test set', () => {
    const shifted = [2, 10, 50].flatMap((ratio) =>
      (['forward', 'backward'] as const).map((direction) => ({
        prior: `${direction} ${ratio}`,
        ratio,
        direction,
        n: 100,
        seed: 0,
        overall: 40 - ratio / 10,
        many: null,
        medium: null,
        few: null,
        knownPrior: 45 + ratio / 10,
        em: 43,
        bbse: direction === 'forward' ? 42 : null,
      })),
    );
    const methods = [
      method('joint', 'Joint', 6, { valOverall: 30, shifted }),
      method('ncm', 'NCM', 6, { valOverall: 50, shifted }),
      method('crt', 'cRT', 6, { valOverall: 40, shifted }),
      method('lws', 'LWS', 6, { valOverall: 10, shifted }),
    ];
    const r = run(methods, [300, 120, 50, 30, 10, 5]);
    assert.deepEqual(
      bestMethods(r, 3).map((m) => m.method),
      ['ncm', 'crt', 'joint'],
    );
    const spec = priorCorrectionChart(r)! as unknown as {
      data: {
        values: { method: string; direction: string; ratio: number; correction: string; accuracy: number }[];
      };
    };
    const v = spec.data.values;
    assert.deepEqual([...new Set(v.map((x) => x.method))], ['NCM', 'cRT', 'Joint']);
    const at = (m: string, d: string, ratio: number, c: string) =>
      v.filter((x) => x.method === m && x.direction === d && x.ratio === ratio && x.correction === c);
    assert.deepEqual(
      at('NCM', 'backward', 50, 'known prior (oracle)').map((x) => x.accuracy),
      [50],
    );
    assert.deepEqual(
      at('NCM', 'backward', 50, 'no correction').map((x) => x.accuracy),
      [35],
    );
    assert.deepEqual(
      at('NCM', 'forward', 10, 'BBSE-estimated prior').map((x) => x.accuracy),
      [42],
    );
    assert.deepEqual(at('NCM', 'backward', 10, 'BBSE-estimated prior'), [], 'a null estimate draws no point');
    assert.deepEqual(
      at('cRT', 'forward', 1, 'no correction').map((x) => x.accuracy),
      [50],
    );
    // Four lines, each its own colour.
    // (strokeDash is a scale over the same field: dashes, not colours.)
    const maps = colourMaps(spec, 'correction').filter((m) =>
      [...m.values()].every((c) => c.startsWith('#')),
    );
    assert.equal(maps.length, 1);
    assert.deepEqual(
      [...maps[0]!.keys()],
      CORRECTIONS.map((c) => c.label),
    );
    assert.equal(new Set(maps[0]!.values()).size, 4);
    assert.equal(priorCorrectionChart(run([method('joint', 'Joint', 6)], [300, 120, 50, 30, 10, 5])), null);
  });
});
