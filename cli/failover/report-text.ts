// The failover test on the terminal: a table per scenario (figures with their thresholds, and for
// the spike one row per rate step), the verdict sentence under it, a summary line at the end.
// Never wider than 100 columns; colour only when asked for. cli-table3 draws the tables.
import Table from 'cli-table3';
import { styleText } from 'node:util';
import { figureRows, fmtCount, scenarioResult, span, stepCells, summary, STEP_HEAD, type ScenarioResult } from './format.ts';
import type { FailoverReport, ScenarioReport } from './types.ts';
import { capacityTables, LEGEND, type CellTable } from './capacity-format.ts';

export const MAX_COLUMNS = 100;

export interface TextOptions {
  /** ANSI colours (the command passes false when stdout is not a TTY or NO_COLOR / CI is set). */
  color: boolean;
}

type Style = Parameters<typeof styleText>[0];
type Paint = (style: Style, s: string) => string;

const painter = (color: boolean): Paint => (color ? (style, s) => styleText(style, s, { validateStream: false }) : (_style, s) => s);

const RESULT_STYLE: Record<ScenarioResult, Style> = { PASS: ['bold', 'green'], FAIL: ['bold', 'red'], SKIP: ['bold', 'yellow'] };

/** Columns a plain cell takes (one per code point: the report's text is not wide script). */
const width = (s: string): number => Math.max(0, ...s.split('\n').map((l) => [...l].length));

/**
 * A table within MAX_COLUMNS: when its natural width is more, the widest columns are narrowed (not
 * below 8) and their cells wrapped to fit (a word longer than the column is cut across lines, never
 * truncated: a host name is read whole). Cells are measured plain and painted after.
 */
function table(
  head: string[],
  rows: string[][],
  paint: Paint,
  opts: { right?: number[]; paintCell?: (col: number, s: string) => string } = {},
): string {
  const natural = head.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ''))) + 2);
  const frame = head.length + 1;
  let over = natural.reduce((a, b) => a + b, 0) + frame - MAX_COLUMNS;
  const widths = [...natural];
  while (over > 0) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest] <= 8) break;
    widths[widest]--;
    over--;
  }
  const t = new Table({
    head: head.map((h) => paint('bold', h)),
    // compact: a rule under the head, none between body rows
    style: { head: [], border: [], 'padding-left': 1, 'padding-right': 1, compact: true },
    colAligns: head.map((_, i) => (opts.right?.includes(i) ? 'right' : 'left')),
  });
  for (const r of rows)
    t.push(r.map((c, i) => (widths[i] < natural[i] ? wrap(c, widths[i] - 2) : c)).map((c, i) => opts.paintCell?.(i, c) ?? c));
  return t.toString();
}

/** A unit stays on the line of its number ("2.15 s", "40 %"). */
const UNIT = /^(ms|s|%|req\/s)[.,;:)]*$/;

/** Plain text wrapped at `max` columns, each line starting with `indent`. */
export function wrap(text: string, max: number, indent = ''): string {
  const words: string[] = [];
  for (const w of text.split(/\s+/).filter(Boolean)) {
    if (UNIT.test(w) && words.length > 0) words[words.length - 1] += ` ${w}`;
    else words.push(w);
  }
  const room = Math.max(1, max - indent.length);
  const lines: string[] = [];
  let line = '';
  for (let word of words) {
    // a word longer than a whole line is cut across lines
    while (width(word) > room) {
      if (line) lines.push(indent + line);
      line = '';
      lines.push(indent + [...word].slice(0, room).join(''));
      word = [...word].slice(room).join('');
    }
    if (line && indent.length + width(line) + 1 + width(word) > max) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines.join('\n');
}

function figuresTable(s: ScenarioReport, paint: Paint): string {
  const rows = figureRows(s).map((r) => [r.label, r.value, r.limit ?? '', r.passed === undefined ? '' : r.passed ? 'PASS' : 'FAIL']);
  return table(['figure', 'measured', 'limit', 'result'], rows, paint, {
    paintCell: (col, c) => (col === 3 && (c === 'PASS' || c === 'FAIL') ? paint(RESULT_STYLE[c], c) : undefined) ?? c,
  });
}

function stepsTable(s: ScenarioReport, paint: Paint): string {
  return table(STEP_HEAD, (s.steps ?? []).map(stepCells), paint, {
    right: [0, 1, 2, 3, 4, 5, 6],
    paintCell: (col, c) => (col === 4 && c !== '0' ? paint('red', c) : c),
  });
}

function capacitySection(s: ScenarioReport, paint: Paint): string[] {
  const c = s.capacity;
  if (!c) return [];
  const { compare, targets } = capacityTables(c);
  const steps = (t: CellTable) => table(t.head, t.rows, paint, { right: t.right });
  const out: string[] = [];
  for (const t of targets) out.push(paint('bold', t.title), ...t.tables.map(steps));
  out.push(steps(compare));
  out.push(wrap(LEGEND, MAX_COLUMNS, '  '));
  return out;
}

/** One scenario: its title line with PASS/FAIL/SKIP, its tables, its verdict. */
export function renderScenarioText(s: ScenarioReport, opts: TextOptions): string {
  const paint = painter(opts.color);
  const result = scenarioResult(s);
  // the title on the first line when it fits, else under it
  const oneLine = width(`${s.name} · ${s.title} · ${result}`) <= MAX_COLUMNS;
  const title = oneLine
    ? `${paint('bold', s.name)} · ${s.title} · ${paint(RESULT_STYLE[result], result)}`
    : `${paint('bold', s.name)} · ${paint(RESULT_STYLE[result], result)}\n${wrap(s.title, MAX_COLUMNS, '  ')}`;
  if (s.skipped !== undefined) return `${title}\n${wrap(`skipped: ${s.skipped}`, MAX_COLUMNS, '  ')}\n`;
  const parts = [title, figuresTable(s, paint)];
  if (s.steps && s.steps.length > 0) parts.push(stepsTable(s, paint));
  parts.push(...capacitySection(s, paint));
  if (s.verdict) parts.push(wrap(s.verdict, MAX_COLUMNS, '  '));
  return parts.join('\n') + '\n';
}

/** The whole run: a header line, a table per scenario, the summary line. */
export function renderText(report: FailoverReport, opts: TextOptions): string {
  const paint = painter(opts.color);
  const head = `Failover test of ${report.cluster} (engine ${report.engine}, ${fmtCount(report.rate)} req/s), ${span(report.startedAt, report.finishedAt)}`;
  const out = [wrap(head, MAX_COLUMNS), ''];
  for (const s of report.scenarios) out.push(renderScenarioText(s, opts));
  const line = summary(report);
  const ok = report.passed && !report.interrupted;
  out.push(paint(ok ? ['bold', 'green'] : ['bold', 'red'], wrap(line, MAX_COLUMNS)));
  return out.join('\n') + '\n';
}
