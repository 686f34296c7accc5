// Benchmark: hasetup-proxy against Debian's HAProxy in the same run, same backend, same load generator (wrk),
// on loopback. Writes bench/results/proxy.md. Run as: node --import tsx bench/proxy/run.ts [seconds per run] [runs]
// Needs wrk and haproxy (Debian packages of the same names) and a raised open-file limit (re-executes itself under
// `ulimit -n <hard limit>` when needed, for the 10,000-connection memory measurement).
// PROXY_BENCH_BASELINE=<another hasetup-proxy.cjs> adds that build as a third contender, interleaved with the two
// others (an A/B of two versions in the same run); its figures go to stdout and bench/results is left as it is.
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { children, cpuTicks, CLK_TCK, freePort, median, rssKb, sleep, start, stop, waitPort, writeSection } from './procs.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const duration = Number(process.argv[2] ?? 5);
// 10,000 idle connections, or fewer when the open-file hard limit would not let HAProxy hold them
// (it reserves two descriptors per connection of its maxconn)
const hardLimit = Number(spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim()) || 1e9;
const REPS = Number(process.argv[3] ?? 3);
const IDLE_CONNS = Math.min(10000, Math.floor(hardLimit / 2) - 1000);
const MAXCONN = IDLE_CONNS + 500;

function limitOk(): boolean {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  return Number(r.stdout.trim()) >= Math.min(hardLimit, 2 * MAXCONN + 100) || r.stdout.trim() === 'unlimited';
}
if (!limitOk() && !process.env.PROXY_BENCH_REEXEC) {
  const r = spawnSync(
    'sh',
    ['-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
      env: { ...process.env, PROXY_BENCH_REEXEC: '1' },
    },
  );
  process.exit(r.status ?? 1);
}

for (const c of ['wrk', 'haproxy', 'taskset', 'openssl']) {
  if (spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0) {
    console.error(`needs ${c} on PATH`);
    process.exit(2);
  }
}
execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
// ours runs as installed: the bundle executed (its #! line gives node its flags), with this node first on PATH
const proxyBin = join(root, 'dist', 'runtime', 'hasetup-proxy.cjs');
const baseline = process.env.PROXY_BENCH_BASELINE || null;
type Who = 'haproxy' | 'ours' | 'before';
const contenders: Who[] = baseline ? ['haproxy', 'before', 'ours'] : ['haproxy', 'ours'];
const command = (who: Who, cfgFile: string): string[] =>
  who === 'haproxy' ? ['haproxy', '-db', '-f', cfgFile] : [who === 'before' ? baseline! : proxyBin, '-q', '-f', cfgFile];
process.env.PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
const cores = os.cpus().length;
const dir = mkdtempSync(join(os.tmpdir(), 'hasetup-proxy-bench-'));
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

// HTTPS: one RSA 2048 certificate (what `openssl req` makes by default), the same file for both proxies
const certFile = join(dir, 'bench.pem');

function config(port: number, backend: number, mode: 'http' | 'tcp', threads: number | null, tls = false): string {
  return `global
    maxconn ${MAXCONN}
${threads ? `    nbthread ${threads}\n` : ''}defaults
    mode ${mode}
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    ${mode === 'http' ? 'option http-keep-alive' : ''}
listen bench
    bind 127.0.0.1:${port}${tls ? ` ssl crt ${certFile} alpn http/1.1` : ''}
    server b1 127.0.0.1:${backend}
`;
}

interface WrkResult {
  rps: number;
  p99: number; // ms
  errors: number;
  requests: number;
  cpuUs: number; // proxy CPU time (user + system, all its processes) per request, in microseconds
}

function wrk(url: string, close: boolean, cpu: string | null, conns = 50, pid = 0, secs = duration): WrkResult {
  const args = [
    '-t',
    cpu === null ? String(Math.max(1, cores - 1)) : '1',
    '-c',
    String(conns),
    '-d',
    `${secs}s`,
    '--latency',
    ...(close ? ['-H', 'Connection: close'] : []),
    url,
  ];
  const argv = cpu === null ? ['wrk', ...args] : ['taskset', '-c', cpu, 'wrk', ...args];
  const t0 = pid ? cpuTicks(pid) : 0;
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  const ticks = pid ? cpuTicks(pid) - t0 : 0;
  const out = r.stdout;
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const m = /\s99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const p99 = m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : NaN;
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = (errs ? errs.slice(1).reduce((a, x) => a + Number(x), 0) : 0) + non2xx;
  return { rps, p99, errors, requests, cpuUs: requests ? (ticks * 1e6) / CLK_TCK / requests : NaN };
}

