/** report.html: one self-contained page (inline SVG charts, no scripts, no network). */
import { escapeHtml as esc } from '../io/display.ts';
import { markdownTable } from './markdown.ts';
import type { RunResults } from './results.ts';

function tableHtml(r: RunResults): string {
  const rows = markdownTable(r)
    .split('\n')
    .filter((_, i) => i !== 1)
    .map((line, i) => {
      const cells = line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
      const tag = i === 0 ? 'th' : 'td';
      return `<tr>${cells.map((c) => `<${tag}>${esc(c)}</${tag}>`).join('')}</tr>`;
    });
  return `<table class="results">${rows.join('\n')}</table>`;
}

export function reportHtml(r: RunResults, charts: { name: string; svg: string }[]): string {
  const env = r.environment;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>longtail: ${esc(r.dataset.name)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
td:first-child, th:first-child { text-align: left; } th { background: #f3f3f3; }
figure { margin: 1.5em 0; } figure svg { max-width: 100%; height: auto; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 12px; }
.warn { color: #a15c00; }
</style></head><body>
<h1>longtail: decoupled classifiers on ${esc(r.dataset.name)}</h1>
<p>Top-1 accuracy (%) on the balanced test set (${r.dataset.testSize} images). Many &gt; ${r.dataset.thresholds.many},
medium ${r.dataset.thresholds.few}..${r.dataset.thresholds.many}, few &lt; ${r.dataset.thresholds.few} training images per class
(${r.dataset.splits.many.length} / ${r.dataset.splits.medium.length} / ${r.dataset.splits.few.length} classes).</p>
${tableHtml(r)}
${r.warnings.map((w) => `<p class="warn">Warning: ${esc(w)}</p>`).join('\n')}
${charts.map((c) => `<figure id="${esc(c.name)}">${c.svg}</figure>`).join('\n')}
<h2>Environment</h2>
<p>Backend <b>${esc(env.backend)}</b>, tfjs ${esc(env.tfjs)}, Node ${esc(env.node)}, ${env.cpus} x ${esc(env.cpuModel)} (${esc(env.platform)}).
Total ${r.seconds.total.toFixed(0)} s (stage 1 ${r.seconds.stage1.toFixed(0)} s, features ${r.seconds.features.toFixed(0)} s,
stage 2 ${r.seconds.stage2.toFixed(0)} s). Written ${esc(r.createdAt)} by <code>longtail ${esc(r.command)}</code>.</p>
<h2>Configuration</h2>
<pre>${esc(JSON.stringify(r.config, null, 2))}</pre>
</body></html>
`;
}
