/**
 * The live section's script (bundled by scripts/bundle-live.mjs into report.html): reads the
 * embedded data (data.ts), and on every control change recomputes every method's numbers with
 * math.ts and redraws the shown method's per-class accuracy, confusion heat map and reliability
 * diagram. Text from the data (class names) goes in only through textContent or canvas text.
 */

import { tvDistance } from '../../eval/label-shift.ts';
import { MARK_COLOUR, SPLIT_COLOURS } from '../colours.ts';
import type { LiveArray, LiveCalibration, LiveData, LiveMethod } from './data.ts';
import {
  type Correction,
  classSplits,
  classWeights,
  columnMap,
  confusionCounts,
  correctionShift,
  countLabels,
  decodeRows,
  estimateLivePrior,
  evaluateLive,
  fractionText,
  headToTail,
  type LiveEval,
  livePosteriors,
  livePredictions,
  pctText,
  priorGrid,
  rowWeights,
  sliderPrior,
  sourceOf,
  tauScale,
} from './math.ts';

function bytes(b64: string): ArrayBuffer {
  const s = atob(b64);
  const u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return u.buffer;
}

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T | null;

interface State {
  method: string;
  tau: number;
  laTau: number;
  prior: number;
  correction: Correction;
}

/** Canvas text size: 10 px or more where the canvas is shown a little smaller than drawn. */
const CANVAS_FONT_PX = 12;

/** A canvas sized for the device's pixels; returns its 2D context in CSS pixels. */
function context(canvas: HTMLCanvasElement, w: number, h: number): CanvasRenderingContext2D {
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
  if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
  canvas.style.width = `${w}px`;
  canvas.style.aspectRatio = `${w} / ${h}`;
  // For the browser check (browser-check.ts): the text size drawn, in the canvas's own pixels.
  canvas.dataset.fontPx = String(CANVAS_FONT_PX);
  canvas.dataset.drawnWidth = String(w);
  const g = canvas.getContext('2d')!;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.font = `${CANVAS_FONT_PX}px system-ui, sans-serif`;
  return g;
}