async function idleConnections(port: number, n: number): Promise<net.Socket[]> {
  const socks: net.Socket[] = [];
  const req = 'GET / HTTP/1.1\r\nHost: bench\r\n\r\n';
  let i = 0;
  const worker = async () => {
    while (i < n) {
      i++;
      await new Promise<void>((res) => {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => res());
        s.once('connect', () => s.write(req));
        s.once('data', () => {
          socks.push(s);
          res();
        });
      });
    }
  };
  await Promise.all(Array.from({ length: 100 }, worker));
  return socks;
}

interface Row {
  what: string;
  haproxy: string;
  ours: string;
  ratio: string;
  target: string;
  before?: string; // with a baseline: its figure, and ours / before
  vsBefore?: string;
}

async function main(): Promise<void> {
  const bport = await freePort();
  const backend = start(
    [process.execPath, '--import', 'tsx', join(root, 'bench', 'proxy', 'backend.ts'), String(bport)],
    cores > 1 ? '1' : null,
  );
  await waitPort(bport);
  const rows: Row[] = [];
  const pinned = cores > 1;
  const proxyCpu = pinned ? '0' : null;
  const loadCpu = pinned ? `1-${cores - 1}` : null;

  const only = process.env.PROXY_BENCH_ONLY ? process.env.PROXY_BENCH_ONLY.split(',') : null; // e.g. ka1,tls
  const runPair = async (
    label: string,
    mode: 'http' | 'tcp',
    close: boolean,
    threads: number | null,
    pin: boolean,
    tls = false,
    key = '',
  ) => {
    if (only && !only.includes(key)) return;
    const runs: Record<string, WrkResult[]> = { haproxy: [], ours: [], before: [] };
    // alternate the proxies, REPS runs each; each measure is the median of its runs
    for (let rep = 0; rep < REPS; rep++)
      for (const who of contenders) {
        const port = await freePort();
        const cfgFile = join(dir, `${who}-${mode}.cfg`);
        writeFileSync(cfgFile, config(port, bport, mode, who === 'haproxy' ? (threads ?? cores) : threads, tls));
        const p = start(command(who, cfgFile), pin ? proxyCpu : null);
        await waitPort(port);
        await sleep(300);
        const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}/`;
        wrk(url, close, pin ? loadCpu : null, 20, 0, 1); // warm-up
        const r = wrk(url, close, pin ? loadCpu : null, 50, p.pid!);
        await stop(p);
        runs[who].push(r);
      }
    const summary = (rs: WrkResult[]): WrkResult => ({
      rps: median(rs.map((x) => x.rps)),
      p99: median(rs.map((x) => x.p99)),
      cpuUs: median(rs.map((x) => x.cpuUs)),
      requests: rs.reduce((a, x) => a + x.requests, 0),
      errors: rs.reduce((a, x) => a + x.errors, 0),
    });
    const h = summary(runs.haproxy);
    const o = summary(runs.ours);
    const b = baseline ? summary(runs.before) : null;
    const vs = (x: number, y: number | undefined) => (y === undefined ? {} : { vsBefore: (x / y).toFixed(2) });
    const spread = (xs: number[]) => (xs.length ? ` (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)})` : '');
    const target = tls ? '>= 0.8' : mode === 'tcp' ? '>= 0.9' : close ? '>= 0.6' : '>= 0.8';
    rows.push({
      what: `${label}: ${tls && close ? 'new TLS handshakes/s (one request each)' : 'req/s'}`,
      haproxy: h.rps.toFixed(0),
      ours: o.rps.toFixed(0) + (b ? spread(runs.ours.map((x) => x.rps)) : ''),
      ratio: (o.rps / h.rps).toFixed(2),
      target,
      before: b ? b.rps.toFixed(0) + spread(runs.before.map((x) => x.rps)) : undefined,
      ...vs(o.rps, b?.rps),
    });
    rows.push({
      what: `${label}: p99 latency (ms)`,
      haproxy: h.p99.toFixed(2),
      ours: o.p99.toFixed(2),
      ratio: (o.p99 / h.p99).toFixed(2),
      target: '<= 1.5',
      before: b?.p99.toFixed(2),
      ...vs(o.p99, b?.p99),
    });
    rows.push({
      what: `${label}: proxy CPU per request (us)`,
      haproxy: h.cpuUs.toFixed(1),
      ours: o.cpuUs.toFixed(1),
      ratio: (o.cpuUs / h.cpuUs).toFixed(2),
      target: '',
      before: b?.cpuUs.toFixed(1),
      ...vs(o.cpuUs, b?.cpuUs),
    });
    rows.push({
      what: `${label}: errors (socket + non-2xx)`,
      haproxy: String(h.errors),
      ours: String(o.errors),
      ratio: '',
      target: '',
      before: b ? String(b.errors) : undefined,
    });
    console.log(
      rows
        .slice(-4)
        .map(
          (r) =>
            `${r.what}: haproxy ${r.haproxy} ours ${r.ours} ratio ${r.ratio}${b ? ` before ${r.before} ours/before ${r.vsBefore ?? ''}` : ''}`,
        )
        .join('\n'),
    );
  };

  // PROXY_BENCH_KEY=ec: an ECDSA P-256 certificate instead
  const keyArgs = process.env.PROXY_BENCH_KEY === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
  const mk = spawnSync(
    'openssl',
    ['req', '-x509', ...keyArgs, '-nodes', '-keyout', `${certFile}.key`, '-out', certFile, '-days', '2', '-subj', '/CN=bench.test'],
    { encoding: 'utf8' },
  );
  if (mk.status !== 0) throw new Error(`openssl: ${mk.stderr}`);
  writeFileSync(certFile, readFileSync(certFile, 'utf8') + readFileSync(`${certFile}.key`, 'utf8'));
  await runPair('one core, HTTP keep-alive', 'http', false, 1, pinned, false, 'ka1');
  await runPair('one core, HTTP Connection: close', 'http', true, 1, pinned, false, 'close1');
  await runPair('one core, mode tcp', 'tcp', false, 1, pinned, false, 'tcp1');
  await runPair(`all ${cores} cores, HTTP keep-alive`, 'http', false, null, false, false, 'ka');
  await runPair(`all ${cores} cores, HTTP Connection: close`, 'http', true, null, false, false, 'close');
  const keyName = process.env.PROXY_BENCH_KEY === 'ec' ? 'ECDSA P-256' : 'RSA 2048';
  await runPair(`one core, HTTPS keep-alive (TLS 1.3, ${keyName})`, 'http', false, 1, pinned, true, 'tls1');
  await runPair(`one core, HTTPS Connection: close (${keyName})`, 'http', true, 1, pinned, true, 'tlsnew1');
  if (only) {
    console.log(rows.map((r) => `| ${r.what} | ${r.haproxy} | ${r.before ?? ''} | ${r.ours} | ${r.vsBefore ?? r.ratio} |`).join('\n'));
    process.exit(0);
  }

  // memory: idle RSS, then 10,000 idle keep-alive client connections (one process, one core)
  for (const who of contenders) {
    const port = await freePort();
    const cfgFile = join(dir, `${who}-mem.cfg`);
    writeFileSync(cfgFile, config(port, bport, 'http', 1));
    const p = start(command(who, cfgFile), null);
    await waitPort(port);
    await sleep(1000);
    const idle = rssKb(p.pid!);
    const socks = await idleConnections(port, IDLE_CONNS);
    await sleep(1000);
    const loaded = rssKb(p.pid!);
    const per = ((loaded - idle) * 1024) / socks.length / 1024;
    for (const s of socks) s.destroy();
    await stop(p);
    memory[who] = { idle, per, n: socks.length };
  }
  // idle again after a load: what a proxy keeps once a busy spell is over (heap grown, pools filled)
  for (const who of contenders) {
    const port = await freePort();
    const cfgFile = join(dir, `${who}-after.cfg`);
    writeFileSync(cfgFile, config(port, bport, 'http', 1));
    const p = start(command(who, cfgFile), pinned ? proxyCpu : null);
    await waitPort(port);
    await sleep(300);
    wrk(`http://127.0.0.1:${port}/`, false, pinned ? loadCpu : null, 50, 0, Math.min(duration, 5));
    await sleep(2000);
    afterLoad[who] = rssKb(p.pid!);
    await stop(p);
  }
  rows.push({
    what: 'idle RSS (MB)',
    haproxy: (memory.haproxy.idle / 1024).toFixed(1),
    ours: (memory.ours.idle / 1024).toFixed(1),
    ratio: (memory.ours.idle / memory.haproxy.idle).toFixed(2),
    target: 'ours <= 60 MB',
  });
  rows.push({
    what: `RSS idle again, 2 s after ${Math.min(duration, 5)} s of keep-alive load (MB)`,
    haproxy: (afterLoad.haproxy / 1024).toFixed(1),
    ours: (afterLoad.ours / 1024).toFixed(1),
    ratio: (afterLoad.ours / afterLoad.haproxy).toFixed(2),
    target: 'ours <= 60 MB',
  });
  rows.push({
    what: `per idle keep-alive connection (KB, ${memory.ours.n} conns)`,
    haproxy: memory.haproxy.per.toFixed(1),
    ours: memory.ours.per.toFixed(1),
    ratio: (memory.ours.per / memory.haproxy.per).toFixed(2),
    target: 'ours <= 40 KB',
  });
  if (baseline) {
    const mb = (kb: number) => (kb / 1024).toFixed(1);
    rows[rows.length - 3] = {
      ...rows[rows.length - 3],
      before: mb(memory.before.idle),
      vsBefore: (memory.ours.idle / memory.before.idle).toFixed(2),
    };
    rows[rows.length - 2] = {
      ...rows[rows.length - 2],
      before: mb(afterLoad.before),
      vsBefore: (afterLoad.ours / afterLoad.before).toFixed(2),
    };
    rows[rows.length - 1] = {
      ...rows[rows.length - 1],
      before: memory.before.per.toFixed(1),
      vsBefore: (memory.ours.per / memory.before.per).toFixed(2),
    };
  }
  await stop(backend);

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const hv = spawnSync('haproxy', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0];
  const wv = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  const md = `# hasetup-proxy benchmark

- Date: ${new Date().toISOString()}
- Machine: ${cpu}, ${cores} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GB RAM, Linux ${os.release()}, Node ${process.version}
- Reference: ${hv}
- Load generator: ${(wv.stdout + wv.stderr).split('\n')[0].trim()}, ${duration} s per run, 50 connections (after a warm-up run)
- hasetup-proxy runs as installed: \`dist/runtime/hasetup-proxy.cjs\` executed, so its #! line's Node flags apply
  (\`${readFileSync(proxyBin, 'utf8').split('\n')[0]}\`).
- Backend: bench/proxy/backend.ts (raw \`net\`, fixed 13-byte body)${pinned ? ', on core 1' : ''}
- Command: \`node --import tsx bench/proxy/run.ts ${duration} ${REPS}\`
- "one core": the proxy pinned to core 0 (\`taskset -c 0\`, HAProxy \`nbthread 1\`, ours \`nbthread 1\`), wrk and the backend on the other cores.
  "all cores": nothing pinned, HAProxy \`nbthread ${cores}\`, ours its default (one worker thread per core).
- Each proxy ran ${REPS} times, alternating with the other; each figure is the median of its ${REPS} runs (errors: the
  sum). "proxy CPU per request" is user + system time of the proxy's processes (from /proc) divided
  by the requests served: it does not depend on how fast wrk and the backend are, so it is the steadiest comparison
  when the load generator shares the machine's cores (req/s and p99 also move with whatever else runs on the host:
  load average at the start of this run: ${os.loadavg()[0].toFixed(1)}).
- Ratio = ours / HAProxy (higher is better for req/s, lower for latency, CPU and memory).

| measure | HAProxy | hasetup-proxy | ratio | issue target |
|---|---:|---:|---:|---|
${rows.map((r) => `| ${r.what} | ${r.haproxy} | ${r.ours} | ${r.ratio} | ${r.target} |`).join('\n')}
`;
  if (baseline) {
    const ab = `A/B, ${new Date().toISOString()}, \`PROXY_BENCH_BASELINE=${baseline} node --import tsx bench/proxy/run.ts ${duration} ${REPS}\`, load average at start ${os.loadavg()[0].toFixed(1)}; req/s: median (min-max of the runs)\n\n| measure | HAProxy | before | after | after/before |\n|---|---:|---:|---:|---:|\n${rows.map((r) => `| ${r.what} | ${r.haproxy} | ${r.before ?? ''} | ${r.ours} | ${r.vsBefore ?? ''} |`).join('\n')}\n`;
    console.log(ab);
    process.exit(0);
  }
  writeSection(join(root, 'bench', 'results', 'proxy.md'), 'open-loop latency', null, md); // latency.ts's section kept
  console.log(md);
  process.exit(0);
}

const memory = {} as Record<Who, { idle: number; per: number; n: number }>;
const afterLoad = {} as Record<Who, number>;
void main();
