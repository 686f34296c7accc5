// Preloaded into the proxy by bench/proxy/latency.ts (NODE_OPTIONS=--require), in every thread (the main thread
// and each worker thread): once a second it appends to $LOOP_PROBE_DIR/<pid>-<thread>.jsonl what that thread's
// event loop went through in that second: its delay (perf_hooks.monitorEventLoopDelay, 1 ms resolution: p50,
// p99, max in ms) and its garbage collections (count, total and longest pause in ms, and how many were
// scavenges). A diagnostic for the benchmark only: the proxy knows nothing of it.
'use strict';
const { monitorEventLoopDelay, PerformanceObserver, constants } = require('node:perf_hooks');
const { appendFileSync } = require('node:fs');
const { join } = require('node:path');
const { threadId } = require('node:worker_threads');

const dir = process.env.LOOP_PROBE_DIR;
if (dir) {
  const file = join(dir, `${process.pid}-${threadId}.jsonl`);
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let gc = { n: 0, ms: 0, max: 0, minor: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.n++;
      gc.ms += e.duration;
      gc.max = Math.max(gc.max, e.duration);
      if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
    }
  }).observe({ entryTypes: ['gc'] });
  const t = setInterval(() => {
    const ms = (ns) => Math.round(ns / 1e4) / 100;
    const line = {
      t: Date.now(),
      thread: threadId,
      p50: ms(h.percentile(50)),
      p99: ms(h.percentile(99)),
      max: ms(h.max),
      gcN: gc.n,
      gcMinor: gc.minor,
      gcMs: Math.round(gc.ms * 100) / 100,
      gcMax: Math.round(gc.max * 100) / 100,
    };
    h.reset();
    gc = { n: 0, ms: 0, max: 0, minor: 0 };
    try {
      appendFileSync(file, JSON.stringify(line) + '\n');
    } catch {}
  }, 1000);
  t.unref();
}
