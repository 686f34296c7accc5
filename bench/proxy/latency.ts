// Benchmark: tail latency under an open-loop load at fixed rates, hasetup-proxy against Debian's HAProxy 2.6 in the
// same run, on loopback, with the proxy role's own haproxy.cfg (its logging to stdout, option forwardfor, health
// checks every 2 s, two servers, the stats ACLs). Writes its section of bench/results/proxy.md (the rest is run.ts's) and prints it.
//
//   node --import tsx bench/proxy/latency.ts [seconds per run] [runs per engine]
//
// Shapes: "pinned": each proxy with one thread on core 0 (`nbthread 1`, `taskset -c 0`), the load generator and the
// backend on the other cores; "deployed": each engine with its defaults (no nbthread line: HAProxy one thread per
// CPU and unpinned, ours one worker per CPU) and nothing pinned, the cores shared with the load generator and the
// backend, as on an LB.
// Rates: first each engine's maximum (wrk, closed loop, 50 connections), then the open-loop runs at 10, 25, 50, 75 and
// 90% of HAProxy's, keep-alive and a new connection per request. The open-loop generator (openloop.c, compiled here)
// sends every request when it is due, answered or not, and counts its latency from then; its own send delay is
// reported so that a late generator is seen. Each proxy runs all rates in one process; the engines alternate at every
// rate and run (the first to go swaps each run). Each figure is the median of the runs' own percentiles.
// Env: LATENCY_SHAPES=pinned,deployed LATENCY_MODES=ka,close LATENCY_RATES=10,25,50,75,90 (percent),
// LATENCY_CONFIG=role|bare, LATENCY_GLOBAL_OURS='<global lines for ours only>' (an experiment: e.g. "nbthread 2"),
// LATENCY_PROBE=1 (ours' event-loop delay and GC pauses per thread, from loop-probe.cjs), LATENCY_NO_WRITE=1.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';
import { children, cpuTicks, CLK_TCK, freePort, median, rssKb, sleep, start, stop, waitPort, writeSection } from './procs.ts';
import { bareConfig, roleConfig } from './configs.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SECONDS = Number(process.argv[2] ?? 4);
const RUNS = Number(process.argv[3] ?? 2);
const list = (v: string | undefined, d: string) => (v ?? d).split(',').filter(Boolean);
const SHAPES = list(process.env.LATENCY_SHAPES, 'pinned,deployed') as Shape[];
const MODES = list(process.env.LATENCY_MODES, 'ka,close') as Mode[];
const RATES = list(process.env.LATENCY_RATES, '10,25,50,75,90').map(Number);
const CONFIG = process.env.LATENCY_CONFIG === 'bare' ? 'bare' : 'role';
const OURS_GLOBAL = process.env.LATENCY_GLOBAL_OURS ?? '';
const PROBE = process.env.LATENCY_PROBE === '1';
type Shape = 'pinned' | 'deployed';
type Mode = 'ka' | 'close';
type Who = 'haproxy' | 'ours';

for (const c of ['wrk', 'haproxy', 'taskset', 'cc']) {
  if (spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0) {
    console.error(`needs ${c} on PATH`);
    process.exit(2);
  }
}
const cores = os.cpus().length;
if (cores < 2) {
  console.error('needs 2 CPUs or more (the pinned shape keeps core 0 for the proxy)');
  process.exit(2);
}
execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
const proxyBin = join(root, 'dist', 'runtime', 'hasetup-proxy.cjs');
process.env.PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
const dir = mkdtempSync(join(os.tmpdir(), 'hasetup-latency-'));
mkdirSync(join(dir, 'probe'), { mode: 0o777 });
chmodSync(join(dir, 'probe'), 0o777); // written by the proxy after it dropped to the role's user
chmodSync(dir, 0o755);
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const gen = join(dir, 'openloop');
execFileSync('cc', ['-O2', '-o', gen, join(root, 'bench', 'proxy', 'openloop.c')], { stdio: 'inherit' });

interface Proxy {
  who: Who;
  port: number;
  proc: ChildProcess;
  logBytes: number;
}

