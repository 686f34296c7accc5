// The HTML report from a bundle built the way scripts/build.mjs builds dist/cli (esbuild, ESM,
// node_modules external): uPlot is still found in node_modules at run time, and the page is the
// same as the one the TypeScript sources render.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { renderHtml } from '../../../cli/failover/report-html.ts';
import { fixtureReport } from '../../unit/failover/fixture.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');

test('the bundled renderer reads uPlot from node_modules and renders the same page', async (t) => {
  // under dist/, as the CLI's chunks are: node_modules is found by walking up from there
  mkdirSync(join(root, 'dist'), { recursive: true });
  const out = mkdtempSync(join(root, 'dist', '.report-bundle-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  await build({
    entryPoints: { 'report-html': join(root, 'cli/failover/report-html.ts') },
    outdir: join(out, 'chunks'),
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node18',
    packages: 'external',
    logLevel: 'warning',
  });
  const bundled = (await import(
    pathToFileURL(join(out, 'chunks', 'report-html.js')).href
  )) as typeof import('../../../cli/failover/report-html.ts');
  const report = fixtureReport({ failing: true });
  const page = bundled.renderHtml(report);
  assert.ok(bundled.chartAssets().js.length > 20_000);
  assert.equal(page, renderHtml(report));
});
