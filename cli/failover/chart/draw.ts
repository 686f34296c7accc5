// The HTML report's charts, run by the browser: reads the page's JSON (script#failover-data) and makes two
// uPlot charts per scenario (requests and errors per second, with a strip showing which LB held the VIP;
// p50/p99 latency on a log scale), with the timeline's events as vertical markers on both. uPlot is the
// global its script (inlined before this one) defines. Type-checked with the DOM's types by this folder's
// tsconfig.json; compiled into the page's script by scripts/build.mjs (or, from the TypeScript sources,
// by report-chart.ts when loaded).
import type { ChartColors, FailoverReport, ScenarioReport } from '../types.ts';

(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('failover-data')!.textContent!) as { report: FailoverReport; colors: ChartColors };
  const colors = data.colors;
  const pr = uPlot.pxRatio;
  let drawn = 0;

  function seconds(v: number[]): string[] {
    return v.map((x) => x + ' s');
  }
  function ms(v: (number | null)[]): string[] {
    return v.map((x) => (x == null ? '' : x >= 1000 ? x / 1000 + ' s' : x + ' ms'));
  }
  const second = (_u: uPlot, v: number | null): string => (v == null ? '' : Math.floor(v) + ' s');
  const latency = (_u: uPlot, v: number | null): string => (v == null ? '-' : v + ' ms');

  // the timeline's events as dashed vertical lines; on the requests chart, with their kind written above
  function drawEvents(u: uPlot, s: ScenarioReport, labels: boolean): void {
    const ctx = u.ctx;
    const top = u.bbox.top;
    const bottom = u.bbox.top + u.bbox.height;
    let lastX = -Infinity;
    let row = 0;
    ctx.save();
    ctx.font = 10 * pr + 'px sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    s.events.forEach((e) => {
      const x = Math.round(u.valToPos((e.t - s.from) / 1000, 'x', true));
      if (x < u.bbox.left - 1 || x > u.bbox.left + u.bbox.width + 1) return;
      const c = colors.events[e.kind] || '#888888';
      ctx.strokeStyle = c;
      ctx.lineWidth = 2 * pr;
      ctx.setLineDash([5 * pr, 3 * pr]);
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      if (labels) {
        row = x - lastX < 60 * pr ? (row + 1) % 2 : 0;
        lastX = x;
        ctx.fillStyle = c;
        // a step is named by its rate, any other event by its kind (the table under the chart says the rest)
        ctx.fillText(e.kind === 'step' ? e.what : e.kind, x, top - (2 + row * 11) * pr);
      }
    });
    ctx.restore();
  }

  // which LB held the VIP, second by second, as a strip above the requests chart
  function drawVip(u: uPlot, s: ScenarioReport): void {
    const ctx = u.ctx;
    const y = u.bbox.top - 40 * pr;
    const h = 14 * pr;
    const end = (s.to - s.from) / 1000;
    const runs: { holder: string | undefined; from: number; to: number }[] = [];
    s.series.forEach((b) => {
      const a = (b.t - s.from) / 1000;
      const last = runs[runs.length - 1];
      if (last && last.holder === b.vipHolder) last.to = Math.min(end, a + 1);
      else runs.push({ holder: b.vipHolder, from: a, to: Math.min(end, a + 1) });
    });
    ctx.save();
    ctx.font = 10 * pr + 'px sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    runs.forEach((r) => {
      const x0 = u.valToPos(r.from, 'x', true);
      const x1 = u.valToPos(r.to, 'x', true);
      ctx.fillStyle = r.holder === undefined ? '#eeeeee' : colors.lbs[r.holder] || '#dddddd';
      ctx.fillRect(x0, y, x1 - x0, h);
      const label = r.holder === undefined ? '' : 'VIP on ' + r.holder;
      if (label && ctx.measureText(label).width < x1 - x0 - 4 * pr) {
        ctx.fillStyle = '#222222';
        ctx.fillText(label, (x0 + x1) / 2, y + h / 2);
      }
    });
    ctx.restore();
  }

  function requestsChart(s: ScenarioReport, box: HTMLElement, width: number, key: string): uPlot {
    const nodes: string[] = [];
    s.series.forEach((b) => {
      Object.keys(b.byNode).forEach((n) => {
        if (nodes.indexOf(n) < 0) nodes.push(n);
      });
    });
    nodes.sort();
    const withVip = s.series.some((b) => b.vipHolder !== undefined);
    const xs = s.series.map((b) => (b.t - s.from) / 1000 + 0.5);
    // stacked: each node's layer sits on the ones before it, the top line is the total answered
    const raw = nodes.map((n) => s.series.map((b) => b.byNode[n] || 0));
    const sum = xs.map(() => 0);
    const rows: (number | null)[][] = [xs];
    const bands: uPlot.Band[] = [];
    const series: uPlot.Series[] = [{ label: 'second', value: second }];
    nodes.forEach((n, k) => {
      const c = colors.nodes[n] || '#7f7f7f';
      rows.push(raw[k].map((v, j) => (sum[j] += v)));
      series.push({
        label: n + ' req/s',
        stroke: c,
        width: 2,
        fill: c + '2e',
        points: { show: false },
        value: (_u, _v, _si, idx) => (idx == null ? '--' : String(raw[k][idx])),
      });
      if (k > 0) bands.push({ series: [k + 1, k] });
    });
    // no bar at all in a second without errors
    rows.push(s.series.map((b) => (b.errors > 0 ? b.errors : null)));
    // errors on their own scale (right): a few errors in a second stay visible next to 1,000 answers
    series.push({
      label: 'errors/s',
      scale: 'err',
      stroke: colors.errors,
      fill: colors.errors,
      width: 1,
      paths: uPlot.paths.bars!({ size: [0.9, 40] }),
      points: { show: false },
    });
    const maxErr = s.series.reduce((m, b) => Math.max(m, b.errors), 0);
    return new uPlot(
      {
        width,
        height: 280,
        padding: [withVip ? 48 : 30, 12, 0, 0],
        cursor: { sync: { key } },
        scales: {
          x: { time: false, range: [0, (s.to - s.from) / 1000] },
          y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.1] },
          err: { range: [0, Math.max(4, maxErr * 1.1)] },
        },
        axes: [
          { values: (_u, v) => seconds(v) },
          { label: 'requests / s', size: 60 },
          { scale: 'err', side: 1, label: 'errors / s', size: 50, stroke: colors.errors, grid: { show: false } },
        ],
        series,
        bands,
        hooks: {
          draw: [
            (u) => {
              if (withVip) drawVip(u, s);
              drawEvents(u, s, true);
            },
          ],
        },
      },
      rows as uPlot.AlignedData,
      box,
    );
  }

  function latencyChart(s: ScenarioReport, box: HTMLElement, width: number, key: string): uPlot {
    const xs = s.series.map((b) => (b.t - s.from) / 1000 + 0.5);
    const answered = s.series.map((b) => b.errors + Object.keys(b.byNode).reduce((a, n) => a + b.byNode[n], 0));
    function pick(k: 'p50' | 'p99'): (number | null)[] {
      return s.series.map((b, i) => (answered[i] > 0 && b[k] > 0 ? b[k] : null));
    }
    return new uPlot(
      {
        width,
        height: 180,
        padding: [10, 12, 0, 0],
        cursor: { sync: { key } },
        scales: { x: { time: false, range: [0, (s.to - s.from) / 1000] }, y: { distr: 3, log: 10 } },
        axes: [
          { values: (_u, v) => seconds(v) },
          { label: 'latency', size: 60, values: (_u, v) => ms(v) },
          // as wide as the errors axis of the chart above, so that both plots line up second for second
          { side: 1, size: 50, grid: { show: false }, ticks: { show: false }, values: (_u, v) => v.map(() => '') },
        ],
        series: [
          { label: 'second', value: second },
          { label: 'p50', stroke: colors.p50, width: 2, points: { show: false }, value: latency },
          { label: 'p99', stroke: colors.p99, width: 2, points: { show: false }, value: latency },
        ],
        hooks: { draw: [(u) => drawEvents(u, s, false)] },
      },
      [xs, pick('p50'), pick('p99')],
      box,
    );
  }

  const made: { box: HTMLElement; charts: uPlot[] }[] = [];
  data.report.scenarios.forEach((s, i) => {
    const box = document.querySelector<HTMLElement>('.chart[data-index="' + i + '"]');
    if (!box || s.series.length === 0) return;
    try {
      const width = Math.max(320, box.clientWidth);
      const key = 'scenario-' + i;
      made.push({
        box,
        charts: [
          requestsChart(s, box.querySelector<HTMLElement>('.chart-requests')!, width, key),
          latencyChart(s, box.querySelector<HTMLElement>('.chart-latency')!, width, key),
        ],
      });
      box.setAttribute('data-drawn', 'true');
      drawn++;
    } catch (e) {
      console.error('chart of ' + s.name + ': ' + ((e instanceof Error && e.stack) || e));
    }
  });
  window.addEventListener('resize', () => {
    made.forEach((m) => {
      const width = Math.max(320, m.box.clientWidth);
      m.charts.forEach((c) => c.setSize({ width, height: c.height }));
    });
  });
  document.documentElement.setAttribute('data-charts', String(drawn));
})();