async function startProxy(who: Who, shape: Shape, backend: number): Promise<Proxy> {
  const port = await freePort();
  const global = (shape === 'pinned' ? '    nbthread 1\n' : '') + (who === 'ours' && OURS_GLOBAL ? `    ${OURS_GLOBAL}\n` : '');
  const text = CONFIG === 'role' ? await roleConfig(dir, port, backend, global) : bareConfig(port, backend, global);
  const file = join(dir, `${who}-${shape}.cfg`);
  writeFileSync(file, text);
  const cmd = who === 'haproxy' ? ['haproxy', '-db', '-f', file] : [proxyBin, '-q', '-f', file];
  if (who === 'ours' && PROBE) process.env.NODE_OPTIONS = `--require ${join(root, 'bench', 'proxy', 'loop-probe.cjs')}`;
  process.env.LOOP_PROBE_DIR = join(dir, 'probe');
  // stdout is the log (the role logs to the journal through it): read all the time by a process of its own (wc -c,
  // as journald would take it), not by this one, whose event loop waits for each run
  const reader = spawn('wc', ['-c'], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(reader);
  const proc = start(cmd, shape === 'pinned' ? '0' : null, reader.stdin!);
  reader.stdin!.destroy(); // the proxy holds the pipe's writing end
  delete process.env.NODE_OPTIONS;
  const p: Proxy = { who, port, proc, logBytes: 0 };
  reader.stdout!.on('data', (d: Buffer) => (p.logBytes += Number(d.toString().trim()) || 0));
  await waitPort(port);
  await sleep(500);
  return p;
}

interface Run {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number; // ms
  answered: number;
  lost: number; // requests sent and never answered, or on a connection that failed
  cpuUs: number; // proxy CPU per answered request
  lagP99: number; // the generator's own send delay, p99 and max (ms)
  lagMax: number;
  rssMb: number;
}

function readU32(file: string): Uint32Array {
  const b = readFileSync(file);
  return new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
}

function histogram(values: Uint32Array): hdr.Histogram {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  for (const v of values) h.recordValue(Math.max(1, v));
  return h;
}

/** One open-loop run against a proxy: `rate` requests per second for `secs` seconds. */
function openLoop(p: Proxy, mode: Mode, rate: number, secs: number, cpu: string | null): Run {
  const out = join(dir, 'lat.bin');
  const t0 = cpuTicks(p.proc.pid!);
  const argv = [gen, '127.0.0.1', String(p.port), String(rate), String(secs), mode, '4000', out];
  const r = spawnSync(cpu === null ? argv[0] : 'taskset', cpu === null ? argv.slice(1) : ['-c', cpu, ...argv], { encoding: 'utf8' });
  const ticks = cpuTicks(p.proc.pid!) - t0;
  if (r.status !== 0) throw new Error(`openloop: ${r.stderr}`);
  const counts = JSON.parse(r.stdout) as { answered: number; lost: number; unanswered: number };
  const h = histogram(readU32(out));
  const lag = histogram(readU32(`${out}.lag`));
  const ms = (us: number) => us / 1000;
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    answered: counts.answered,
    lost: counts.lost + counts.unanswered,
    cpuUs: counts.answered ? (ticks * 1e6) / CLK_TCK / counts.answered : NaN,
    lagP99: ms(lag.getValueAtPercentile(99)),
    lagMax: ms(lag.maxValue),
    rssMb: rssKb(p.proc.pid!) / 1024,
  };
}

/** Closed-loop maximum (wrk, 50 connections): req/s and the proxy's CPU per request. */
function saturation(p: Proxy, mode: Mode, cpu: string | null): { rps: number; cpuUs: number } {
  const args = ['-t', cpu === null ? String(Math.max(1, cores - 1)) : '1', '-c', '50', '-d', `${Math.max(3, SECONDS)}s`];
  if (mode === 'close') args.push('-H', 'Connection: close');
  args.push(`http://127.0.0.1:${p.port}/`);
  const t0 = cpuTicks(p.proc.pid!);
  const r = spawnSync(cpu === null ? 'wrk' : 'taskset', cpu === null ? args : ['-c', cpu, 'wrk', ...args], { encoding: 'utf8' });
  const ticks = cpuTicks(p.proc.pid!) - t0;
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 0);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? 0), cpuUs: requests ? (ticks * 1e6) / CLK_TCK / requests : NaN };
}

interface Probe {
  thread: number;
  t: number;
  p99: number;
  max: number;
  gcN: number;
  gcMinor: number;
  gcMs: number;
  gcMax: number;
}

