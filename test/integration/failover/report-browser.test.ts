// The HTML report in a real browser: headless Chromium opens it from a file:// URL with every
// request outside that file refused, no error reaches the console, and each scenario's charts are
// really drawn (their screenshots hold the series' colours, not just a blank canvas).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { renderHtml } from '../../../cli/failover/report-html.ts';
import {
  BACKGROUND,
  CHART_SCRIPT,
  ERROR_COLOR,
  EVENT_COLORS,
  LB_COLORS,
  NODE_COLORS,
  P50_COLOR,
  P99_COLOR,
} from '../../../cli/failover/report-chart.ts';
import type { FailoverReport } from '../../../cli/failover/types.ts';
import { commandUnavailable, prerequisites } from '../../helpers/env.ts';
import { fixtureReport } from '../../unit/failover/fixture.ts';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

interface Opened {
  page: Page;
  url: string;
  /** Console messages of type error, and uncaught page errors. */
  errors: string[];
  /** Every URL the page asked for. */
  requests: string[];
}

/** Chromium with a fresh profile, the page written to a file and opened from it; all closed and removed after the test. */
async function open(t: TestContext, html: string): Promise<Opened> {
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-report-'));
  const file = join(dir, 'report.html');
  writeFileSync(file, html);
  const context: BrowserContext = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1200, height: 900 },
    deviceScaleFactor: 1,
  });
  t.after(async () => {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const url = pathToFileURL(file).href;
  const errors: string[] = [];
  const requests: string[] = [];
  // nothing but the file itself may be fetched
  await context.route('**/*', (route) => (route.request().url() === url ? route.continue() : route.abort()));
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(url, { waitUntil: 'load' });
  // (what runs in the page is given as text: this file is type-checked without the DOM's types)
  return { page, url, errors, requests };
}

const hex = (c: string): [number, number, number] => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)) as [number, number, number];

interface Pixels {
  total: number;
  /** Pixels that are not the page's background. */
  inked: number;
  /** Pixels within a small distance of a colour. */
  near(color: string): number;
}

function count(png: PNG, x0: number, y0: number, x1: number, y1: number): Pixels {
  const bg = hex(BACKGROUND);
  const at = (x: number, y: number, c: [number, number, number]) => {
    const i = (y * png.width + x) * 4;
    return Math.abs(png.data[i] - c[0]) + Math.abs(png.data[i + 1] - c[1]) + Math.abs(png.data[i + 2] - c[2]);
  };
  const each = (f: (x: number, y: number) => boolean) => {
    let n = 0;
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (f(x, y)) n++;
    return n;
  };
  return {
    total: (x1 - x0) * (y1 - y0),
    inked: each((x, y) => at(x, y, bg) > 24),
    near: (color: string) => each((x, y) => at(x, y, hex(color)) <= 36),
  };
}

/** A screenshot of an element, its pixels counted: all of them, and those of the plot area (uPlot's .u-over) alone. */
async function pixels(el: Locator, over?: Locator): Promise<Pixels & { plot: Pixels }> {
  await el.scrollIntoViewIfNeeded();
  const png = PNG.sync.read(await el.screenshot());
  const whole = count(png, 0, 0, png.width, png.height);
  if (!over) return { ...whole, plot: whole };
  const a = await el.boundingBox();
  const b = await over.boundingBox();
  assert.ok(a && b);
  const x0 = Math.max(0, Math.round(b.x - a.x));
  const y0 = Math.max(0, Math.round(b.y - a.y));
  return {
    ...whole,
    plot: count(png, x0, y0, Math.min(png.width, x0 + Math.round(b.width)), Math.min(png.height, y0 + Math.round(b.height))),
  };
}

const charted = (r: FailoverReport) =>
  r.scenarios.map((s, i) => ({ s, i })).filter(({ s }) => s.skipped === undefined && s.series.length > 0);

