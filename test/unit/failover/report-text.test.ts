// The failover test's terminal tables: the exact layout of a small one, a passed run and a failed
// one, the 100-column limit, and colour only when asked for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderScenarioText, renderText, wrap, MAX_COLUMNS } from '../../../cli/failover/report-text.ts';
import type { ScenarioReport } from '../../../cli/failover/types.ts';
import { fixtureReport } from './fixture.ts';

const ESC = String.fromCharCode(27);
const columns = (s: string) => Math.max(...s.split('\n').map((l) => [...l].length));

function small(over: Partial<ScenarioReport> = {}): ScenarioReport {
  return {
    name: 'lb-kill',
    title: 'Master LB killed',
    from: 0,
    to: 60_000,
    totalRequests: 12_000,
    failedRequests: 12,
    takeoverMs: 1_420,
    connectionsReset: 3,
    latency: {
      before: { p50: 1.94, p99: 6.5, count: 4000 },
      during: { p50: 2.2, p99: 10_000, count: 4000 },
      after: { p50: 0.5, p99: 31.6, count: 4000 },
    },
    thresholds: [{ figure: 'takeoverMs', max: 1000, actual: 1420, passed: false }],
    passed: false,
    verdict: 'lb02 took the VIP 1.42 s after lb01 died.',
    events: [],
    series: [],
    failures: [],
    ...over,
  };
}

test('the exact layout of a small table', () => {
  const expected = [
    'lb-kill · Master LB killed · FAIL',
    '┌─────────────────────────────┬───────────────────────────┬──────────┬────────┐',
    '│ figure                      │ measured                  │ limit    │ result │',
    '├─────────────────────────────┼───────────────────────────┼──────────┼────────┤',
    '│ failed requests             │ 12 of 12,000 (0.1 %)      │          │        │',
    '│ takeover                    │ 1.42 s                    │ ≤ 1.00 s │ FAIL   │',
    '│ connections reset           │ 3                         │          │        │',
    '│ p50 before → during → after │ 1.9 ms → 2.2 ms → 0.50 ms │          │        │',
    '│ p99 before → during → after │ 6.5 ms → 10.0 s → 32 ms   │          │        │',
    '└─────────────────────────────┴───────────────────────────┴──────────┴────────┘',
    '  lb02 took the VIP 1.42 s after lb01 died.',
    '',
  ].join('\n');
  assert.equal(renderScenarioText(small(), { color: false }), expected);
});

test("a scenario's own figures and a threshold on one of them share its row; a threshold without a row gets one", () => {
  const s = small({
    figures: { vipOnNewMasterMs: 690, preemptedBack: false, replicationLagSeconds: 2 },
    thresholds: [
      { figure: 'vipOnNewMasterMs', max: 1000, actual: 690, passed: true },
      { figure: 'p99AfterMs', max: 20, actual: 31.6, passed: false },
    ],
  });
  const lines = renderScenarioText(s, { color: false }).split('\n');
  assert.match(lines.find((l) => l.includes('vip on new master')) ?? '', /│ 690 ms\s+│ ≤ 1.00 s │ PASS/);
  assert.match(lines.find((l) => l.includes('preempted back')) ?? '', /│ no\s+│/);
  assert.match(lines.find((l) => l.includes('replication lag')) ?? '', /│ 2 s\s+│/);
  assert.match(lines.find((l) => l.includes('p99 after ')) ?? '', /│ 32 ms\s+│ ≤ 20 ms\s+│ FAIL/);
  // the takeover row has no limit now
  assert.match(lines.find((l) => l.includes('takeover')) ?? '', /│ 1.42 s\s+│\s+│\s+│$/);
});