function main(): void {
  const el = byId('live-data');
  if (!el?.textContent) return;
  const data = JSON.parse(el.textContent) as LiveData;
  const C = data.numClasses;
  const k = data.k;
  const labels = new Int32Array(bytes(data.labels));
  const rowCounts = countLabels(labels, C);
  const splits = classSplits(data.trainCounts, data.thresholds);
  const order = headToTail(data.trainCounts);
  const rankOf = new Int32Array(C);
  order.forEach((c, r) => {
    rankOf[c] = r;
  });
  const CELLS = 400;
  /** Up to this many classes the per-class chart names its classes (charts/common.ts: MAX_NAMED_CLASSES). */
  const NAMED_CLASSES = 50;
  const B = Math.ceil(C / CELLS); // classes a confusion cell
  const N = Math.ceil(C / B); // cells a side
  let lastCells: Float64Array | null = null;
  const grid = priorGrid();
  const centre = grid.findIndex((p) => p.direction === 'uniform');
  const balanced = data.testCounts.every((v) => v === data.testCounts[0]);
  const canShift = Math.min(...data.testCounts) > 0;
  const decode = (a: LiveArray) =>
    decodeRows(new Float32Array(bytes(a.offsets)), new Uint16Array(bytes(a.halves)), k, C);
  const base = data.base;
  const z = base ? decode(base.z) : null;

  const byMethod = new Map(data.methods.map((m) => [m.method, m]));
  const shownOnLoad = () => document.querySelector<HTMLSelectElement>('#live-method')?.value ?? '';
  const tauNorm = data.methods.find((m) => m.kind === 'tau-norm');
  const la = data.methods.find((m) => m.kind === 'logit-adjust');
  const initial: State = {
    // The page selects the method with the best validation accuracy (html.ts); else the first.
    method: byMethod.has(shownOnLoad()) ? shownOnLoad() : data.methods[0]!.method,
    tau: tauNorm?.tau ?? 1,
    laTau: la?.tau ?? 1,
    prior: centre,
    correction: 'none',
  };
  const state: State = { ...initial };

  // Logits by (method, its knob): stored ones decoded once, derived ones per knob value.
  const logitsCache = new Map<string, Float32Array>();
  const logitsKey = (m: LiveMethod) =>
    m.kind === 'tau-norm'
      ? `${m.method}@${state.tau}`
      : m.kind === 'logit-adjust'
        ? `${m.method}@${state.laTau}`
        : m.method;
  function logitsOf(m: LiveMethod): Float32Array {
    const key = logitsKey(m);
    let l = logitsCache.get(key);
    if (l) return l;
    if (m.kind === 'stored') l = decode(m.logits!);
    else if (m.kind === 'joint') l = columnMap(z!, k, C, null, base!.bias);
    else if (m.kind === 'tau-norm') l = columnMap(z!, k, C, tauScale(base!.norms, state.tau), null);
    else {
      // As classifiers/logit-adjust.ts folds it: b' = b + (-tau log pi), in float32.
      const lp = base!.logPrior!;
      const shift = Float32Array.from(base!.bias, (b, c) => b + Math.fround(-state.laTau * lp[c]!));
      l = columnMap(z!, k, C, null, shift);
    }
    if (m.kind !== 'stored')
      for (const key2 of [...logitsCache.keys()])
        if (key2.startsWith(`${m.method}@`)) logitsCache.delete(key2);
    logitsCache.set(key, l);
    return l;
  }

  // The prior corrections use each method's calibration as the run fitted it (at the run's tau for
  // tau-norm and logit adjustment): with the knob moved away it no longer describes the scores,
  // so EM and BBSE give no number, and the known prior is added to the raw logits.
  const source = sourceOf(data.sourcePrior, C);
  const KNOB_MATCH = 0.005; // half the sliders' step
  function calibrationOf(m: LiveMethod): LiveCalibration | null {
    const cal = m.calibration ?? null;
    if (!cal) return null;
    if (m.kind === 'tau-norm' && Math.abs(state.tau - (m.tau ?? 1)) > KNOB_MATCH) return null;
    if (m.kind === 'logit-adjust' && Math.abs(state.laTau - (m.tau ?? 1)) > KNOB_MATCH) return null;
    return cal;
  }
  /** Why a method has no estimated prior under the current knobs, or null. */
  function noEstimate(m: LiveMethod, how: 'em' | 'bbse'): string | null {
    if (!m.calibration) return 'no calibration in this page';
    if (!calibrationOf(m)) return "its calibration was fitted at the run's tau; move the slider back";
    if (how === 'bbse' && !m.calibration.valConfusion) return 'no validation counts for BBSE';
    return null;
  }
  // Per method (and knob): calibrated posteriors and predictions, read by EM and BBSE.
  const rowsCache = new Map<string, { probs?: Float64Array; pred?: Int32Array }>();
  function calibratedRows(m: LiveMethod, cal: LiveCalibration, how: 'em' | 'bbse') {
    const key = logitsKey(m);
    let r = rowsCache.get(key);
    if (!r) {
      if (rowsCache.size > 24) rowsCache.clear();
      r = {};
      rowsCache.set(key, r);
    }
    if (how === 'em') r.probs ??= livePosteriors(logitsOf(m), k, C, cal);
    else r.pred ??= livePredictions(logitsOf(m), k, C, cal);
    return r;
  }
  const estimateCache = new Map<string, number[]>();
  function estimate(m: LiveMethod, cal: LiveCalibration, how: 'em' | 'bbse', w: Float64Array): number[] {
    const key = `${logitsKey(m)}|${state.prior}|${how}`;
    let est = estimateCache.get(key);
    if (est) return est;
    const counts = how === 'bbse' ? confusionCounts(new Int32Array(bytes(cal.valConfusion!)), C) : null;
    est = estimateLivePrior(how, calibratedRows(m, cal, how), k, C, rowWeights(labels, w), source, counts);
    if (estimateCache.size > 400) estimateCache.clear();
    estimateCache.set(key, est);
    return est;
  }

  interface Shown {
    e: LiveEval;
    /** Total-variation distance of the estimated prior to the target prior (EM / BBSE), else null. */
    tv: number | null;
    /** Why the asked correction gives no number for this method (e is then uncorrected), else null. */
    missing: string | null;
  }
  const evalCache = new Map<string, Shown>();
  function evaluate(m: LiveMethod, withConfusion: boolean): Shown {
    const key = `${logitsKey(m)}|${state.prior}|${state.correction}|${withConfusion}`;
    let s = evalCache.get(key);
    if (s) return s;
    const q = sliderPrior(data.trainCounts, data.testCounts, grid[state.prior]!);
    const w = classWeights(q, rowCounts);
    const cal = calibrationOf(m);
    const how = state.correction;
    let shift: ArrayLike<number> | null = null;
    let temperature: number | undefined;
    let tv: number | null = null;
    const missing = how === 'em' || how === 'bbse' ? noEstimate(m, how) : null;
    if (how === 'known' && !cal) shift = Float64Array.from(q, (v) => Math.log(v));
    else if (how === 'known' && cal) {
      shift = correctionShift(Array.from(q), source, cal);
      temperature = cal.temperature;
    } else if ((how === 'em' || how === 'bbse') && missing === null && cal) {
      const est = estimate(m, cal, how, w);
      shift = correctionShift(est, source, cal);
      temperature = cal.temperature;
      tv = tvDistance(est, Array.from(q));
    }
    const e = evaluateLive(logitsOf(m), labels, C, w, splits, {
      shift,
      ...(temperature === undefined ? {} : { temperature }),
      confusion: withConfusion,
    });
    s = { e, tv, missing };
    if (evalCache.size > 400) evalCache.clear();
    evalCache.set(key, s);
    return s;
  }

  const methodSel = byId<HTMLSelectElement>('live-method')!;
  const tauIn = byId<HTMLInputElement>('live-tau');
  const laIn = byId<HTMLInputElement>('live-la-tau');
  const priorIn = byId<HTMLInputElement>('live-prior')!;
  const correctionSel = byId<HTMLSelectElement>('live-correction')!;
  const tbody = document.querySelector<HTMLTableSectionElement>('#live-table tbody')!;
  const tip = byId<HTMLDivElement>('live-tip')!;
  if (!canShift) {
    priorIn.disabled = true;
    correctionSel.disabled = true;
  }

  const priorLabel = (i: number) => {
    const p = grid[i]!;
    if (p.direction === 'uniform') return balanced ? 'uniform (the test set)' : 'the test set as it is';
    return `${p.direction} long tail, ratio ${p.ratio}`;
  };

  function setText(id: string, text: string): void {
    const e = byId(id);
    if (e) e.textContent = text;
  }

  let lastShown: LiveEval | null = null;
  function update(): void {
    setText('live-tau-value', state.tau.toFixed(2));
    setText('live-la-tau-value', state.laTau.toFixed(2));
    setText('live-prior-value', priorLabel(state.prior));
    setText('live-correction-value', correctionSel.selectedOptions[0]?.textContent ?? state.correction);
    setText('live-method-value', byMethod.get(state.method)!.label);
    // The table: every method under the current knobs.
    const rows: HTMLTableRowElement[] = [];
    const missing: string[] = [];
    for (const m of data.methods) {
      const { e, tv, missing: why } = evaluate(m, m.method === state.method);
      if (why) missing.push(`${m.label}: ${why}`);
      const tr = document.createElement('tr');
      tr.dataset.method = m.method;
      if (m.method === state.method) tr.className = 'shown';
      const knob =
        m.kind === 'tau-norm'
          ? ` (tau=${state.tau.toFixed(2)})`
          : m.kind === 'logit-adjust'
            ? ` (tau=${state.laTau.toFixed(2)})`
            : '';
      // No estimate for this method: '-' rather than numbers that would read as corrected.
      const cells = why
        ? [m.label + knob, '-', '-', '-', '-', '-', '-', '-']
        : [
            m.label + knob,
            pctText(e.overall),
            pctText(e.many),
            pctText(e.medium),
            pctText(e.few),
            fractionText(e.macroF1),
            fractionText(e.ece),
            tv === null ? '-' : fractionText(tv),
          ];
      cells.forEach((text, i) => {
        const td = document.createElement('td');
        td.textContent = text;
        if (i > 0) td.dataset.col = ['overall', 'many', 'medium', 'few', 'macroF1', 'ece', 'tv'][i - 1]!;
        if (i === 0) {
          const sw = document.createElement('span');
          sw.className = 'swatch';
          sw.style.background = m.colour;
          td.prepend(sw);
        }
        tr.append(td);
      });
      tr.addEventListener('click', () => {
        state.method = m.method;
        methodSel.value = m.method;
        update();
      });
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
    setText(
      'live-correction-note',
      missing.length === 0
        ? ''
        : `No estimated prior (row shown as -, charts uncorrected) for ${missing.join('; ')}.`,
    );
    const shown = byMethod.get(state.method)!;
    const e = evaluate(shown, true).e;
    lastShown = e;
    const ref =
      byMethod.get('joint') && state.method !== 'joint' ? evaluate(byMethod.get('joint')!, false).e : null;
    drawClassAccuracy(e, shown, ref);
    drawConfusion(e, shown);
    drawReliability(e, shown);
  }

  // ---- charts ---------------------------------------------------------------------------
  const PAD = { l: 44, r: 12, t: 26, b: 40 };

  function drawClassAccuracy(e: LiveEval, m: LiveMethod, ref: LiveEval | null): void {
    const canvas = document.querySelector<HTMLCanvasElement>('#live-class-accuracy canvas');
    if (!canvas) return; // hidden: too few rows per class (html.ts)
    const W = 640;
    // Up to NAMED_CLASSES classes, their names under the bars (room below for them).
    const named = C <= NAMED_CLASSES;
    const NAMES_PX = named ? 90 : 0;
    const H = 280 + NAMES_PX;
    const g = context(canvas, W, H);
    const pw = W - PAD.l - PAD.r;
    const ph = H - PAD.t - PAD.b - NAMES_PX;
    g.fillStyle = '#222';
    g.fillText(`${m.label}: accuracy of each class, head to tail (by training images)`, PAD.l, 14);
    axesY(g, PAD.l, PAD.t, pw, ph);
    const bw = pw / C;
    order.forEach((c, x) => {
      const v = e.perClass[c];
      if (v === null || v === undefined) return;
      g.fillStyle = SPLIT_COLOURS[splits[c]!];
      const h = Math.max(3, v * ph); // a 0 stays visible as a thick line on the axis
      g.fillRect(
        PAD.l + x * bw + (bw > 4 ? 0.5 : 0),
        PAD.t + ph - h,
        Math.max(bw - (bw > 4 ? 1 : 0), 0.5),
        h,
      );
      if (named && v === 0) {
        g.fillStyle = '#222';
        g.fillText('0', PAD.l + x * bw + bw / 2 - 3, PAD.t + ph - 6);
      }
    });
    if (named) {
      // Names at -60 degrees, in their split's colour, cut to 14 characters (the tip has them whole).
      order.forEach((c, x) => {
        const name = data.classNames[c] ?? String(c);
        g.save();
        g.translate(PAD.l + (x + 0.5) * bw + 4, PAD.t + ph + 6);
        g.rotate(-Math.PI / 3);
        g.textAlign = 'right';
        g.fillStyle = SPLIT_COLOURS[splits[c]!];
        g.fillText(name.length > 14 ? `${name.slice(0, 13)}…` : name, 0, 0);
        g.restore();
      });
    }
    if (ref) {
      g.fillStyle = '#111';
      order.forEach((c, x) => {
        const v = ref.perClass[c];
        if (v === null || v === undefined) return;
        g.fillRect(PAD.l + x * bw, PAD.t + ph - v * ph - 1, Math.max(bw, 1), 2);
      });
    }
    g.fillStyle = '#444';
    g.fillText(`classes 1..${C}, most training images first`, PAD.l, H - 22);
    let lx = PAD.l;
    for (const s of ['many', 'medium', 'few'] as const) {
      g.fillStyle = SPLIT_COLOURS[s];
      g.fillRect(lx, H - 12, 10, 10);
      g.fillStyle = '#222';
      g.fillText(s, lx + 13, H - 3);
      lx += 64;
    }
    if (ref) {
      g.fillStyle = '#111';
      g.fillRect(lx, H - 7, 12, 2);
      g.fillText('Joint', lx + 15, H - 3);
    }
    canvas.dataset.perClass = order
      .map((c) => (e.perClass[c] === null ? '' : e.perClass[c]!.toFixed(4)))
      .join(',');
  }

  function drawConfusion(e: LiveEval, m: LiveMethod): void {
    const canvas = document.querySelector<HTMLCanvasElement>('#live-confusion canvas');
    if (!canvas) return; // hidden: too few rows per class (html.ts)
    const W = 520; // the numbered colour bar at the right
    const H = 460;
    const g = context(canvas, W, H);
    const side = H - PAD.t - PAD.b;
    const x0 = 44;
    g.fillStyle = '#222';
    g.fillText(
      `${m.label}: confusion, each true class's row sums to 1${B > 1 ? ` (cells of ${B} x ${B} classes)` : ''}`,
      x0,
      14,
    );
    // At most CELLS x CELLS cells: for many classes, a cell is a block of B classes (by rank), its
    // value the mean over the block's true classes of their rows' share predicted into the block.
    const cm = e.confusion!;
    const cell = new Float64Array(N * N);
    const present = new Int32Array(N);
    for (let t = 0; t < C; t++) {
      let s = 0;
      for (let p = 0; p < C; p++) s += cm[t * C + p]!;
      if (s === 0) continue;
      const y = Math.floor(rankOf[t]! / B);
      present[y]!++;
      for (let p = 0; p < C; p++) {
        const v = cm[t * C + p]!;
        if (v !== 0) cell[y * N + Math.floor(rankOf[p]! / B)]! += v / s;
      }
    }
    const img = new ImageData(N, N);
    let sig = 0;
    for (let y = 0; y < N; y++)
      for (let x = 0; x < N; x++) {
        const v = present[y] === 0 ? 0 : cell[y * N + x]! / present[y]!;
        cell[y * N + x] = v;
        sig += v * ((y * 31 + x * 17) % 97);
        const a = Math.sqrt(v); // sqrt: small confusions stay visible
        const o = (y * N + x) * 4;
        img.data[o] = Math.round(255 - a * (255 - 8));
        img.data[o + 1] = Math.round(255 - a * (255 - 48));
        img.data[o + 2] = Math.round(255 - a * (255 - 107));
        img.data[o + 3] = 255;
      }
    lastCells = cell;
    const off = document.createElement('canvas');
    off.width = N;
    off.height = N;
    off.getContext('2d')!.putImageData(img, 0, 0);
    g.imageSmoothingEnabled = false;
    g.drawImage(off, x0, PAD.t, side, side);
    g.strokeStyle = '#999';
    g.strokeRect(x0, PAD.t, side, side);
    g.fillStyle = '#444';
    g.fillText('predicted class, head to tail', x0, PAD.t + side + 14);
    g.save();
    g.translate(x0 - 8, PAD.t + side);
    g.rotate(-Math.PI / 2);
    g.fillText('true class, head to tail', 0, 0);
    g.restore();
    // legend
    const lx = x0 + side + 10;
    for (let i = 0; i <= 10; i++) {
      const a = Math.sqrt(i / 10);
      g.fillStyle = `rgb(${Math.round(255 - a * 247)},${Math.round(255 - a * 207)},${Math.round(255 - a * 148)})`;
      g.fillRect(lx, PAD.t + side - (i + 1) * 16, 14, 16);
    }
    // Numbered: the share of the true class's row at each tick (the shade is its square root).
    g.fillStyle = '#222';
    for (const v of [0, 0.05, 0.25, 0.5, 1]) {
      const y = PAD.t + side - Math.sqrt(v) * 10 * 16;
      g.fillRect(lx + 14, y - 0.5, 3, 1);
      g.fillText(v === 0 ? '0' : `${Math.round(v * 100)}%`, lx + 19, y + 4);
    }
    g.save();
    g.translate(lx + 4, PAD.t + side - 10 * 16 - 6);
    g.fillText('share of row', -4, 0);
    g.restore();
    canvas.dataset.signature = sig.toFixed(6);
  }

  function drawReliability(e: LiveEval, m: LiveMethod): void {
    const canvas = document.querySelector<HTMLCanvasElement>('#live-reliability canvas')!;
    const W = 420;
    const H = 340;
    const g = context(canvas, W, H);
    const pw = W - PAD.l - PAD.r;
    const ph = H - PAD.t - PAD.b;
    g.fillStyle = '#222';
    g.fillText(`${m.label}: reliability, ECE ${fractionText(e.ece)} (15 bins)`, PAD.l, 14);
    axesY(g, PAD.l, PAD.t, pw, ph);
    const B = e.bins.length;
    e.bins.forEach((b, i) => {
      if (b.weight === 0) return;
      const x = PAD.l + (i / B) * pw;
      g.fillStyle = m.colour;
      g.fillRect(x + 1, PAD.t + ph - b.accuracy * ph, pw / B - 2, Math.max(1, b.accuracy * ph));
      // The bin's mean confidence (the gap to the bar is its calibration error): near-black on a
      // white halo, visible on every method's colour and on the white background.
      g.fillStyle = '#ffffff';
      g.fillRect(x, PAD.t + ph - b.confidence * ph - 2.5, pw / B, 5);
      g.fillStyle = MARK_COLOUR;
      g.fillRect(x + 1, PAD.t + ph - b.confidence * ph - 1.5, pw / B - 2, 3);
      g.fillStyle = '#888';
      g.fillRect(x + 1, PAD.t + ph + 2, (pw / B - 2) * Math.min(1, b.weight * 3), 3);
    });
    g.strokeStyle = '#555';
    g.setLineDash([4, 3]);
    g.beginPath();
    g.moveTo(PAD.l, PAD.t + ph);
    g.lineTo(PAD.l + pw, PAD.t);
    g.stroke();
    g.setLineDash([]);
    g.fillStyle = '#444';
    for (let i = 0; i <= 5; i++) g.fillText((i / 5).toFixed(1), PAD.l + (i / 5) * pw - 8, PAD.t + ph + 16);
    g.fillText('confidence; bars: accuracy, black: mean confidence, grey: share', PAD.l, H - 8);
  }

  function axesY(g: CanvasRenderingContext2D, x: number, y: number, w: number, h: number): void {
    g.strokeStyle = '#ddd';
    g.fillStyle = '#444';
    for (let i = 0; i <= 4; i++) {
      const yy = y + h - (i / 4) * h;
      g.beginPath();
      g.moveTo(x, yy);
      g.lineTo(x + w, yy);
      g.stroke();
      g.fillText(`${i * 25}%`, x - 34, yy + 4);
    }
  }

  // ---- tooltips (textContent only) ---------------------------------------------------------
  function showTip(ev: MouseEvent, text: string | null): void {
    if (text === null) {
      tip.hidden = true;
      return;
    }
    tip.textContent = text;
    tip.hidden = false;
    tip.style.left = `${ev.pageX + 12}px`;
    tip.style.top = `${ev.pageY + 12}px`;
  }
  const local = (ev: MouseEvent, canvas: HTMLCanvasElement, W: number) => {
    const r = canvas.getBoundingClientRect();
    const s = W / r.width;
    return { x: (ev.clientX - r.left) * s, y: (ev.clientY - r.top) * s };
  };
  const classCanvas = document.querySelector<HTMLCanvasElement>('#live-class-accuracy canvas');
  classCanvas?.addEventListener('mousemove', (ev) => {
    const { x } = local(ev, classCanvas, 640);
    const i = Math.floor(((x - PAD.l) / (640 - PAD.l - PAD.r)) * C);
    if (i < 0 || i >= C || !lastShown) return showTip(ev, null);
    const c = order[i]!;
    const v = lastShown.perClass[c];
    showTip(
      ev,
      `${data.classNames[c]} (class ${c}, ${splits[c]}): ${data.trainCounts[c]} training images, accuracy ${v === null || v === undefined ? '-' : `${pctText(v)}%`} on ${rowCounts[c]} test images`,
    );
  });
  classCanvas?.addEventListener('mouseleave', (ev) => showTip(ev, null));
  const confCanvas = document.querySelector<HTMLCanvasElement>('#live-confusion canvas');
  confCanvas?.addEventListener('mousemove', (ev) => {
    const { x, y } = local(ev, confCanvas, 520); // drawn 520 wide (drawConfusion)
    const side = 460 - PAD.t - PAD.b;
    const px = Math.floor(((x - 44) / side) * N);
    const py = Math.floor(((y - PAD.t) / side) * N);
    if (px < 0 || py < 0 || px >= N || py >= N || !lastCells) return showTip(ev, null);
    const v = lastCells[py * N + px]!;
    if (B === 1) {
      const t = order[py]!;
      const p = order[px]!;
      return showTip(
        ev,
        `true ${data.classNames[t]}, predicted ${data.classNames[p]}: ${pctText(v)}% of the class`,
      );
    }
    const span = (i: number) => `${i * B + 1}..${Math.min(C, (i + 1) * B)}`;
    showTip(
      ev,
      `true classes ranked ${span(py)}, predicted ranked ${span(px)}: ${pctText(v)}% of their images`,
    );
  });
  confCanvas?.addEventListener('mouseleave', (ev) => showTip(ev, null));

  // ---- controls -------------------------------------------------------------------------
  methodSel.value = state.method;
  if (tauIn) tauIn.value = String(state.tau);
  if (laIn) laIn.value = String(state.laTau);
  priorIn.value = String(state.prior - centre);
  methodSel.addEventListener('change', () => {
    state.method = methodSel.value;
    update();
  });
  tauIn?.addEventListener('input', () => {
    state.tau = Number(tauIn.value);
    update();
  });
  laIn?.addEventListener('input', () => {
    state.laTau = Number(laIn.value);
    update();
  });
  priorIn.addEventListener('input', () => {
    state.prior = centre + Number(priorIn.value);
    update();
  });
  correctionSel.addEventListener('change', () => {
    state.correction = correctionSel.value as Correction;
    update();
  });
  byId('live-reset')?.addEventListener('click', () => {
    Object.assign(state, initial);
    methodSel.value = state.method;
    if (tauIn) tauIn.value = String(state.tau);
    if (laIn) laIn.value = String(state.laTau);
    priorIn.value = '0';
    correctionSel.value = 'none';
    update();
  });
  update();
}

main();
