// Benchmark: the cluster's failover figures in the lab, both engines side by side in one run.
// For each engine (bundled, then haproxy): apply the cluster, run `hasetup failover-test` with every
// scenario (its JSON), then a steady load through the VIP for --quiet-minutes (default 5) with both
// LBs watched: VRRP transitions without a fault (the VIP added or removed anywhere) must be none.
//
//   node --import tsx bench/failover/run.ts [--quiet-minutes 5] [--rate 200]    (root; writes bench/results/failover.md)
//
// It brings up a lab of its own (HASETUP_LAB_NAME=fbench) and takes it down at the end.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TestLab, REPO } from '../../harness/lab-cli.ts';
import type { FailoverReport, ScenarioReport } from '../../cli/failover/types.ts';

const { values } = parseArgs({ options: { 'quiet-minutes': { type: 'string', default: '5' }, rate: { type: 'string', default: '200' } } });
const quietMs = Number(values['quiet-minutes']) * 60_000;
const rate = Number(values.rate);
const lab = new TestLab('fbench');
const engines = ['bundled', 'haproxy'] as const;

interface Quiet {
  transitions: number;
  requests: number;
  failed: number;
  events: string[];
}

/** A steady load through the VIP for `ms` while both LBs report every VIP change (ip monitor). */
async function quietRun(ms: number): Promise<Quiet> {
  const seconds = Math.ceil(ms / 1000) + 5;
  const watch = (h: string) => lab.ssh(h, `timeout ${seconds} ip -o monitor address | grep --line-buffered -F ' 10.213.0.100/' || true`);
  const [w1, w2, load] = await Promise.all([
    watch('lb01'),
    watch('lb02'),
    lab.exec([
      process.execPath,
      '--import',
      'tsx',
      join(REPO, 'test/helpers/vip-load.ts'),
      'http://10.213.0.100/',
      String(rate),
      String(ms),
    ]),
  ]);
  const events = [
    ...w1.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => `lb01: ${l.trim()}`),
    ...w2.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => `lb02: ${l.trim()}`),
  ];
  const summary = JSON.parse(load.stdout.trim().split('\n').pop() ?? '{}') as { total: number; failed: number };
  return { transitions: events.length, requests: summary.total, failed: summary.failed, events };
}

const results: Record<string, { report: FailoverReport; quiet: Quiet; applyMs: number }> = {};
await lab.up();
try {
  for (const engine of engines) {
    const inv = await lab.inventoryFor(engine);
    const a = await lab.apply(['--json'], inv);
    if (a.code !== 0) throw new Error(`apply (${engine}) failed: ${a.stdout.slice(-3000)}${a.stderr}`);
    const json = join(lab.dir, `failover-${engine}.json`);
    const f = await lab.exec([
      process.execPath,
      join(REPO, 'bin/hasetup.js'),
      'failover-test',
      inv,
      '--rate',
      String(rate),
      '--json',
      json,
      '--report',
      join(lab.dir, `failover-${engine}.html`),
    ]);
    process.stdout.write(f.stdout);
    const report = JSON.parse(readFileSync(json, 'utf8')) as FailoverReport;
    const quiet = await quietRun(quietMs);
    results[engine] = { report, quiet, applyMs: a.ms };
  }
} finally {
  await lab.down();
}

const sc = (e: string, n: string): ScenarioReport | undefined => results[e].report.scenarios.find((s) => s.name === n);
const ms = (x: number | undefined | null) => (x === undefined || x === null ? '-' : `${Math.round(x)} ms`);
const row = (label: string, f: (e: string) => string, goal: string) => `| ${label} | ${engines.map(f).join(' | ')} | ${goal} |`;
const failedOf = (e: string, n: string) => {
  const s = sc(e, n);
  return s ? `${s.failedRequests} of ${s.totalRequests}` : '-';
};
const spikeRows = (e: string) =>
  (sc(e, 'spike')?.steps ?? [])
    .map((s) => `| ${e} | ${s.rate} | ${s.served} | ${s.p50} | ${s.p99} | ${s.errors} | ${s.maxQueue} | ${s.maxSessions} |`)
    .join('\n');

const md = `# Failover benchmark: the lab's cluster, both engines

- machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim()}; the five lab hosts are systemd-nspawn containers on it
- date: ${new Date().toISOString()}
- command: \`node --import tsx bench/failover/run.ts --quiet-minutes ${quietMs / 60_000} --rate ${rate}\` (as root)
- each engine: \`hasetup apply\`, then \`hasetup failover-test\` (every scenario, ${rate} req/s through the VIP from the lab's controller, keep-alive and new connections), then ${quietMs / 60_000} min of the same load with no fault

| figure | bundled | haproxy | goal |
| --- | --- | --- | --- |
${row('web node stopped (Apache): failed requests', (e) => failedOf(e, 'web-stop'), '0')}
${row('web node stopped: out of rotation in both proxies', (e) => ms(sc(e, 'web-stop')?.detectionMs), '< 2 s')}
${row('web node packets dropped: failed requests', (e) => failedOf(e, 'web-drop'), '0')}
${row('web node packets dropped: out of rotation in both proxies', (e) => ms(sc(e, 'web-drop')?.detectionMs), '< 2 s')}
${row('master LB killed: takeover', (e) => ms(sc(e, 'lb-kill')?.takeoverMs), '< 1 s')}
${row('master LB killed: VIP on the backup', (e) => ms(sc(e, 'lb-kill')?.figures?.vipOnBackupMs as number), '')}
${row('master LB killed: failed requests (connections reset)', (e) => `${failedOf(e, 'lb-kill')} (${sc(e, 'lb-kill')?.connectionsReset ?? '-'})`, 'only those in flight on the master')}
${row("master LB's link down: takeover", (e) => ms(sc(e, 'lb-link')?.takeoverMs), '< 1 s')}
${row("master LB's link down: failed requests", (e) => failedOf(e, 'lb-link'), 'only those in flight on the master')}
${row('master LB stopped (graceful): takeover', (e) => ms(sc(e, 'lb-stop')?.takeoverMs), '< 300 ms')}
${row('master LB stopped: failed requests', (e) => failedOf(e, 'lb-stop'), '')}
${row('master back: VIP taken back after the heal', (e) => ms(sc(e, 'lb-kill')?.restoredMs), '(preempt_delay 5 s)')}
${row(`VRRP transitions in ${quietMs / 60_000} min of load, no fault`, (e) => String(results[e].quiet.transitions), '0')}
${row(`requests in those ${quietMs / 60_000} min (failed)`, (e) => `${results[e].quiet.requests} (${results[e].quiet.failed})`, '')}
${row('failover-test passed', (e) => (results[e].report.passed ? 'yes' : 'no'), 'yes')}

## Spike steps

| engine | rate asked | served req/s | p50 ms | p99 ms | errors | max queue | max sessions |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${engines.map(spikeRows).join('\n')}
${engines.some((e) => results[e].quiet.events.length) ? `\nVIP events during the quiet runs:\n${engines.flatMap((e) => results[e].quiet.events.map((l) => `- ${e}: ${l}`)).join('\n')}\n` : ''}`;
mkdirSync(join(REPO, 'bench/results'), { recursive: true });
writeFileSync(join(REPO, 'bench/results/failover.md'), md);
process.stdout.write(md);
