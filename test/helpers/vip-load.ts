// Run in the lab's controller namespace (`hasetup lab exec -- node --import tsx test/helpers/vip-load.ts
// URL RATE MS [COUNT [FILE]]`): a bounded load through the VIP (cli/failover/load.ts), keep-alive and new
// connections taken in turn, for MS ms or COUNT requests; prints a summary as JSON: total, failed,
// per node, the failures; with FILE, every request there too ({ at: epoch ms, node, status, error }).
// For an https URL, VIP_LOAD_CA names a PEM file of the certificates to trust. VIP_LOAD_MARK, a regular
// expression, records its first group in each answer's body as the request's `mark` in FILE. VIP_LOAD_STOP
// names a file: once it exists the load stops sending (the requests in flight still end), so that a test
// whose steps take a varying time keeps the load on until its last step, then ends it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { failed, runLoad } from '../../cli/failover/load.ts';

const [url, rate, ms, count, out] = [
  process.argv[2],
  Number(process.argv[3]),
  Number(process.argv[4]),
  Number(process.argv[5]) || undefined,
  process.argv[6],
];
const startedAt = Date.now();
const ca = process.env.VIP_LOAD_CA ? readFileSync(process.env.VIP_LOAD_CA, 'utf8') : undefined;
const markRe = process.env.VIP_LOAD_MARK ? new RegExp(process.env.VIP_LOAD_MARK) : undefined;
const stop = new AbortController();
const stopFile = process.env.VIP_LOAD_STOP;
const watch = stopFile ? setInterval(() => existsSync(stopFile) && stop.abort(), 100) : undefined;
const samples = await runLoad({
  url,
  rate,
  durationMs: ms,
  maxRequests: count,
  signal: stop.signal,
  ...(ca ? { connect: { ca } } : {}),
  ...(markRe ? { mark: (body: string) => markRe.exec(body)?.[1] } : {}),
});
clearInterval(watch);
// every request, on the epoch clock (for a test that compares with the moments it acted)
if (out)
  writeFileSync(
    out,
    JSON.stringify(
      samples.map((s) => ({
        at: Math.round(startedAt + s.t),
        node: s.node ?? null,
        status: s.status,
        error: s.error ?? null,
        ...(s.mark !== undefined ? { mark: s.mark } : {}),
      })),
    ),
  );
const byNode: Record<string, number> = {};
for (const s of samples) if (s.node && !failed(s)) byNode[s.node] = (byNode[s.node] ?? 0) + 1;
const failures = samples.filter(failed);
process.stdout.write(
  JSON.stringify({
    total: samples.length,
    failed: failures.length,
    byNode,
    failures: failures.slice(0, 50),
    lastByNode: lastSeen(samples),
  }) + '\n',
);

/** When each node last served (ms since the start): who served after a change. */
function lastSeen(all: typeof samples): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of all) if (s.node && !failed(s)) out[s.node] = Math.round(s.t);
  return out;
}
