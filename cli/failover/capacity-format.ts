// The capacity scenario's tables, for the terminal and the HTML page alike: one row per ramp step,
// one per flood, and the three targets (cluster, one web node, single box) side by side.
import { fmtCount, fmtDuration, fmtLatency } from './format.ts';
import type { CapacityReport, CapacityRun, ErrorCounts, Flood, HostFigures, RampStep } from './types.ts';

const TARGET: Record<CapacityRun['target'], string> = {
  cluster: 'cluster (VIP)',
  'one-node': 'one web node (VIP)',
  'single-box': 'single box (direct)',
};

export const targetLabel = (r: CapacityRun): string => `${TARGET[r.target]}: ${r.webs.join(', ')}`;

const errs = (e: ErrorCounts): string =>
  `${e.reset}/${e.timeout}/${e['502']}/${e['503']}${e['504'] + e.other ? ` +${e['504'] + e.other}` : ''}`;

const queue = (h: HostFigures): { n: number; ms: number } => {
  const lbs = Object.values(h.lbs);
  return { n: Math.max(0, ...lbs.map((l) => l.maxQueue)), ms: Math.max(0, ...lbs.map((l) => l.maxQueueMs)) };
};

/** "web01 0.49 8/2" : CPU in cores, busy FPM children / requests waiting for one. */
const webs = (h: HostFigures): string =>
  Object.entries(h.webs)
    .map(([n, w]) => `${n} ${w.cpu === null ? '-' : w.cpu.toFixed(2)} ${w.fpmBusy}/${w.fpmQueue}`)
    .join(', ');

export const RAMP_HEAD = ['rate', 'served', 'p50', 'p99', 'p99.9', 'rst/tmo/502/503', 'LB queue', 'web CPU FPM busy/wait', 'db conns'];
export const RAMP_RIGHT = [0, 1, 2, 3, 4, 6, 8];

export function rampCells(s: RampStep, slo: number): string[] {
  const q = queue(s.hosts);
  return [
    `${fmtCount(s.rate)}/s${s.underSlo ? '' : s.repeated ? ' ✗, repeated' : ' ✗'}`,
    `${fmtCount(s.served)}/s`,
    fmtLatency(s.p50),
    `${fmtLatency(s.p99)}${s.p99 >= slo ? ' >SLO' : ''}`,
    fmtLatency(s.p999),
    errs(s.errors),
    `${q.n} (${fmtLatency(q.ms)})`,
    webs(s.hosts),
    s.hosts.dbConnections === null ? '-' : fmtCount(s.hosts.dbConnections),
  ];
}

export const FLOOD_HEAD = ['flood', 'served', 'p99', 'rst/tmo/502', '503 (early)', 'LB queue', 'TMC/MRW/max ch.', 'recovery'];
export const FLOOD_RIGHT = [1, 2, 4, 5, 7];

export function floodCells(f: Flood): string[] {
  const q = queue(f.hosts);
  return [
    `${f.factor}x ${fmtCount(f.rate)}/s`,
    `${fmtCount(f.served)}/s ${Math.round(f.servedRatio * 100)} %`,
    fmtLatency(f.p99All),
    `${f.errors.reset}/${f.errors.timeout}/${f.errors['502']}`,
    `${fmtCount(f.errors['503'])} (${fmtCount(f.early503)})`,
    `${q.n} (${fmtLatency(q.ms)})`,
    `${f.logs.tooManyConnections ?? '-'}/${f.logs.maxRequestWorkers}/${f.logs.maxChildren}`,
    f.recoveryMs === null ? 'not yet' : fmtDuration(f.recoveryMs),
  ];
}

export const COMPARE_HEAD = ['target', 'capacity', 'knee', 'last flood: served', 'failed', 'p99'];
export const COMPARE_RIGHT = [1, 2, 3, 4, 5];

/** The targets side by side: capacity, knee and the worst flood. */
export function compareRows(r: CapacityReport): string[][] {
  const runs = [r.cluster, r.oneNode, r.singleBox].filter((x): x is CapacityRun => x !== undefined);
  return runs.map((x) => {
    const f = x.floods[x.floods.length - 1];
    const failed = f ? f.errors.reset + f.errors.timeout + f.errors['502'] + f.errors['503'] + f.errors['504'] + f.errors.other : null;
    return [
      targetLabel(x),
      x.capacity === null ? '-' : `${fmtCount(x.capacity)}/s`,
      x.knee === null ? '-' : `${fmtCount(x.knee)}/s`,
      f ? `${f.factor}x: ${fmtCount(f.served)}/s` : '-',
      failed === null ? '-' : `${fmtCount(failed)} of ${fmtCount(f.requests)}`,
      f ? fmtLatency(f.p99All) : '-',
    ];
  });
}

export const LEGEND =
  'rst/tmo/502/503: connections reset, timeouts, 502s, 503s; LB queue: most requests waiting (longest average wait); ' +
  'web: CPU in cores, FPM children busy/requests waiting; 503 (early): before the queue timeout; ' +
  'TMC/MRW/max ch.: "Too many connections", MaxRequestWorkers and pm.max_children log lines; ✗: over the SLO';

/** A table as both renderers draw it: its header, its rows of cells, the columns aligned right. */
export interface CellTable {
  head: string[];
  rows: string[][];
  right: number[];
}

/**
 * What both renderers show of a capacity report: the targets side by side, and per target its title
 * line with its capacity and knee, its ramp and (when it had any) its floods.
 */
export function capacityTables(c: CapacityReport): { compare: CellTable; targets: { title: string; tables: CellTable[] }[] } {
  const targets: { title: string; tables: CellTable[] }[] = [];
  for (const r of [c.cluster, c.oneNode, c.singleBox]) {
    if (!r) continue;
    const tables: CellTable[] = [{ head: RAMP_HEAD, rows: r.steps.map((x) => rampCells(x, c.sloMs)), right: RAMP_RIGHT }];
    if (r.floods.length) tables.push({ head: FLOOD_HEAD, rows: r.floods.map(floodCells), right: FLOOD_RIGHT });
    targets.push({ title: `${targetLabel(r)}: capacity ${r.capacity ?? '-'} req/s, knee ${r.knee ?? '-'} req/s`, tables });
  }
  return { compare: { head: COMPARE_HEAD, rows: compareRows(c), right: COMPARE_RIGHT }, targets };
}
