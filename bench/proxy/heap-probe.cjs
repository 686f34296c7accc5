// Preloaded into the proxy by bench/proxy/cpu.ts (CPU_GARBAGE=1, node --require): on SIGWINCH it starts V8's sampling
// heap profiler with the objects the garbage collector has already freed included, and when the process exits it
// writes the total of the sampled allocations, in bytes, to $HEAP_PROBE_OUT. Divided by the requests served in
// between, that is the garbage a request makes (a figure that, unlike CPU time, does not move with the machine's
// load). A diagnostic for the benchmark only: the proxy knows nothing of it.
'use strict';
const inspector = require('node:inspector');
const { writeFileSync } = require('node:fs');
const { isMainThread } = require('node:worker_threads');

const out = process.env.HEAP_PROBE_OUT;
if (out && isMainThread) {
  const s = new inspector.Session();
  s.connect();
  let started = false;
  process.on('SIGWINCH', () => {
    started = true;
    s.post('HeapProfiler.enable', () =>
      s.post('HeapProfiler.startSampling', {
        samplingInterval: 4096,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      }),
    );
  });
  process.on('exit', () => {
    if (!started) return;
    s.post('HeapProfiler.stopSampling', (e, r) => {
      if (e) return;
      let bytes = 0;
      const walk = (n) => {
        bytes += n.selfSize;
        for (const c of n.children) walk(c);
      };
      walk(r.profile.head);
      writeFileSync(out, String(bytes));
    });
  });
}
