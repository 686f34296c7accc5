// What draws the HTML report's charts, in the browser: the colours, and the script that reads the
// page's JSON and makes two uPlot charts per scenario (requests and errors per second, with a strip
// showing which LB held the VIP; p50/p99 latency on a log scale), with the timeline's events as
// vertical markers on both. The script is plain browser JavaScript kept as text, so that it reaches
// the page as written whether hasetup runs from its TypeScript or from the bundle.

/** Series colours of the web nodes, in the order of their names. Red and orange are kept for errors and p99. */
export const NODE_COLORS = ['#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
/** A node the answer did not name (no X-Served-By). */
export const UNKNOWN_NODE_COLOR = '#b0b0b0';
/** The VIP strip: one pale colour per LB. */
export const LB_COLORS = ['#a6cee3', '#fdbf6f', '#cab2d6', '#b2df8a'];
export const ERROR_COLOR = '#d62728';
export const P50_COLOR = '#2b8cbe';
export const P99_COLOR = '#ff7f0e';
export const BACKGROUND = '#ffffff';
/** The markers of the timeline's events. */
export const EVENT_COLORS: Record<string, string> = {
  // dark enough that its anti-aliased edges are never taken for an error bar
  fault: '#7f0000',
  detected: '#e6a100',
  takeover: '#6a3d9a',
  healed: '#006d2c',
  restored: '#08519c',
  step: '#888888',
  note: '#888888',
};

/** The data the script reads from script#failover-data: the report and the colours the page's legends use too. */
export interface ChartColors {
  nodes: Record<string, string>;
  lbs: Record<string, string>;
  errors: string;
  p50: string;
  p99: string;
  events: Record<string, string>;
}

export const CHART_SCRIPT = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('failover-data').textContent);
  var colors = data.colors;
  var pr = uPlot.pxRatio;
  var drawn = 0;

  function seconds(v) {
    return v.map(function (x) { return x + ' s'; });
  }
  function ms(v) {
    return v.map(function (x) { return x == null ? '' : x >= 1000 ? x / 1000 + ' s' : x + ' ms'; });
  }

  // the timeline's events as dashed vertical lines; on the requests chart, with their kind written above
  function drawEvents(u, s, labels) {
    var ctx = u.ctx;
    var top = u.bbox.top;
    var bottom = u.bbox.top + u.bbox.height;
    var lastX = -Infinity;
    var row = 0;
    ctx.save();
    ctx.font = (10 * pr) + 'px sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    s.events.forEach(function (e) {
      var x = Math.round(u.valToPos((e.t - s.from) / 1000, 'x', true));
      if (x < u.bbox.left - 1 || x > u.bbox.left + u.bbox.width + 1) return;
      var c = colors.events[e.kind] || '#888888';
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
  function drawVip(u, s) {
    var ctx = u.ctx;
    var y = u.bbox.top - 40 * pr;
    var h = 14 * pr;
    var end = (s.to - s.from) / 1000;
    var runs = [];
    s.series.forEach(function (b) {
      var a = (b.t - s.from) / 1000;
      var last = runs[runs.length - 1];
      if (last && last.holder === b.vipHolder) last.to = Math.min(end, a + 1);
      else runs.push({ holder: b.vipHolder, from: a, to: Math.min(end, a + 1) });
    });
    ctx.save();
    ctx.font = (10 * pr) + 'px sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    runs.forEach(function (r) {
      var x0 = u.valToPos(r.from, 'x', true);
      var x1 = u.valToPos(r.to, 'x', true);
      ctx.fillStyle = r.holder === undefined ? '#eeeeee' : colors.lbs[r.holder] || '#dddddd';
      ctx.fillRect(x0, y, x1 - x0, h);
      var label = r.holder === undefined ? '' : 'VIP on ' + r.holder;
      if (label && ctx.measureText(label).width < x1 - x0 - 4 * pr) {
        ctx.fillStyle = '#222222';
        ctx.fillText(label, (x0 + x1) / 2, y + h / 2);
      }
    });
    ctx.restore();
  }

  function requestsChart(s, box, width, key) {
    var nodes = [];
    s.series.forEach(function (b) {
      Object.keys(b.byNode).forEach(function (n) { if (nodes.indexOf(n) < 0) nodes.push(n); });
    });
    nodes.sort();
    var withVip = s.series.some(function (b) { return b.vipHolder !== undefined; });
    var xs = s.series.map(function (b) { return (b.t - s.from) / 1000 + 0.5; });
    // stacked: each node's layer sits on the ones before it, the top line is the total answered
    var raw = nodes.map(function (n) { return s.series.map(function (b) { return b.byNode[n] || 0; }); });
    var sum = xs.map(function () { return 0; });
    var rows = [xs];
    var bands = [];
    var series = [{ label: 'second', value: function (u, v) { return v == null ? '' : Math.floor(v) + ' s'; } }];
    nodes.forEach(function (n, k) {
      var c = colors.nodes[n] || '#7f7f7f';
      rows.push(raw[k].map(function (v, j) { sum[j] += v; return sum[j]; }));
      series.push({
        label: n + ' req/s',
        stroke: c,
        width: 2,
        fill: c + '2e',
        points: { show: false },
        value: function (u, v, si, idx) { return idx == null ? '--' : String(raw[k][idx]); },
      });
      if (k > 0) bands.push({ series: [k + 1, k] });
    });
    // no bar at all in a second without errors
    rows.push(s.series.map(function (b) { return b.errors > 0 ? b.errors : null; }));
    // errors on their own scale (right): a few errors in a second stay visible next to 1,000 answers
    series.push({ label: 'errors/s', scale: 'err', stroke: colors.errors, fill: colors.errors, width: 1, paths: uPlot.paths.bars({ size: [0.9, 40] }), points: { show: false } });
    var maxErr = s.series.reduce(function (m, b) { return Math.max(m, b.errors); }, 0);
    return new uPlot({
      width: width,
      height: 280,
      padding: [withVip ? 48 : 30, 12, 0, 0],
      cursor: { sync: { key: key } },
      scales: {
        x: { time: false, range: [0, (s.to - s.from) / 1000] },
        y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } },
        err: { range: [0, Math.max(4, maxErr * 1.1)] },
      },
      axes: [
        { values: function (u, v) { return seconds(v); } },
        { label: 'requests / s', size: 60 },
        { scale: 'err', side: 1, label: 'errors / s', size: 50, stroke: colors.errors, grid: { show: false } },
      ],
      series: series,
      bands: bands,
      hooks: { draw: [function (u) { if (withVip) drawVip(u, s); drawEvents(u, s, true); }] },
    }, rows, box);
  }

  function latencyChart(s, box, width, key) {
    var xs = s.series.map(function (b) { return (b.t - s.from) / 1000 + 0.5; });
    var answered = s.series.map(function (b) {
      return b.errors + Object.keys(b.byNode).reduce(function (a, n) { return a + b.byNode[n]; }, 0);
    });
    function pick(k) {
      return s.series.map(function (b, i) { return answered[i] > 0 && b[k] > 0 ? b[k] : null; });
    }
    return new uPlot({
      width: width,
      height: 180,
      padding: [10, 12, 0, 0],
      cursor: { sync: { key: key } },
      scales: { x: { time: false, range: [0, (s.to - s.from) / 1000] }, y: { distr: 3, log: 10 } },
      axes: [
        { values: function (u, v) { return seconds(v); } },
        { label: 'latency', size: 60, values: function (u, v) { return ms(v); } },
        // as wide as the errors axis of the chart above, so that both plots line up second for second
        { side: 1, size: 50, grid: { show: false }, ticks: { show: false }, values: function (u, v) { return v.map(function () { return ''; }); } },
      ],
      series: [
        { label: 'second', value: function (u, v) { return v == null ? '' : Math.floor(v) + ' s'; } },
        { label: 'p50', stroke: colors.p50, width: 2, points: { show: false }, value: function (u, v) { return v == null ? '-' : v + ' ms'; } },
        { label: 'p99', stroke: colors.p99, width: 2, points: { show: false }, value: function (u, v) { return v == null ? '-' : v + ' ms'; } },
      ],
      hooks: { draw: [function (u) { drawEvents(u, s, false); }] },
    }, [xs, pick('p50'), pick('p99')], box);
  }

  var made = [];
  data.report.scenarios.forEach(function (s, i) {
    var box = document.querySelector('.chart[data-index="' + i + '"]');
    if (!box || s.series.length === 0) return;
    try {
      var width = Math.max(320, box.clientWidth);
      var key = 'scenario-' + i;
      made.push({ box: box, charts: [requestsChart(s, box.querySelector('.chart-requests'), width, key), latencyChart(s, box.querySelector('.chart-latency'), width, key)] });
      box.setAttribute('data-drawn', 'true');
      drawn++;
    } catch (e) {
      console.error('chart of ' + s.name + ': ' + (e && e.stack || e));
    }
  });
  window.addEventListener('resize', function () {
    made.forEach(function (m) {
      var width = Math.max(320, m.box.clientWidth);
      m.charts.forEach(function (c) { c.setSize({ width: width, height: c.height }); });
    });
  });
  document.documentElement.setAttribute('data-charts', String(drawn));
})();
`;