test('a passed run: every scenario PASS or SKIP, the spike steps, the summary line, no colour codes', () => {
  const r = fixtureReport();
  const out = renderText(r, { color: false });
  assert.ok(!out.includes(ESC), 'no escape sequence');
  assert.ok(columns(out) <= MAX_COLUMNS, `${columns(out)} columns`);
  assert.match(out.split('\n')[0], /^Failover test of shop \(engine bundled, 200 req\/s\), 2025-03-14 09:00:00 to 09:07:12 UTC$/);
  for (const s of r.scenarios) assert.match(out, new RegExp(`^${s.name} · .* · ${s.skipped ? 'SKIP' : 'PASS'}$`, 'm'));
  assert.doesNotMatch(out, /FAIL/);
  assert.match(out, /^db-primary-down · .* · SKIP\n {2}skipped: the inventory has no replica$/m);
  // one row per spike step, the rate asked first
  const spike = r.scenarios.find((s) => s.name === 'spike');
  assert.ok(spike?.steps);
  assert.match(out, /│ rate asked │\s+served │\s+p50 │\s+p99 │ errors │ max queue │ max sessions │/);
  for (const st of spike.steps)
    assert.match(out, new RegExp(`│\\s+${st.rate.toLocaleString('en-US')}/s │.*│\\s+${st.maxQueue} │\\s+${st.maxSessions} │$`, 'm'));
  assert.match(out, /\nPASSED: 4 of 4 scenarios held their thresholds \(1 skipped\); the cluster is healthy afterwards\.\n$/);
});

test('a failed run: the failing thresholds marked FAIL, the summary names the scenario', () => {
  const r = fixtureReport({ failing: true });
  const out = renderText(r, { color: false });
  const drop = out.slice(out.indexOf('web-drop ·'), out.indexOf('lb-kill ·'));
  assert.match(drop, /^web-drop · web01's packets dropped · FAIL$/m);
  assert.match(drop, /│ failed requests\s+│ 3 of 18,000 \(0.02 %\)\s+│ ≤ 0\s+│ FAIL\s+│/);
  assert.match(drop, /│ detection \(both proxies\)\s+│ 2.81 s\s+│ ≤ 2.00 s │ FAIL\s+│/);
  assert.match(
    out,
    /\nFAILED: 4 of 5 scenarios held their thresholds \(1 skipped\); failed: web-drop; the cluster is healthy\nafterwards\.\n$/,
  );
  const sick = renderText({ ...r, healthyAfter: false, interrupted: true }, { color: false });
  assert.match(
    sick.replace(/\s+/g, ' '),
    /INTERRUPTED: the test stopped after 6 scenarios; 4 of 5 scenarios held their thresholds \(1 skipped\); failed: web-drop; the cluster is NOT healthy afterwards/,
  );
});

test('colour when asked: PASS green, FAIL red, and the same text underneath', () => {
  const r = fixtureReport({ failing: true });
  const plain = renderText(r, { color: false });
  const coloured = renderText(r, { color: true });
  assert.ok(coloured.includes(`${ESC}[32mPASS${ESC}[39m`));
  assert.ok(coloured.includes(`${ESC}[31mFAIL${ESC}[39m`));
  const stripped = coloured
    .split(ESC)
    .map((part, i) => (i === 0 ? part : part.replace(/^\[\d+m/, '')))
    .join('');
  assert.equal(stripped, plain);
});

test('long host names and messages wrap within 100 columns', () => {
  const long = 'web-node-with-a-very-long-name-in-a-datacenter.example.internal';
  const s = small({
    title: `Apache stopped on ${long}`,
    shareDuringFault: { [long]: 0.5, [`${long}-2`]: 0.5 },
    verdict: `${long} failed and its twin served every request during the fault, which lasted 30.0 s as planned.`,
  });
  const out = renderScenarioText(s, { color: false });
  assert.ok(columns(out) <= MAX_COLUMNS, out);
  // cut across lines, never truncated
  assert.doesNotMatch(out, /…/);
  const measured = out
    .split('\n')
    .filter((l) => l.startsWith('│'))
    .map((l) => l.split('│')[2].trim())
    .join('');
  assert.ok(measured.includes(`${long} 50 %,${long}-2 50 %`), measured);
  const longer = renderScenarioText(small({ title: `Apache stopped on ${long}-and-longer-still` }), { color: false });
  assert.ok(columns(longer) <= MAX_COLUMNS);
  assert.match(longer, /^lb-kill · FAIL\n {2}Apache stopped on web-node.*-and-longer-still\n┌/);
  // the table is still a table: every row line starts and ends with a border
  for (const l of out.split('\n').filter((l) => l.startsWith('│'))) assert.match(l, /│$/);
});

test('wrap keeps a unit on the line of its number', () => {
  assert.equal(wrap('took 1.42 s after', 9), 'took\n1.42 s\nafter');
  assert.equal(wrap('a b c', 100, '  '), '  a b c');
});