test('the report opens from a file with no network and no console error, and every chart is drawn', async (t) => {
  if (!prerequisites(t, commandUnavailable('chromium'))) return;
  const report = fixtureReport({ failing: true });
  const { page, url, errors, requests } = await open(t, renderHtml(report));
  await page.waitForFunction('document.documentElement.dataset.charts !== undefined', null, { timeout: 15_000 });

  assert.deepEqual(errors, []);
  assert.deepEqual(requests, [url], 'the page fetched nothing but itself');
  const scenarios = charted(report);
  assert.equal(await page.evaluate('document.documentElement.dataset.charts'), String(scenarios.length));
  assert.equal(await page.locator('.chart[data-drawn="true"]').count(), scenarios.length);

  const nodeColor = Object.fromEntries(['web01', 'web02'].map((n, i) => [n, NODE_COLORS[i]]));
  for (const { s, i } of scenarios) {
    const box = page.locator(`.chart[data-index="${i}"]`);
    const req = await pixels(box.locator('.chart-requests canvas'), box.locator('.chart-requests .u-over'));
    const lat = await pixels(box.locator('.chart-latency canvas'), box.locator('.chart-latency .u-over'));
    const what = `${s.name}: requests plot ${req.plot.inked}/${req.plot.total} inked, latency plot ${lat.plot.inked}/${lat.plot.total}`;
    // the grid alone inks a few %; the stacked areas of the requests chart far more
    assert.ok(req.plot.inked > req.plot.total * 0.3, what);
    assert.ok(lat.plot.inked > lat.plot.total * 0.05, what);
    for (const n of Object.keys(nodeColor)) {
      const served = s.series.some((b) => (b.byNode[n] ?? 0) > 0);
      if (served) assert.ok(req.plot.near(nodeColor[n]) > 150, `${s.name}: ${n}'s line (${req.plot.near(nodeColor[n])} px)`);
    }
    const errorPx = req.plot.near(ERROR_COLOR);
    if (s.series.some((b) => b.errors > 0)) assert.ok(errorPx > 20, `${s.name}: error bars (${errorPx} px)`);
    else assert.equal(errorPx, 0, `${s.name}: no error bar without errors`);
    if (s.series.some((b) => b.vipHolder === 'lb02')) {
      // lb01 and lb02 both in the VIP strip, above the plot
      assert.ok(req.near(LB_COLORS[0]) > 500, `${s.name}: lb01 in the VIP strip (${req.near(LB_COLORS[0])} px)`);
      assert.ok(req.near(LB_COLORS[1]) > 500, `${s.name}: lb02 in the VIP strip (${req.near(LB_COLORS[1])} px)`);
    } else {
      // (a marker's anti-aliased label can come near a strip colour: a few pixels, not a strip of 14 px by hundreds)
      assert.ok(req.near(LB_COLORS[0]) + req.near(LB_COLORS[1]) < 100, `${s.name}: no VIP strip without a VIP holder`);
    }
    if (s.events.some((e) => e.kind === 'fault')) {
      assert.ok(req.plot.near(EVENT_COLORS.fault) > 100, `${s.name}: the fault's marker (${req.plot.near(EVENT_COLORS.fault)} px)`);
      assert.ok(
        lat.plot.near(EVENT_COLORS.fault) > 60,
        `${s.name}: the fault's marker on the latency chart (${lat.plot.near(EVENT_COLORS.fault)} px)`,
      );
    }
    assert.ok(lat.plot.near(P50_COLOR) > 150, `${s.name}: p50 line (${lat.plot.near(P50_COLOR)} px)`);
    assert.ok(lat.plot.near(P99_COLOR) > 150, `${s.name}: p99 line (${lat.plot.near(P99_COLOR)} px)`);
  }
  // the skipped scenario is there, without a chart
  const skipped = page.locator('section.scenario[data-scenario="db-primary-down"]');
  assert.match((await skipped.textContent()) ?? '', /Skipped: the inventory has no replica/);
  assert.equal(await skipped.locator('.chart').count(), 0);
});

test('the pixel check tells a chart that was not drawn from one that was', async (t) => {
  if (!prerequisites(t, commandUnavailable('chromium'))) return;
  // the same page without its chart script: the boxes stay empty
  const full = renderHtml(fixtureReport());
  const html = full.replace(`<script>${CHART_SCRIPT}</script>`, '<script></script>');
  assert.ok(html.length < full.length);
  const { page, errors } = await open(t, html);
  assert.deepEqual(errors, []);
  assert.equal(await page.evaluate('document.documentElement.dataset.charts'), undefined);
  const box = await pixels(page.locator('.chart[data-index="0"]'));
  assert.equal(box.inked, 0);
  assert.equal(box.near(NODE_COLORS[0]), 0);
});

test('host names and messages from the data cannot break out of the page', async (t) => {
  if (!prerequisites(t, commandUnavailable('chromium'))) return;
  const report = fixtureReport();
  const evil = '</script><script>window.__broken = 1</script><img src=x onerror="window.__broken = 2">';
  const s = report.scenarios[0];
  s.verdict = `web01 ${evil} failed`;
  s.title = `Apache stopped on ${evil}`;
  s.events[0].what = evil;
  s.series = s.series.map((b) => ({
    ...b,
    byNode: Object.fromEntries(Object.entries(b.byNode).map(([n, c]) => [n === 'web02' ? `web02${evil}` : n, c])),
  }));
  report.cluster = `shop${evil}`;
  const { page, errors, url, requests } = await open(t, renderHtml(report));
  await page.waitForFunction('document.documentElement.dataset.charts !== undefined', null, { timeout: 15_000 });
  assert.deepEqual(errors, []);
  assert.deepEqual(requests, [url]);
  assert.equal(await page.evaluate('window.__broken'), undefined);
  assert.equal(await page.locator('img').count(), 0);
  assert.ok(((await page.locator('section.scenario').first().locator('.verdict').textContent()) ?? '').includes(evil));
  assert.equal(await page.evaluate('document.documentElement.dataset.charts'), String(charted(report).length));
  // the page's data still parses back to the report
  const data = await page.evaluate<{ report: unknown }>("JSON.parse(document.getElementById('failover-data').textContent)");
  assert.deepEqual(data.report, JSON.parse(JSON.stringify(report)));
});
