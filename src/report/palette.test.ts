/**
 * The method palette: every pair of colours apart by a CIEDE2000 floor, marks drawn on a method's
 * colour visible on every one (WCAG contrast), and a colour carried by the registry entry.
 * CIEDE2000 is implemented here (Sharma, Wu and Dalal 2005) and checked against pairs of their
 * published test data first.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { methodEntries, registerClassifier, unregisterClassifier } from '../classifiers/registry.ts';
import type { MethodEntry } from '../classifiers/types.ts';
import { MARK_COLOUR, methodColour, SPARE_METHOD_COLOURS } from './palette.ts';

type Lab = [number, number, number];

const linear = (c: number) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
const rgb = (hex: string) => [1, 3, 5].map((i) => linear(Number.parseInt(hex.slice(i, i + 2), 16) / 255));

/** sRGB (#rrggbb) to CIELAB under D65. */
function lab(hex: string): Lab {
  const [r, g, b] = rgb(hex) as [number, number, number];
  const x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047;
  const y = 0.2126729 * r + 0.7151522 * g + 0.072175 * b;
  const z = (0.0193339 * r + 0.119192 * g + 0.9503041 * b) / 1.08883;
  const f = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : ((24389 / 27) * t + 16) / 116);
  return [116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))];
}

const rad = (deg: number) => (deg * Math.PI) / 180;

/** CIEDE2000 colour difference (kL = kC = kH = 1). */
function ciede2000([L1, a1, b1]: Lab, [L2, a2, b2]: Lab): number {
  const cBar = (Math.hypot(a1, b1) + Math.hypot(a2, b2)) / 2;
  const g = 0.5 * (1 - Math.sqrt(cBar ** 7 / (cBar ** 7 + 25 ** 7)));
  const a1p = (1 + g) * a1;
  const a2p = (1 + g) * a2;
  const c1 = Math.hypot(a1p, b1);
  const c2 = Math.hypot(a2p, b2);
  const hue = (b: number, a: number) =>
    a === 0 && b === 0 ? 0 : ((Math.atan2(b, a) * 180) / Math.PI + 360) % 360;
  const h1 = hue(b1, a1p);
  const h2 = hue(b2, a2p);
  let dh = 0;
  if (c1 * c2 !== 0) dh = Math.abs(h2 - h1) <= 180 ? h2 - h1 : h2 - h1 > 180 ? h2 - h1 - 360 : h2 - h1 + 360;
  const dH = 2 * Math.sqrt(c1 * c2) * Math.sin(rad(dh / 2));
  const lBar = (L1 + L2) / 2;
  const cpBar = (c1 + c2) / 2;
  let hBar = h1 + h2;
  if (c1 * c2 !== 0)
    hBar =
      Math.abs(h1 - h2) <= 180 ? (h1 + h2) / 2 : h1 + h2 < 360 ? (h1 + h2 + 360) / 2 : (h1 + h2 - 360) / 2;
  const t =
    1 -
    0.17 * Math.cos(rad(hBar - 30)) +
    0.24 * Math.cos(rad(2 * hBar)) +
    0.32 * Math.cos(rad(3 * hBar + 6)) -
    0.2 * Math.cos(rad(4 * hBar - 63));
  const dTheta = 30 * Math.exp(-(((hBar - 275) / 25) ** 2));
  const rc = 2 * Math.sqrt(cpBar ** 7 / (cpBar ** 7 + 25 ** 7));
  const sl = 1 + (0.015 * (lBar - 50) ** 2) / Math.sqrt(20 + (lBar - 50) ** 2);
  const sc = 1 + 0.045 * cpBar;
  const sh = 1 + 0.015 * cpBar * t;
  const rt = -Math.sin(rad(2 * dTheta)) * rc;
  const [x, y, w] = [(L2 - L1) / sl, (c2 - c1) / sc, dH / sh];
  return Math.sqrt(x * x + y * y + w * w + rt * y * w);
}

