// The HTML report's structure: one chart per scenario that ran with load, the report's JSON carried
// whole and parsing back, nothing fetched from anywhere, and data that cannot break out of the page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chartAssets, chartColors, escapeHtml, FAILURES_LISTED, jsonForScript, renderHtml } from '../../../cli/failover/report-html.ts';
import { CHART_SCRIPT, LB_COLORS, NODE_COLORS, UNKNOWN_NODE_COLOR } from '../../../cli/failover/report-chart.ts';
import type { FailoverReport } from '../../../cli/failover/types.ts';
import { fixtureReport } from './fixture.ts';

const DATA_OPEN = '<script type="application/json" id="failover-data">';

function dataOf(html: string): { report: FailoverReport; colors: unknown } {
  const start = html.indexOf(DATA_OPEN);
  assert.ok(start >= 0, 'the data script is there');
  const end = html.indexOf('</script>', start);
  return JSON.parse(html.slice(start + DATA_OPEN.length, end));
}

const count = (html: string, s: string) => html.split(s).length - 1;

test('one chart container per scenario that ran with load, in order, and a section for every scenario', () => {
  const r = fixtureReport({ failing: true });
  const html = renderHtml(r);
  const charts = [...html.matchAll(/<div class="chart" data-index="(\d+)" data-scenario="([^"]+)">/g)].map((m) => [Number(m[1]), m[2]]);
  const expected = r.scenarios.map((s, i) => [i, s.name]).filter(([i]) => r.scenarios[i as number].skipped === undefined);
  assert.deepEqual(charts, expected);
  assert.equal(count(html, '<section class="scenario"'), r.scenarios.length);
  for (const [i] of charts)
    assert.match(
      html,
      new RegExp(`data-index="${i}" data-scenario="[^"]+"><div class="chart-requests"></div><div class="chart-latency"></div></div>`),
    );
  assert.match(
    html,
    /<section class="scenario" id="scenario-4" data-scenario="db-primary-down" data-result="SKIP"><h2>.*<\/h2><p class="verdict">Skipped: the inventory has no replica<\/p><\/section>/,
  );
  assert.match(html, /<title>Failover test of shop: FAILED<\/title>/);
  // the spike's steps as a table, one row per step
  const steps = html.slice(html.indexOf('<table class="steps">'));
  assert.equal(count(steps.slice(0, steps.indexOf('</table>')), '<tr>'), 1 + 4);
});

test('the data JSON parses back to the report, with the colours the legends use', () => {
  const r = fixtureReport({ failing: true });
  const { report, colors } = dataOf(renderHtml(r));
  assert.deepEqual(report, JSON.parse(JSON.stringify(r)));
  assert.deepEqual(colors, chartColors(r));
  assert.deepEqual(chartColors(r).nodes, { web01: NODE_COLORS[0], web02: NODE_COLORS[1] });
  assert.deepEqual(chartColors(r).lbs, { lb01: LB_COLORS[0], lb02: LB_COLORS[1] });
});

test('self-contained: uPlot and the chart script inlined, nothing to fetch, a policy that forbids fetching', () => {
  const html = renderHtml(fixtureReport());
  const { js, css } = chartAssets();
  assert.ok(js.length > 20_000 && html.includes(js), 'uPlot inlined');
  assert.ok(html.includes(css), "uPlot's CSS inlined");
  assert.ok(html.includes(`<script>${CHART_SCRIPT}</script>`));
  assert.doesNotMatch(html, /<link\b|<img\b|<iframe\b|@import|url\(\s*['"]?(https?:)?\/\//i);
  assert.doesNotMatch(html, /\b(src|href)\s*=\s*["']?(https?:|\/\/)/i);
  assert.match(
    html,
    /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">/,
  );
  // three script elements and no more: the data, uPlot, the charts
  assert.equal(count(html, '<script'), 3);
  assert.equal(count(html, '</script>'), 3);
  // the chart script is valid JavaScript
  assert.doesNotThrow(() => new Function(CHART_SCRIPT));
});

test('"</script>" and markup in host names and messages do not break out', () => {
  const r = fixtureReport();
  const evil = '</script><script>alert(1)</script><!-- <img src=x onerror=alert(2)> \u2028 & "q" \'s\'';
  r.cluster = evil;
  r.scenarios[0].verdict = evil;
  r.scenarios[0].title = evil;
  r.scenarios[0].events[0].what = evil;
  r.scenarios[0].shareDuringFault = { [evil]: 1 };
  r.scenarios[2].figures = { [evil]: evil };
  r.scenarios[1].series[0].vipHolder = evil;
  r.scenarios[1].series = r.scenarios[1].series.map((b) => ({ ...b, byNode: { ...b.byNode, [evil]: 1 } }));
  const html = renderHtml(r);
  assert.equal(count(html, '</script>'), 3);
  assert.equal(count(html, '<script'), 3);
  assert.doesNotMatch(html, /<img|<!--/);
  assert.ok(html.includes(escapeHtml(evil)));
  assert.deepEqual(dataOf(html).report, JSON.parse(JSON.stringify(r)));
  // in the legend's style attribute too, the colour is the page's own
  assert.match(html, /style="background:#a6cee3"><\/span>&#60;\/script&#62;/);
});

test('escapeHtml and jsonForScript', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
  assert.equal(escapeHtml(42), '42');
  const j = jsonForScript({ s: '</script><!--&\u2028\u2029' });
  assert.doesNotMatch(j, /[<>&\u2028\u2029]/);
  assert.deepEqual(JSON.parse(j), { s: '</script><!--&\u2028\u2029' });
});

test('failed requests: the page lists the first ones, the JSON in it all of them', () => {
  const r = fixtureReport();
  const s = r.scenarios.find((x) => x.name === 'lb-kill');
  assert.ok(s);
  const many = Array.from({ length: FAILURES_LISTED + 7 }, (_, i) => ({
    t: s.from + i,
    ms: 3,
    kind: 'new' as const,
    status: 0,
    error: 'ECONNRESET',
    lb: 'lb01',
  }));
  s.failures = many;
  const html = renderHtml(r);
  const section = html.slice(html.indexOf('data-scenario="lb-kill"'), html.indexOf('data-scenario="db"'));
  const list = section.slice(section.indexOf('<table class="failures">'));
  assert.equal(count(list.slice(0, list.indexOf('</table>')), '<tr>'), 1 + FAILURES_LISTED);
  assert.match(section, new RegExp(`Failed requests: ${(FAILURES_LISTED + 7).toLocaleString('en-US')}`));
  assert.match(section, /and 7 more: every one is in this page's JSON/);
  assert.equal(dataOf(html).report.scenarios.find((x) => x.name === 'lb-kill')?.failures.length, FAILURES_LISTED + 7);
});

test('a node the answers did not name gets the grey of the unknown', () => {
  const r = fixtureReport();
  r.scenarios[0].series[3].byNode['?'] = 4;
  assert.equal(chartColors(r).nodes['?'], UNKNOWN_NODE_COLOR);
});