/** Ours' event-loop and GC figures per thread between t0 and t1 (ms epoch), from the probe's files. */
function probeWindow(pid: number, t0: number, t1: number): string {
  const pdir = join(dir, 'probe');
  if (!PROBE || !existsSync(pdir)) return '';
  const parts: string[] = [];
  for (const f of readdirSync(pdir).filter((x) => x.startsWith(`${pid}-`))) {
    const lines = readFileSync(join(pdir, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Probe)
      .filter((x) => x.t > t0 + 1000 && x.t <= t1);
    if (!lines.length) continue;
    const th = lines[0].thread === 0 ? 'main' : `w${lines[0].thread}`;
    const gcN = lines.reduce((a, x) => a + x.gcN, 0);
    const gcMs = lines.reduce((a, x) => a + x.gcMs, 0);
    parts.push(
      `${th}: loop delay p99 ${median(lines.map((x) => x.p99)).toFixed(1)} max ${Math.max(...lines.map((x) => x.max)).toFixed(1)} ms, ` +
        `GC ${(gcN / lines.length).toFixed(1)}/s, ${(gcN ? gcMs / gcN : 0).toFixed(2)} ms avg, ${Math.max(...lines.map((x) => x.gcMax)).toFixed(1)} max`,
    );
  }
  return parts.join('; ');
}

interface Row {
  shape: Shape;
  mode: Mode;
  pct: number;
  rate: number;
  runs: Record<Who, Run[]>;
  probes: string[];
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const maxima: { shape: Shape; mode: Mode; h: number; o: number; hCpu: number; oCpu: number }[] = [];
  const notes: string[] = [];
  const loadStart = os.loadavg()[0];
  for (const shape of SHAPES) {
    const bport = await freePort();
    const backend = start(
      [process.execPath, '--import', 'tsx', join(root, 'bench', 'proxy', 'backend.ts'), String(bport)],
      shape === 'pinned' ? '1' : null,
    );
    await waitPort(bport);
    const loadCpu = shape === 'pinned' ? `1-${cores - 1}` : null;
    const px: Record<Who, Proxy> = { haproxy: await startProxy('haproxy', shape, bport), ours: await startProxy('ours', shape, bport) };
    for (const mode of MODES) {
      // each engine's maximum, alternated; the rates are fractions of HAProxy's (median of the runs)
      const sat: Record<Who, { rps: number; cpuUs: number }[]> = { haproxy: [], ours: [] };
      for (let i = 0; i < RUNS; i++)
        for (const who of (i % 2 ? ['ours', 'haproxy'] : ['haproxy', 'ours']) as Who[]) sat[who].push(saturation(px[who], mode, loadCpu));
      const hMax = median(sat.haproxy.map((x) => x.rps));
      maxima.push({
        shape,
        mode,
        h: hMax,
        o: median(sat.ours.map((x) => x.rps)),
        hCpu: median(sat.haproxy.map((x) => x.cpuUs)),
        oCpu: median(sat.ours.map((x) => x.cpuUs)),
      });
      console.log(`${shape} ${mode}: maximum haproxy ${hMax.toFixed(0)} ours ${median(sat.ours.map((x) => x.rps)).toFixed(0)} req/s`);
      for (const pct of RATES) {
        const rate = Math.max(50, Math.round((hMax * pct) / 100));
        const row: Row = { shape, mode, pct, rate, runs: { haproxy: [], ours: [] }, probes: [] };
        for (let i = 0; i < RUNS; i++)
          for (const who of ((i + pct) % 2 ? ['ours', 'haproxy'] : ['haproxy', 'ours']) as Who[]) {
            openLoop(px[who], mode, rate, 1, loadCpu); // warm-up at the same rate
            const t0 = Date.now();
            const r = openLoop(px[who], mode, rate, SECONDS, loadCpu);
            if (who === 'ours') {
              await sleep(1100); // the probe's last second
              row.probes.push(probeWindow(px.ours.proc.pid!, t0, Date.now()));
            }
            row.runs[who].push(r);
            console.log(
              `${shape} ${mode} ${pct}% ${rate}/s ${who}: p50 ${r.p50} p90 ${r.p90} p99 ${r.p99} p99.9 ${r.p999} max ${r.max} ms, ` +
                `cpu ${r.cpuUs.toFixed(1)} us/req, lost ${r.lost}, generator lag p99 ${r.lagP99} max ${r.lagMax} ms, rss ${r.rssMb.toFixed(0)} MB` +
                (who === 'ours' && PROBE ? `\n    ${row.probes[row.probes.length - 1]}` : ''),
            );
          }
        rows.push(row);
      }
    }
    for (const who of ['haproxy', 'ours'] as Who[]) {
      await stop(px[who].proc);
      await sleep(200); // wc's count
      if (px[who].logBytes === 0 && CONFIG === 'role') notes.push(`${who} (${shape}) wrote no log line`);
    }
    await stop(backend);
  }
  print(rows, maxima, loadStart, notes);
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  process.exit(0);
}

function print(
  rows: Row[],
  maxima: { shape: Shape; mode: Mode; h: number; o: number; hCpu: number; oCpu: number }[],
  loadStart: number,
  notes: string[],
) {
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const cell = (rs: Record<Who, Run[]>, k: keyof Run) => {
    const h = median(rs.haproxy.map((r) => r[k]));
    const o = median(rs.ours.map((r) => r[k]));
    return `${f(h)} / ${f(o)} (${(o / h).toFixed(2)})`;
  };
  const modeName = (m: Mode) => (m === 'ka' ? 'keep-alive' : 'new connection each');
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const hv = spawnSync('haproxy', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0];
  const lagMax = Math.max(...rows.flatMap((r) => [...r.runs.haproxy, ...r.runs.ours].map((x) => x.lagP99)));
  const md = `## Open-loop latency against HAProxy (bench/proxy/latency.ts)

- Date: ${new Date().toISOString()}; machine: ${cpu}, ${cores} cores, Linux ${os.release()}, Node ${process.version};
  reference: ${hv}; load average at the start ${loadStart.toFixed(1)}, at the end ${os.loadavg()[0].toFixed(1)}
- Command: \`${[
    process.env.LATENCY_CONFIG && `LATENCY_CONFIG=${CONFIG}`,
    process.env.LATENCY_SHAPES && `LATENCY_SHAPES=${SHAPES.join(',')}`,
    process.env.LATENCY_MODES && `LATENCY_MODES=${MODES.join(',')}`,
    process.env.LATENCY_RATES && `LATENCY_RATES=${RATES.join(',')}`,
    OURS_GLOBAL && `LATENCY_GLOBAL_OURS='${OURS_GLOBAL}'`,
  ]
    .filter(Boolean)
    .map((x) => `${x} `)
    .join('')}node --import tsx bench/proxy/latency.ts ${SECONDS} ${RUNS}\`
- Configuration: ${CONFIG === 'role' ? "the proxy role's haproxy.cfg for the lab's first LB (log to stdout, httplog, forwardfor, two servers with HTTP health checks every 2 s, stats ACLs), on loopback; both servers are the one backend" : 'a bare listen section (no log, no checks)'}
- Each cell: HAProxy / hasetup-proxy (ratio), milliseconds from when the request was due to the end of its answer; the
  median over ${RUNS} runs of ${SECONDS} s each per engine, alternated. Rates are percentages of HAProxy's maximum in
  the same shape (wrk, closed loop). The generator's own send delay (p99 over all runs, at most): ${lagMax.toFixed(2)} ms.

| shape, mode | rate | p50 | p90 | p99 | p99.9 | max | CPU us/req | lost |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
${rows
  .map(
    (r) =>
      `| ${r.shape}, ${modeName(r.mode)} | ${r.pct}% = ${r.rate}/s | ${cell(r.runs, 'p50')} | ${cell(r.runs, 'p90')} | ${cell(r.runs, 'p99')} | ${cell(r.runs, 'p999')} | ${cell(r.runs, 'max')} | ${cell(r.runs, 'cpuUs')} | ${r.runs.haproxy.reduce((a, x) => a + x.lost, 0)} / ${r.runs.ours.reduce((a, x) => a + x.lost, 0)} |`,
  )
  .join('\n')}

Maximum (closed loop, wrk 50 connections; median of ${RUNS}):

| shape, mode | HAProxy req/s | ours req/s | ratio | CPU us/req HAProxy / ours (ratio) |
|---|---:|---:|---:|---:|
${maxima.map((m) => `| ${m.shape}, ${modeName(m.mode)} | ${m.h.toFixed(0)} | ${m.o.toFixed(0)} | ${(m.o / m.h).toFixed(2)} | ${m.hCpu.toFixed(1)} / ${m.oCpu.toFixed(1)} (${(m.oCpu / m.hCpu).toFixed(2)}) |`).join('\n')}
${notes.length ? `\nNotes: ${notes.join('; ')}\n` : ''}${PROBE ? `\nOurs, per thread (loop-probe.cjs), each run:\n\n${rows.map((r) => r.probes.map((p) => `- ${r.shape} ${r.mode} ${r.pct}%: ${p}`).join('\n')).join('\n')}\n` : ''}`;
  console.log(md);
  if (process.env.LATENCY_NO_WRITE !== '1') writeSection(join(root, 'bench', 'results', 'proxy.md'), 'open-loop latency', md);
}

void main();
