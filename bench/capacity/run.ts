// Benchmark: the cluster's capacity in the lab (the long version of the capacity scenario), both
// engines side by side in one run. For each engine (bundled, then haproxy): apply the cluster, run
// `hasetup failover-test --scenarios capacity` with long steps and floods (its JSON): the capacity and
// knee with every web node and with one, the floods at 2x and 4x, the single box beside them.
//
//   node --import tsx bench/capacity/run.ts [--step-seconds 15] [--flood-seconds 60]    (root; writes bench/results/capacity.md)
//
// It brings up a lab of its own (HASETUP_LAB_NAME=cbench, the default host limits) and takes it down at the end.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TestLab, REPO } from '../../harness/lab-cli.ts';
import { DEFAULT_LIMITS } from '../../cli/lab/limits.ts';
import type { CapacityReport, CapacityRun, FailoverReport } from '../../cli/failover/types.ts';

const { values } = parseArgs({
  options: {
    'step-seconds': { type: 'string', default: '15' },
    'flood-seconds': { type: 'string', default: '60' },
    'recovery-seconds': { type: 'string', default: '20' },
    refine: { type: 'string', default: '3' },
  },
});
const args = [
  '--capacity-step-seconds',
  values['step-seconds'],
  '--capacity-flood-seconds',
  values['flood-seconds'],
  '--capacity-recovery-seconds',
  values['recovery-seconds'],
  '--capacity-refine',
  values.refine,
];
const lab = new TestLab('cbench');
const engines = ['bundled', 'haproxy'] as const;
const results: Record<string, { report: FailoverReport; cap: CapacityReport; load: string }> = {};

await lab.up();
try {
  for (const engine of engines) {
    const inv = await lab.inventoryFor(engine);
    const a = await lab.apply(['--json'], inv);
    if (a.code !== 0) throw new Error(`apply (${engine}) failed: ${a.stdout.slice(-3000)}${a.stderr}`);
    const json = join(lab.dir, `capacity-${engine}.json`);
    const load = loadavg()
      .map((x) => x.toFixed(1))
      .join(' ');
    const f = await lab.exec([
      process.execPath,
      join(REPO, 'bin/hasetup.js'),
      'failover-test',
      inv,
      '--scenarios',
      'capacity',
      ...args,
      '--json',
      json,
      '--report',
      join(lab.dir, `capacity-${engine}.html`),
    ]);
    process.stdout.write(f.stdout);
    const report = JSON.parse(readFileSync(json, 'utf8')) as FailoverReport;
    const cap = report.scenarios.find((s) => s.name === 'capacity')?.capacity;
    if (!cap) throw new Error(`${engine}: no capacity figures in ${json}`);
    results[engine] = { report, cap, load };
  }
} finally {
  await lab.down();
}

const limits = Object.entries(DEFAULT_LIMITS)
  .map(
    ([g, l]) =>
      `${g} ${l.cpu ?? 'no limit'} core${l.cpu === 1 ? '' : 's'}, ${l.memory === null ? 'no limit' : `${l.memory / 2 ** 20} MiB`}`,
  )
  .join('; ');
const row = (label: string, f: (c: CapacityReport) => string, goal: string) =>
  `| ${label} | ${engines.map((e) => f(results[e].cap)).join(' | ')} | ${goal} |`;
const rate = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${x} req/s`);
const flood = (r: CapacityRun | undefined, i: number, f: (x: CapacityRun['floods'][number]) => string) => {
  const x = r?.floods[i];
  return x ? f(x) : '-';
};
const fl = (x: CapacityRun['floods'][number]) =>
  `${x.served}/s (${Math.round(x.servedRatio * 100)} %), rst ${x.errors.reset}, tmo ${x.errors.timeout}, 502 ${x.errors['502']}, 503 ${x.errors['503']} (${x.early503} early), p99 ${Math.round(x.p99All)} ms`;
const steps = (e: string, r: CapacityRun | undefined) =>
  (r?.steps ?? [])
    .map(
      (s) =>
        `| ${e} | ${r!.target} | ${s.rate} | ${s.served} | ${s.p50} | ${s.p99} | ${s.p999} | ${s.errors.reset}/${s.errors.timeout}/${s.errors['502']}/${s.errors['503']} | ${Math.max(0, ...Object.values(s.hosts.lbs).map((l) => l.maxQueue))} | ${Object.entries(
          s.hosts.webs,
        )
          .map(([n, w]) => `${n} ${w.cpu ?? '-'} ${w.fpmBusy}/${w.fpmQueue}`)
          .join(', ')} | ${s.hosts.dbConnections ?? '-'} |`,
    )
    .join('\n');

const md = `# Capacity benchmark: the lab's cluster, both engines

- machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim()}; the lab hosts are systemd-nspawn containers on it, the load generator runs on the same machine; the machine is shared and noisy (load average at each engine's start: ${engines.map((e) => `${e} ${results[e].load}`).join(', ')}): compare the engines and the targets within this run, not with another machine's
- the lab's limits (defaults of \`hasetup lab up\`): ${limits}
- date: ${new Date().toISOString()}
- command: \`node --import tsx bench/capacity/run.ts --step-seconds ${values['step-seconds']} --flood-seconds ${values['flood-seconds']} --recovery-seconds ${values['recovery-seconds']} --refine ${values.refine}\` (as root): for each engine \`hasetup apply\`, then \`hasetup failover-test --scenarios capacity ${args.join(' ')}\`
- SLO: p99 under ${results[engines[0]].cap.sloMs} ms; the LBs' timeout queue ${results[engines[0]].cap.queueTimeoutMs} ms

| figure | bundled | haproxy | goal |
| --- | --- | --- | --- |
${row('capacity, 2 web nodes (knee)', (c) => `${rate(c.cluster.capacity)} (${rate(c.cluster.knee)})`, '')}
${row('capacity, 1 web node', (c) => rate(c.oneNode?.capacity), '')}
${row('scale ratio, 1 to 2 web nodes', (c) => String(c.scaleRatio ?? '-'), '≥ 1.8')}
${row('flood 2x: served, errors', (c) => flood(c.cluster, 0, fl), '≥ 80 % served, 0 rst/tmo/502, 503 only after the queue timeout')}
${row('flood 4x: served, errors', (c) => flood(c.cluster, 1, fl), 'same')}
${row('floods: Too many connections / MaxRequestWorkers / pm.max_children lines', (c) => c.cluster.floods.map((x) => `${x.logs.tooManyConnections ?? '-'}/${x.logs.maxRequestWorkers}/${x.logs.maxChildren}`).join(', '), '0 Too many connections')}
${row('floods: p99 back under the SLO after', (c) => c.cluster.floods.map((x) => (x.recoveryMs === null ? 'not within the window' : `${(x.recoveryMs / 1000).toFixed(1)} s`)).join(', '), 'seconds')}
${row('single box: capacity (knee)', (c) => `${rate(c.singleBox?.capacity)} (${rate(c.singleBox?.knee)})`, '')}
${row('single box: flood 2x', (c) => flood(c.singleBox, 0, fl), '(the seed: it falls over)')}
${row('single box: flood 4x', (c) => flood(c.singleBox, 1, fl), '')}
${row('thresholds held', (c) => (Object.values(results).find((r) => r.cap === c)!.report.passed ? 'yes' : 'no'), 'yes')}

## Ramp steps

rst/tmo/502/503: connections reset, timeouts, 502s, 503s; web: CPU in cores, FPM children busy/waiting.

| engine | target | rate | served | p50 ms | p99 ms | p99.9 ms | rst/tmo/502/503 | LB queue | web | db conns |
| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |
${engines
  .flatMap((e) => [steps(e, results[e].cap.cluster), steps(e, results[e].cap.oneNode), steps(e, results[e].cap.singleBox)])
  .filter(Boolean)
  .join('\n')}
`;
mkdirSync(join(REPO, 'bench/results'), { recursive: true });
writeFileSync(join(REPO, 'bench/results/capacity.md'), md);
process.stdout.write(md);
