// What the terminal tables and the HTML page say alike: how a figure is written, which rows a
// scenario's table has, and the closing sentence of a run.
import type { FailoverReport, Percentiles, ScenarioReport, SpikeStep, Threshold } from './types.ts';

/** 12,345 (grouped the same way on every machine). */
export const fmtCount = (n: number): string => n.toLocaleString('en-US', { maximumFractionDigits: 2 });

/** A duration: "840 ms", "1.23 s", "75.0 s"; "-" when unknown. */
export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (Math.abs(ms) < 10) return `${Math.round(ms * 10) / 10} ms`;
  if (Math.abs(ms) < 1000) return `${Math.round(ms)} ms`;
  if (Math.abs(ms) < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A latency: "0.42 ms", "2.3 ms", "48 ms", "1.23 s"; "-" when unknown. */
export function fmtLatency(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return fmtDuration(ms);
}

/** "failedRequests" -> "failed requests", "detectionMs" -> "detection", "replicationLagSeconds" -> "replication lag". */
export function figureLabel(figure: string): string {
  return figure
    .replace(/(Ms|Seconds)$/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .toLowerCase();
}

/** A figure's value as written: durations for names ending in Ms, yes/no, counts, text as it is. */
export function fmtFigure(figure: string, value: number | string | boolean | null | undefined): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'string') return value;
  if (/Ms$/.test(figure)) return fmtDuration(value);
  if (/Seconds$/.test(figure)) return `${fmtCount(value)} s`;
  return fmtCount(value);
}

/** "before → during → after" of one percentile. */
const latencyTrio = (l: ScenarioReport['latency'], key: 'p50' | 'p99'): string =>
  [l.before, l.during, l.after].map((p: Percentiles) => (p.count > 0 ? fmtLatency(p[key]) : '-')).join(' → ');

const percent = (share: number): string => `${Math.round(share * 1000) / 10} %`;

export interface FigureRow {
  /** The figure's name in the report (failedRequests, detectionMs, a key of `figures`...), when it has one. */
  figure?: string;
  label: string;
  value: string;
  /** The limit of the threshold on this figure ("≤ 1.00 s"), when there is one. */
  limit?: string;
  passed?: boolean;
}

/**
 * The rows of a scenario's table, in the order a sysadmin reads them: failed requests, the times
 * (detection, takeover, restore), connections reset, where the traffic went, latency before,
 * during and after, the scenario's own figures; each threshold on the row of its figure (a
 * threshold on a figure the scenario has no row for gets one of its own).
 */
export function figureRows(s: ScenarioReport): FigureRow[] {
  const rows: FigureRow[] = [];
  const failedShare =
    s.totalRequests > 0 && s.failedRequests > 0 ? ` (${Math.round((s.failedRequests / s.totalRequests) * 10000) / 100} %)` : '';
  rows.push({
    figure: 'failedRequests',
    label: 'failed requests',
    value: `${fmtCount(s.failedRequests)} of ${fmtCount(s.totalRequests)}${failedShare}`,
  });
  const times: [keyof ScenarioReport & string, string][] = [
    ['detectionMs', 'detection (both proxies)'],
    ['takeoverMs', 'takeover'],
    ['restoredMs', 'restored after heal'],
  ];
  for (const [key, label] of times) if (s[key] !== undefined) rows.push({ figure: key, label, value: fmtDuration(s[key] as number) });
  if (s.connectionsReset !== undefined)
    rows.push({ figure: 'connectionsReset', label: 'connections reset', value: fmtCount(s.connectionsReset) });
  if (s.shareDuringFault && Object.keys(s.shareDuringFault).length > 0)
    rows.push({
      figure: 'shareDuringFault',
      label: 'served during the fault',
      value: Object.entries(s.shareDuringFault)
        .map(([node, share]) => `${node} ${percent(share)}`)
        .join(', '),
    });
  rows.push({ label: 'p50 before → during → after', value: latencyTrio(s.latency, 'p50') });
  rows.push({ label: 'p99 before → during → after', value: latencyTrio(s.latency, 'p99') });
  for (const [key, value] of Object.entries(s.figures ?? {}))
    rows.push({ figure: key, label: figureLabel(key), value: fmtFigure(key, value) });

  for (const th of s.thresholds) {
    let row = rows.find((r) => r.figure === th.figure && r.limit === undefined);
    if (!row) {
      row = { figure: th.figure, label: figureLabel(th.figure), value: fmtFigure(th.figure, th.actual) };
      rows.push(row);
    }
    row.limit = `${th.atLeast ? '≥' : '≤'} ${fmtFigure(th.figure, th.max)}`;
    row.passed = th.passed;
  }
  return rows;
}

/** The thresholds that failed, as "takeover 1.42 s > 1.00 s". */
export const failedThresholds = (s: ScenarioReport): string[] =>
  s.thresholds
    .filter((t: Threshold) => !t.passed)
    .map((t) => `${figureLabel(t.figure)} ${fmtFigure(t.figure, t.actual)} ${t.atLeast ? '<' : '>'} ${fmtFigure(t.figure, t.max)}`);

const when = (iso: string): string => iso.replace('T', ' ').replace(/\.\d+/, '').replace(/Z$/, ' UTC');

/** "2025-03-14 09:00:00 to 09:07:12 UTC" (the date once when both are on the same day). */
export function span(from: string, to: string): string {
  const a = when(from);
  const b = when(to);
  if (a.slice(0, 10) === b.slice(0, 10) && a.endsWith(' UTC') && b.endsWith(' UTC')) return `${a.slice(0, -4)} to ${b.slice(11)}`;
  return `${a} to ${b}`;
}

/** The spike's step table: its head, and a step as its cells. */
export const STEP_HEAD = ['rate asked', 'served', 'p50', 'p99', 'errors', 'max queue', 'max sessions'];
export const stepCells = (st: SpikeStep): string[] => [
  `${fmtCount(st.rate)}/s`,
  `${fmtCount(Math.round(st.served * 10) / 10)}/s`,
  fmtLatency(st.p50),
  fmtLatency(st.p99),
  fmtCount(st.errors),
  fmtCount(st.maxQueue),
  fmtCount(st.maxSessions),
];

export type ScenarioResult = 'PASS' | 'FAIL' | 'SKIP';
export const scenarioResult = (s: ScenarioReport): ScenarioResult => (s.skipped !== undefined ? 'SKIP' : s.passed ? 'PASS' : 'FAIL');

/** The run's closing sentence: passed or not, which scenarios failed, whether the cluster is healthy afterwards. */
export function summary(r: FailoverReport): string {
  const ran = r.scenarios.filter((s) => s.skipped === undefined);
  const failedOnes = ran.filter((s) => !s.passed);
  const skipped = r.scenarios.length - ran.length;
  const counted = `${ran.length - failedOnes.length} of ${ran.length} scenario${ran.length === 1 ? '' : 's'} held their thresholds${skipped ? ` (${skipped} skipped)` : ''}`;
  const failures = failedOnes.length ? `; failed: ${failedOnes.map((s) => s.name).join(', ')}` : '';
  const health = r.healthyAfter
    ? 'the cluster is healthy afterwards'
    : 'the cluster is NOT healthy afterwards (hasetup status shows what is wrong)';
  const head = r.interrupted
    ? `INTERRUPTED: the test stopped after ${r.scenarios.length} scenario${r.scenarios.length === 1 ? '' : 's'}; `
    : r.passed
      ? 'PASSED: '
      : 'FAILED: ';
  return `${head}${counted}${failures}; ${health}.`;
}
