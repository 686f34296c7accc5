// What the proxy benchmarks (run.ts, latency.ts) share: ports, child processes and what /proc says of them.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type { Writable } from 'node:stream';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

export async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((res) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), res(true)));
      s.once('error', () => res(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`port ${port} never opened`);
}

/** Children started here, killed if the benchmark exits without stopping them. */
export const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

/** Starts a command, on the CPUs `cpu` (taskset's list) or unrestricted for null. */
export function start(cmd: string[], cpu: string | null, stdout: 'ignore' | 'pipe' | Writable = 'ignore'): ChildProcess {
  const argv = cpu === null ? cmd : ['taskset', '-c', cpu, ...cmd];
  const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', stdout, 'inherit'] });
  children.push(c);
  return c;
}

export async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null) return;
  const done = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(t);
}

export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** A process and its children (HAProxy's and ours are one process each; kept for a multi-process contender). */
export function withChildren(pid: number): number[] {
  const r = spawnSync('sh', ['-c', `ps -o pid= --ppid ${pid}`], { encoding: 'utf8' });
  return [
    pid,
    ...r.stdout
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => Number(l.trim())),
  ];
}

/** CPU ticks (user + system) used so far by a process and its children, all threads included. */
export function cpuTicks(pid: number): number {
  let total = 0;
  for (const p of withChildren(pid)) {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      total += Number(f[11]) + Number(f[12]);
    } catch {}
  }
  return total;
}

/** Resident memory of a process and its children, in KB. */
export function rssKb(pid: number): number {
  let total = 0;
  for (const p of withChildren(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]);
    } catch {}
  }
  return total;
}

export const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

/**
 * Writes `text` as the section `name` of a results file (between its two marker comments), leaving the rest of
 * the file as it is; `text` of null keeps the section and replaces the rest by `rest`. bench/results/proxy.md holds
 * the closed-loop table of run.ts and the open-loop section of latency.ts this way.
 */
export function writeSection(file: string, name: string, text: string | null, rest?: string): void {
  const begin = `<!-- ${name}: begin -->`;
  const end = `<!-- ${name}: end -->`;
  let old = '';
  try {
    old = readFileSync(file, 'utf8');
  } catch {}
  const i = old.indexOf(begin);
  const j = old.indexOf(end);
  const kept = i >= 0 && j > i ? old.slice(i, j + end.length) : '';
  const section = text === null ? kept : `${begin}\n${text.trim()}\n${end}`;
  const others = rest ?? (kept ? old.slice(0, i) + old.slice(j + end.length) : old);
  writeFileSync(file, `${others.trimEnd()}\n\n${section}\n`.trimStart());
}