/** WCAG 2 contrast ratio of two colours (1 to 21). */
function contrast(a: string, b: string): number {
  const lum = (hex: string) => {
    const [r, g, bl] = rgb(hex) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((p, q) => q - p) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** Every pair's distance, smallest first. */
function pairs(colours: Record<string, string>): { d: number; a: string; b: string }[] {
  const names = Object.keys(colours);
  const out: { d: number; a: string; b: string }[] = [];
  for (let i = 0; i < names.length; i++)
    for (let j = i + 1; j < names.length; j++)
      out.push({
        d: ciede2000(lab(colours[names[i]!]!), lab(colours[names[j]!]!)),
        a: names[i]!,
        b: names[j]!,
      });
  return out.sort((p, q) => p.d - q.d);
}

describe('the method palette', () => {
  it('CIEDE2000 as implemented here reproduces Sharma et al. (2005) test pairs to 1e-4', () => {
    const cases: [Lab, Lab, number][] = [
      [[50, 2.6772, -79.7751], [50, 0, -82.7485], 2.0425],
      [[50, 0, 0], [50, -1, 2], 2.3669],
      [[50, 2.5, 0], [73, 25, -18], 27.1492],
      [[60.2574, -34.0099, 36.2677], [60.4626, -34.1751, 39.4387], 1.2644],
      [[2.0776, 0.0795, -1.135], [0.9033, -0.0636, -0.5514], 0.9082],
    ];
    for (const [p, q, want] of cases) assert.ok(Math.abs(ciede2000(p, q) - want) < 1e-4, `${p} ${q}`);
    // And the sRGB conversion: white is L 100, a and b 0; pure red as CIE tabulates it.
    assert.ok(Math.abs(lab('#ffffff')[0] - 100) < 1e-3);
    const red = lab('#ff0000');
    assert.ok(
      Math.abs(red[0] - 53.24) < 0.01 && Math.abs(red[1] - 80.09) < 0.01 && Math.abs(red[2] - 67.2) < 0.01,
    );
  });

  it('every pair of built-in methods differs by CIEDE2000 25 or more (Tableau 10 had 18, cRT vs weight balancing)', () => {
    const builtIn = Object.fromEntries(methodEntries().map((e) => [e.name, methodColour(e.name)]));
    assert.equal(Object.keys(builtIn).length, 9);
    for (const e of methodEntries())
      assert.equal(methodColour(e.name), e.colour, `${e.name} carries its colour`);
    const worst = pairs(builtIn)[0]!;
    assert.ok(worst.d >= 25, JSON.stringify(worst));
  });

  it('the spare colours differ from each other and every built-in by 17 or more', () => {
    const all = {
      ...Object.fromEntries(methodEntries().map((e) => [e.name, methodColour(e.name)])),
      ...Object.fromEntries(SPARE_METHOD_COLOURS.map((c, i) => [`spare ${i}`, c])),
    };
    assert.equal(new Set(Object.values(all)).size, 9 + SPARE_METHOD_COLOURS.length);
    const worst = pairs(all)[0]!;
    assert.ok(worst.d >= 17, JSON.stringify(worst));
  });

  it('a mark drawn on a method colour (the live confidence marks) has contrast 3 or more on every one', () => {
    const colours = [...methodEntries().map((e) => methodColour(e.name)), ...SPARE_METHOD_COLOURS];
    const low = colours.map((c) => ({ c, ratio: contrast(MARK_COLOUR, c) })).filter((x) => x.ratio < 3);
    assert.deepEqual(low, []);
    // The old red marks on cRT's red bars, for scale: the check would have failed them.
    assert.ok(contrast('#d62728', '#e15759') < 1.5);
  });

  it('a registered method: its own colour, or a spare one by name; a malformed colour is refused', () => {
    const entry = (name: string, colour?: string): MethodEntry => ({
      name,
      label: name,
      description: 'test',
      order: 999,
      needsClassifier: false,
      trains: false,
      options: z.object({}),
      ...(colour === undefined ? {} : { colour }),
      create: () => {
        throw new Error('not built in this test');
      },
    });
    registerClassifier(entry('palette-own', '#123456'));
    registerClassifier(entry('palette-spare'));
    try {
      assert.equal(methodColour('palette-own'), '#123456');
      assert.ok((SPARE_METHOD_COLOURS as readonly string[]).includes(methodColour('palette-spare')));
      assert.equal(methodColour('palette-spare'), methodColour('palette-spare'));
      assert.throws(
        () => registerClassifier(entry('palette-bad', 'red;}</style>')),
        /registerClassifier: colour 'red;}<\/style>' of 'palette-bad' must be #rrggbb/,
      );
    } finally {
      unregisterClassifier('palette-own');
      unregisterClassifier('palette-spare');
    }
  });
});
