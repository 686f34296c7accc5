// Benchmark: the proxy's CPU per request with one thread on a core of its own, HAProxy alongside, and where ours
// spends it. Each engine runs `nbthread 1` pinned to core 0; the backend and wrk (closed loop, a fixed number of
// connections) share the other cores. Engines alternate, each run is short, figures are medians.
//
//   node --import tsx bench/proxy/cpu.ts [seconds per run] [runs per engine]
//
// Env: CPU_CONFIG=role|bare (default role: the proxy role's haproxy.cfg, see configs.ts), CPU_MODES=ka,close,
// CPU_CONNS=50 (wrk's connections), CPU_OURS=name=bundle.cjs,... (several builds of ours in one run, e.g. before and
// after a change; default: this checkout's dist/runtime/hasetup-proxy.cjs as "ours"),
// CPU_PROFILE=DIR: one more run of each build of ours per mode under `node --cpu-prof`, the profile written to DIR
// and its functions by self time printed (the samples are wall time: on a busy machine preemption is charged to
// whatever ran). CPU_GARBAGE=1: one more run of each build of ours per mode with V8's sampling heap profiler
// (heap-probe.cjs), for the bytes allocated per request.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { children, cpuTicks, CLK_TCK, freePort, median, rssKb, sleep, start, stop, waitPort } from './procs.ts';
import { bareConfig, roleConfig } from './configs.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SECONDS = Number(process.argv[2] ?? 4);
const RUNS = Number(process.argv[3] ?? 3);
const CONFIG = process.env.CPU_CONFIG === 'bare' ? 'bare' : 'role';
const MODES = (process.env.CPU_MODES ?? 'ka,close').split(',').filter(Boolean) as Mode[];
const CONNS = Number(process.env.CPU_CONNS ?? 50);
const PROFILE = process.env.CPU_PROFILE ? resolve(process.env.CPU_PROFILE) : '';
const GARBAGE = process.env.CPU_GARBAGE === '1';
type Mode = 'ka' | 'close';

for (const c of ['wrk', 'haproxy', 'taskset']) {
  if (spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0) {
    console.error(`needs ${c} on PATH`);
    process.exit(2);
  }
}
const cores = os.cpus().length;
if (cores < 2) {
  console.error('needs 2 CPUs or more (core 0 is for the proxy)');
  process.exit(2);
}
let ours: [string, string][];
if (process.env.CPU_OURS) ours = process.env.CPU_OURS.split(',').map((x) => x.split('=', 2) as [string, string]);
else {
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  ours = [['ours', join(root, 'dist', 'runtime', 'hasetup-proxy.cjs')]];
}
const engines = ['haproxy', ...ours.map((o) => o[0])];
const bin = new Map(ours.map(([n, f]) => [n, resolve(f)]));
const dir = mkdtempSync(join(os.tmpdir(), 'hasetup-cpu-'));
chmodSync(dir, 0o755);
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

interface Proxy {
  port: number;
  proc: ChildProcess;
}

async function startProxy(who: string, backend: number, prof: string | null, heapOut = ''): Promise<Proxy> {
  const port = await freePort();
  const text = CONFIG === 'role' ? await roleConfig(dir, port, backend, '    nbthread 1\n') : bareConfig(port, backend, '    nbthread 1\n');
  const file = join(dir, `${who}.cfg`);
  writeFileSync(file, text);
  const node = [process.execPath, '--max-semi-space-size=32', ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])];
  if (heapOut) node.push('--require', join(root, 'bench', 'proxy', 'heap-probe.cjs'));
  process.env.HEAP_PROBE_OUT = heapOut;
  const cmd = who === 'haproxy' ? ['haproxy', '-db', '-f', file] : [...node, bin.get(who)!, '-q', '-f', file];
  // the log (stdout) read all the time by a process of its own, as journald would
  const reader = spawn('sh', ['-c', 'cat >/dev/null'], { stdio: ['pipe', 'ignore', 'inherit'] });
  children.push(reader);
  const proc = start(cmd, '0', reader.stdin!);
  reader.stdin!.destroy();
  await waitPort(port);
  await sleep(300);
  return { port, proc };
}

/** wrk against the proxy for `secs`: req/s and the proxy's CPU (us) per request. */
function load(p: Proxy, mode: Mode, secs: number): { rps: number; cpuUs: number } {
  const args = ['-c', '1-' + String(cores - 1), 'wrk', '-t', '1', '-c', String(CONNS), '-d', `${secs}s`];
  if (mode === 'close') args.push('-H', 'Connection: close');
  args.push(`http://127.0.0.1:${p.port}/`);
  const t0 = cpuTicks(p.proc.pid!);
  const r = spawnSync('taskset', args, { encoding: 'utf8' });
  const ticks = cpuTicks(p.proc.pid!) - t0;
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 0);
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: .*/.exec(r.stdout)?.[0];
  if (errors) console.log(`  (${errors})`);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? 0), cpuUs: requests ? (ticks * 1e6) / CLK_TCK / requests : NaN };
}

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

