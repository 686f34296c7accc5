// The failover test as one self-contained HTML page (--report FILE.html): nothing to fetch when it
// is opened (uPlot, its CSS and the page's own script are inlined; a Content-Security-Policy forbids
// any request), the figures as tables that read without JavaScript, and a timeline chart per
// scenario drawn from the report's JSON, which the page carries whole.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { figureRows, fmtDuration, fmtLatency, fmtCount, scenarioResult, span, stepCells, summary, STEP_HEAD } from './format.ts';
import {
  BACKGROUND,
  CHART_SCRIPT,
  ERROR_COLOR,
  EVENT_COLORS,
  LB_COLORS,
  NODE_COLORS,
  P50_COLOR,
  P99_COLOR,
  UNKNOWN_NODE_COLOR,
  type ChartColors,
} from './report-chart.ts';
import { capacityTables, LEGEND, type CellTable } from './capacity-format.ts';
import type { FailoverReport, ScenarioReport } from './types.ts';

/** The page lists this many failed requests per scenario; the JSON in it has them all. */
export const FAILURES_LISTED = 500;

/** Text or an attribute value, safe inside HTML. */
export function escapeHtml(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that can sit inside a <script> element whatever the strings in it hold ("</script>", "<!--"...). */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

let assets: { js: string; css: string } | undefined;

/**
 * uPlot's minified script and its CSS, read from node_modules next to this module: the same
 * resolution works from the TypeScript sources and from the bundle in dist/cli.
 */
export function chartAssets(): { js: string; css: string } {
  if (!assets) {
    const require = createRequire(import.meta.url);
    const read = (file: string) => readFileSync(require.resolve(`uplot/dist/${file}`), 'utf8');
    // neither may end the element it is inlined into
    assets = {
      js: read('uPlot.iife.min.js').replace(/<\/(script)/gi, '<\\/$1'),
      css: read('uPlot.min.css').replace(/<\/(style)/gi, '<\\/$1'),
    };
  }
  return assets;
}

/** One colour per web node and per LB, the same in every scenario of the report. */
export function chartColors(r: FailoverReport): ChartColors {
  const nodes = new Set<string>();
  const lbs = new Set<string>();
  for (const s of r.scenarios)
    for (const b of s.series) {
      for (const n of Object.keys(b.byNode)) nodes.add(n);
      if (b.vipHolder !== undefined) lbs.add(b.vipHolder);
    }
  const named = [...nodes].filter((n) => n !== '?').sort();
  const nodeColors: Record<string, string> = Object.fromEntries(named.map((n, i) => [n, NODE_COLORS[i % NODE_COLORS.length]]));
  if (nodes.has('?')) nodeColors['?'] = UNKNOWN_NODE_COLOR;
  const lbColors = Object.fromEntries([...lbs].sort().map((n, i) => [n, LB_COLORS[i % LB_COLORS.length]]));
  return { nodes: nodeColors, lbs: lbColors, errors: ERROR_COLOR, p50: P50_COLOR, p99: P99_COLOR, events: EVENT_COLORS };
}

const at = (s: ScenarioReport, t: number): string => `${((t - s.from) / 1000).toFixed(3)} s`;
const badge = (s: ScenarioReport): string => {
  const r = scenarioResult(s);
  return `<span class="badge ${r.toLowerCase()}">${r}</span>`;
};

function table(head: string[], rows: string[][], cls: string, right: number[] = []): string {
  const cell = (tag: string, c: string, i: number) => `<${tag}${right.includes(i) ? ' class="num"' : ''}>${c}</${tag}>`;
  return `<table class="${cls}"><thead><tr>${head.map((h, i) => cell('th', escapeHtml(h), i)).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => cell('td', c, i)).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function figuresTable(s: ScenarioReport): string {
  const rows = figureRows(s).map((r) => [
    escapeHtml(r.label),
    escapeHtml(r.value),
    escapeHtml(r.limit ?? ''),
    r.passed === undefined ? '' : `<span class="badge ${r.passed ? 'pass' : 'fail'}">${r.passed ? 'PASS' : 'FAIL'}</span>`,
  ]);
  return table(['figure', 'measured', 'limit', 'result'], rows, 'figures');
}

function stepsTable(s: ScenarioReport): string {
  const rows = (s.steps ?? []).map((st) => stepCells(st).map(escapeHtml));
  return `<h3>Rate steps</h3>${table(STEP_HEAD, rows, 'steps', [0, 1, 2, 3, 4, 5, 6])}`;
}

/** The figures a sysadmin looks for first, as tiles under the scenario's title. */
function keyFigures(s: ScenarioReport): string {
  const key = new Set(['failedRequests', 'detectionMs', 'takeoverMs', 'restoredMs', 'connectionsReset']);
  const tiles = figureRows(s)
    .filter((r) => r.figure !== undefined && key.has(r.figure))
    .map(
      (r) =>
        `<div class="tile${r.passed === false ? ' bad' : ''}"><div class="label">${escapeHtml(r.label)}</div><div class="value">${escapeHtml(r.value)}</div></div>`,
    );
  tiles.push(
    `<div class="tile"><div class="label">p99 during</div><div class="value">${escapeHtml(s.latency.during.count ? fmtLatency(s.latency.during.p99) : '-')}</div></div>`,
  );
  return `<div class="tiles">${tiles.join('')}</div>`;
}

function legend(s: ScenarioReport, colors: ChartColors): string {
  const holders = [...new Set(s.series.map((b) => b.vipHolder).filter((h): h is string => h !== undefined))].sort();
  const kinds = [...new Set(s.events.map((e) => e.kind))];
  const swatch = (color: string, text: string, cls = 'sw') =>
    `<span class="key"><span class="${cls}" style="background:${escapeHtml(color)}"></span>${escapeHtml(text)}</span>`;
  const parts: string[] = [];
  if (holders.length) parts.push(`<span class="group">VIP held by</span>${holders.map((h) => swatch(colors.lbs[h], h)).join('')}`);
  if (kinds.length)
    parts.push(`<span class="group">markers</span>${kinds.map((k) => swatch(colors.events[k] ?? '#888888', k, 'mk')).join('')}`);
  return parts.length ? `<p class="chart-legend">${parts.join(' ')}</p>` : '';
}

function eventsTable(s: ScenarioReport): string {
  if (s.events.length === 0) return '';
  const rows = s.events.map((e) => [
    escapeHtml(at(s, e.t)),
    `<span class="mk" style="background:${escapeHtml(EVENT_COLORS[e.kind] ?? '#888888')}"></span>${escapeHtml(e.kind)}`,
    escapeHtml(e.what),
  ]);
  return `<details open><summary>Timeline: ${s.events.length} event${s.events.length === 1 ? '' : 's'}</summary>${table(['at', 'event', 'what'], rows, 'events', [0])}</details>`;
}

function failuresTable(s: ScenarioReport): string {
  if (s.failures.length === 0) return '';
  const shown = s.failures.slice(0, FAILURES_LISTED);
  const rows = shown.map((f) =>
    [at(s, f.t), f.kind, f.status === 0 ? 'no answer' : String(f.status), f.error ?? '', f.lb ?? '', fmtLatency(f.ms)].map(escapeHtml),
  );
  const more = s.failures.length - shown.length;
  return `<details><summary>Failed requests: ${fmtCount(s.failures.length)}</summary>${table(['sent at', 'connection', 'status', 'error', 'through', 'after'], rows, 'failures', [0, 5])}${
    more > 0 ? `<p class="note">and ${fmtCount(more)} more: every one is in this page's JSON (script#failover-data) and in --json.</p>` : ''
  }</details>`;
}

function capacitySection(s: ScenarioReport): string {
  const c = s.capacity;
  if (!c) return '';
  const { compare, targets } = capacityTables(c);
  const steps = (t: CellTable) =>
    table(
      t.head,
      t.rows.map((r) => r.map(escapeHtml)),
      'steps',
      t.right,
    );
  const out: string[] = ['<h3>Capacity: the targets side by side</h3>', steps(compare)];
  for (const t of targets) out.push(`<h3>${escapeHtml(t.title)}</h3>`, ...t.tables.map(steps));
  out.push(`<p class="note">${escapeHtml(LEGEND)}</p>`);
  return out.join('');
}

function scenarioSection(s: ScenarioReport, i: number, colors: ChartColors): string {
  const head = `<h2>${badge(s)} <span class="name">${escapeHtml(s.name)}</span> ${escapeHtml(s.title)}</h2>`;
  const attrs = `class="scenario" id="scenario-${i}" data-scenario="${escapeHtml(s.name)}" data-result="${scenarioResult(s)}"`;
  if (s.skipped !== undefined) return `<section ${attrs}>${head}<p class="verdict">Skipped: ${escapeHtml(s.skipped)}</p></section>`;
  const chart =
    s.series.length > 0
      ? `<div class="chart" data-index="${i}" data-scenario="${escapeHtml(s.name)}"><div class="chart-requests"></div><div class="chart-latency"></div></div>${legend(s, colors)}`
      : '<p class="note">No load ran during this scenario: nothing to chart.</p>';
  return `<section ${attrs}>${head}${s.verdict ? `<p class="verdict">${escapeHtml(s.verdict)}</p>` : ''}${keyFigures(s)}${chart}${figuresTable(s)}${
    s.steps && s.steps.length ? stepsTable(s) : ''
  }${capacitySection(s)}${eventsTable(s)}${failuresTable(s)}</section>`;
}

function overview(r: FailoverReport): string {
  const rows = r.scenarios.map((s, i) => [
    badge(s),
    `<a href="#scenario-${i}">${escapeHtml(s.name)}</a>`,
    escapeHtml(s.title),
    escapeHtml(s.skipped !== undefined ? '-' : `${fmtCount(s.failedRequests)} of ${fmtCount(s.totalRequests)}`),
    escapeHtml(fmtDuration(s.detectionMs ?? s.takeoverMs)),
    escapeHtml(fmtDuration(s.restoredMs)),
  ]);
  return table(['result', 'scenario', 'what', 'failed requests', 'detection / takeover', 'restored'], rows, 'overview', [3, 4, 5]);
}

const PAGE_CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0; background: ${BACKGROUND}; color: #1b1b1b; }
main { max-width: 1120px; margin: 0 auto; padding: 16px 24px 48px; }
header.run { border-left: 6px solid #2ca02c; padding: 4px 16px; margin-bottom: 16px; }
header.run.failed { border-left-color: ${ERROR_COLOR}; }
h1 { font-size: 22px; margin: 8px 0; }
h2 { font-size: 18px; margin: 0 0 8px; }
h2 .name { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.summary { font-weight: 600; }
.meta, .note { color: #555; }
section.scenario { border-top: 1px solid #ddd; padding: 20px 0 8px; }
.badge { display: inline-block; min-width: 3.2em; text-align: center; border-radius: 4px; padding: 0 6px; font-size: 12px; font-weight: 700; color: #fff; vertical-align: 2px; }
.badge.pass { background: #2e7d32; } .badge.fail { background: #c62828; } .badge.skip { background: #9e7c00; }
.verdict { margin: 4px 0 12px; }
.tiles { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0 12px; }
.tile { border: 1px solid #ddd; border-radius: 6px; padding: 6px 12px; min-width: 120px; }
.tile.bad { border-color: #c62828; background: #fdecea; }
.tile .label { font-size: 12px; color: #555; } .tile .value { font-size: 16px; font-weight: 600; }
.chart { width: 100%; min-height: 500px; background: ${BACKGROUND}; }
.chart-legend { font-size: 12px; color: #333; margin: 4px 0 12px; }
.chart-legend .group { font-weight: 600; margin: 0 6px 0 12px; } .chart-legend .group:first-child { margin-left: 0; }
.key { margin-right: 10px; white-space: nowrap; }
.sw { display: inline-block; width: 14px; height: 10px; margin-right: 4px; border: 1px solid #999; vertical-align: -1px; }
.mk { display: inline-block; width: 3px; height: 12px; margin-right: 5px; vertical-align: -2px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
th { font-weight: 600; border-bottom-color: #bbb; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
details { margin: 6px 0; } summary { cursor: pointer; font-weight: 600; }
footer { color: #777; font-size: 12px; margin-top: 24px; }
`;

/** The whole report as one HTML page that opens with no network. */
export function renderHtml(report: FailoverReport): string {
  const { js, css } = chartAssets();
  const colors = chartColors(report);
  const state = report.interrupted ? 'INTERRUPTED' : report.passed ? 'PASSED' : 'FAILED';
  const title = `Failover test of ${report.cluster}: ${state}`;
  // inline styles and scripts only; nothing may be fetched
  const csp = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${css}</style>
<style>${PAGE_CSS}</style>
</head>
<body>
<main>
<header class="run ${report.passed && !report.interrupted ? 'passed' : 'failed'}">
<h1>Failover test of ${escapeHtml(report.cluster)}</h1>
<p class="summary">${escapeHtml(summary(report))}</p>
<p class="meta">engine ${escapeHtml(report.engine)} · steady load ${escapeHtml(fmtCount(report.rate))} req/s · ${escapeHtml(report.inventory)} · ${escapeHtml(span(report.startedAt, report.finishedAt))}</p>
</header>
${overview(report)}
<noscript><p class="note">The charts need JavaScript; every figure is in the tables.</p></noscript>
${report.scenarios.map((s, i) => scenarioSection(s, i, colors)).join('\n')}
<footer>Made by hasetup failover-test. Times on the charts are seconds since each scenario's load began. The whole report is in this page as JSON (script#failover-data).</footer>
</main>
<script type="application/json" id="failover-data">${jsonForScript({ report, colors })}</script>
<script>${js}</script>
<script>${CHART_SCRIPT}</script>
</body>
</html>
`;
}
