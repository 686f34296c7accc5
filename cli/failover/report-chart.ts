// What draws the HTML report's charts, in the browser: the colours, and the page's script, compiled from
// chart/draw.ts (TypeScript for the browser: it reads the page's JSON and makes two uPlot charts per
// scenario). The bundle carries the script as scripts/build.mjs compiled it; from the TypeScript sources
// (tests) it is compiled here when this module loads, by the same compiler and options.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { findRepoRoot } from '../root.ts';
import type { ChartColors } from './types.ts';

export type { ChartColors };

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

declare const __HASETUP_CHART_SCRIPT__: string | undefined;

/**
 * The page's script: in the bundle, the value this module had when scripts/build.mjs loaded it from the
 * sources; else chart/draw.ts, found in the checkout, compiled now (one function, no imports left;
 * esbuild is there wherever the sources run). It may not end the element it is inlined into.
 */
export const CHART_SCRIPT: string =
  typeof __HASETUP_CHART_SCRIPT__ === 'string'
    ? __HASETUP_CHART_SCRIPT__
    : (createRequire(import.meta.url)('esbuild') as typeof import('esbuild'))
        .transformSync(readFileSync(join(findRepoRoot(), 'cli/failover/chart/draw.ts'), 'utf8'), {
          loader: 'ts',
          format: 'iife',
          target: 'es2020',
          sourcefile: 'draw.ts',
        })
        .code.replace(/<\/(script)/gi, '<\\/$1');