/** The profile's functions by self time, and by total time (self and callees), the first `n` of each. */
function summary(file: string, n: number): string {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[] };
  const byId = new Map(prof.nodes.map((x) => [x.id, x]));
  const parent = new Map<number, number>();
  for (const x of prof.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  const name = (x: Node) =>
    `${x.callFrame.functionName || '(anonymous)'} ${x.callFrame.url.split('/').pop()}:${x.callFrame.lineNumber + 1}`;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  for (const x of prof.nodes) {
    const h = x.hitCount ?? 0;
    if (!h) continue;
    all += h;
    self.set(name(x), (self.get(name(x)) ?? 0) + h);
    const seen = new Set<string>();
    for (let id: number | undefined = x.id; id !== undefined; id = parent.get(id)) {
      const k = name(byId.get(id)!);
      if (!seen.has(k)) total.set(k, (total.get(k) ?? 0) + h);
      seen.add(k);
    }
  }
  const top = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${((100 * v) / all).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  return `self:\n${top(self)}\ntotal:\n${top(total)}`;
}

async function main(): Promise<void> {
  const load0 = os.loadavg();
  const bport = await freePort();
  const backend = start([process.execPath, '--import', 'tsx', join(root, 'bench', 'proxy', 'backend.ts'), String(bport)], `1-${cores - 1}`);
  await waitPort(bport);
  const px = new Map<string, Proxy>();
  for (const e of engines) px.set(e, await startProxy(e, bport, null));
  const res = new Map<string, { rps: number; cpuUs: number }[]>();
  for (const mode of MODES)
    for (let i = 0; i < RUNS; i++) {
      const order = i % 2 ? [...engines].reverse() : engines;
      for (const e of order) {
        load(px.get(e)!, mode, 1); // warm-up
        const r = load(px.get(e)!, mode, SECONDS);
        const k = `${mode} ${e}`;
        res.set(k, [...(res.get(k) ?? []), r]);
        console.log(
          `${k}: ${r.rps.toFixed(0)} req/s, ${r.cpuUs.toFixed(1)} us/req, rss ${(rssKb(px.get(e)!.proc.pid!) / 1024).toFixed(0)} MB`,
        );
      }
    }
  for (const p of px.values()) await stop(p.proc);
  const lines: string[] = [];
  for (const mode of MODES) {
    const h = res.get(`${mode} haproxy`)!;
    const hc = median(h.map((x) => x.cpuUs));
    const hr = median(h.map((x) => x.rps));
    for (const e of engines) {
      const r = res.get(`${mode} ${e}`)!;
      const c = median(r.map((x) => x.cpuUs));
      const q = median(r.map((x) => x.rps));
      lines.push(
        `| ${mode === 'ka' ? 'keep-alive' : 'new connection each'} | ${e} | ${q.toFixed(0)} (${(q / hr).toFixed(2)}) | ${c.toFixed(1)} (${(c / hc).toFixed(2)}) | ${r.map((x) => x.cpuUs.toFixed(0)).join(', ')} |`,
      );
    }
  }
  if (PROFILE) {
    mkdirSync(PROFILE, { recursive: true });
    for (const [name] of ours)
      for (const mode of MODES) {
        const pdir = join(PROFILE, `${name}-${CONFIG}-${mode}`);
        rmSync(pdir, { recursive: true, force: true });
        mkdirSync(pdir, { recursive: true });
        chmodSync(pdir, 0o777);
        const p = await startProxy(name, bport, pdir);
        load(p, mode, 1);
        const r = load(p, mode, SECONDS);
        await stop(p.proc);
        const f = readdirSync(pdir).find((x) => x.endsWith('.cpuprofile'));
        console.log(
          `\nprofile ${name} ${CONFIG} ${mode} (${r.rps.toFixed(0)} req/s, ${r.cpuUs.toFixed(1)} us/req): ${f ? join(pdir, f) : 'none written'}`,
        );
        if (f) console.log(summary(join(pdir, f), 40));
      }
  }
  const garbage: string[] = [];
  if (GARBAGE)
    for (const [name] of ours)
      for (const mode of MODES) {
        mkdirSync(join(dir, 'heap'), { recursive: true });
        chmodSync(join(dir, 'heap'), 0o777); // written by the proxy after it dropped to the role's user
        const out = join(dir, 'heap', `${name}-${mode}`);
        const p = await startProxy(name, bport, null, out);
        load(p, mode, 1);
        p.proc.kill('SIGWINCH');
        await sleep(200);
        const r = load(p, mode, SECONDS);
        await stop(p.proc);
        await sleep(200);
        const bytes = Number(readFileSync(out, 'utf8'));
        const reqs = r.rps * SECONDS;
        garbage.push(`| ${mode === 'ka' ? 'keep-alive' : 'new connection each'} | ${name} | ${(bytes / reqs).toFixed(0)} |`);
      }
  await stop(backend);
  console.log(
    `\n- Date: ${new Date().toISOString()}; ${os.cpus()[0]?.model ?? ''}, ${cores} cores, Node ${process.version}; load average at the start ${load0.map((x) => x.toFixed(1)).join(' ')}, at the end ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    `- Config: ${CONFIG}, nbthread 1 on core 0, wrk -c ${CONNS} on the other cores; ${RUNS} runs of ${SECONDS} s per engine, alternated; medians`,
  );
  console.log(
    `\n| mode | engine | req/s (ratio to HAProxy) | CPU us/req (ratio) | CPU us/req, each run |\n|---|---|---:|---:|---|\n${lines.join('\n')}`,
  );
  if (garbage.length) console.log(`\n| mode | build | bytes allocated per request |\n|---|---|---:|\n${garbage.join('\n')}`);
  process.exit(0);
}

void main();
