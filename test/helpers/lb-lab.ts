// The load-balancing tier in the lab, for end-to-end tests: an inventory per engine, applies, the
// VIP's holders read from the LBs' own network namespaces (so that a host whose link is down can be
// read too), VIP watchers sampling every 20 ms, bounded loads through the VIP.
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, VIP } from '../../cli/lab/config.ts';
import { run } from '../../cli/lab/proc.ts';
import { loadInventory } from '../../inventory/load.ts';
import type { Lab } from './lab.ts';

export const HASETUP = join(repoRoot, 'bin', 'hasetup.js');
export const VIP_ADDRESS = VIP.split('/')[0];
export type EngineName = 'bundled' | 'haproxy';
export const UNITS: Record<EngineName, { proxy: string; vrrp: string }> = {
  bundled: { proxy: 'hasetup-proxy', vrrp: 'hasetup-vrrpd' },
  haproxy: { proxy: 'haproxy', vrrp: 'keepalived' },
};

export interface Recap {
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  skipped: number;
}

export interface ApplyResult {
  code: number;
  stdout: string;
  stderr: string;
  hosts: Record<string, Recap>;
  results: { host: string; role: string; task: string; type: string; status: string; message?: string }[];
  ms: number;
}

/** The lab's inventory with `runtime: ENGINE` (and a copy of its secrets file beside it, made first if missing). */
export async function inventoryFor(lab: Lab, engine: EngineName): Promise<string> {
  await loadInventory(lab.inventory);
  const file = lab.inventory.replace(/\.yaml$/, `-${engine}.yaml`);
  const text = readFileSync(lab.inventory, 'utf8').replace(/^runtime: .*\n/m, '');
  writeFileSync(file, text.replace(/^(cluster: .*\n)/m, `$1runtime: ${engine}\n`));
  copyFileSync(lab.inventory.replace(/\.yaml$/, '.secrets.yaml'), file.replace(/\.yaml$/, '.secrets.yaml'));
  return file;
}

export async function apply(lab: Lab, inventory: string, args: string[] = []): Promise<ApplyResult> {
  const t0 = Date.now();
  const r = await lab.exec([process.execPath, HASETUP, 'apply', inventory, '--json', ...args], { timeoutMs: 900_000 });
  let parsed: Pick<ApplyResult, 'hosts' | 'results'>;
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    throw new Error(`apply printed no JSON (exit ${r.code}): ${r.stdout.slice(-3000)} ${r.stderr.slice(-3000)}`);
  }
  return { ...r, ...parsed, ms: Date.now() - t0 };
}

/** The non-ok results, one line each, for assertion messages. */
export const notOk = (r: ApplyResult): string =>
  r.results
    .filter((x) => x.status !== 'ok')
    .map((x) => `${x.host} | ${x.role} | ${x.task}: ${x.status}${x.message ? ` (${x.message.split('\n')[0]})` : ''}`)
    .join('\n');

export const netnsOf = (lab: Lab, host: string): string => `${lab.config.prefix}${host}`;

/** The LBs that hold the VIP now, read in their own network namespaces. */
export async function vipHolders(lab: Lab, lbs = ['lb01', 'lb02']): Promise<string[]> {
  const out: string[] = [];
  for (const h of lbs) {
    const r = await run('ip', ['netns', 'exec', netnsOf(lab, h), 'ip', '-o', '-4', 'addr', 'show']);
    if (r.stdout.includes(` ${VIP_ADDRESS}/`)) out.push(h);
  }
  return out;
}

/** Waits (at most timeoutMs) until exactly `host` holds the VIP; the time it took (ms). */
export async function waitVipOn(lab: Lab, host: string, timeoutMs = 15_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const h = await vipHolders(lab);
    if (h.length === 1 && h[0] === host) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`the VIP is on ${h.join(' and ') || 'no LB'}, not on ${host} alone, after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The lab's cluster applied with `engine`, the VIP settled on lb01: the engine's inventory. */
export async function appliedCluster(lab: Lab, engine: EngineName): Promise<string> {
  const inv = await inventoryFor(lab, engine);
  const a = await apply(lab, inv);
  if (a.code !== 0) throw new Error(`apply (${engine}) failed: ${notOk(a)}`);
  await waitVipOn(lab, 'lb01', 30_000);
  return inv;
}

/**
 * Both LBs' proxy log lines (the last 10 minutes, 20 per LB) of the requests that did not end normally: a
 * termination state (httplog's 4 characters before the connection counts) that does not start with "--",
 * which says where each one stopped (the client, the server, the queue...). For a failed test's message.
 */
export async function proxyLogProblems(lab: Lab, engine: EngineName): Promise<string> {
  const out: string[] = [];
  for (const lb of ['lb01', 'lb02']) {
    const lines = await sh(
      lab,
      lb,
      `journalctl -q -o cat -u ${UNITS[engine].proxy} --since=-10min | grep -E ' ([A-Za-z].|-[A-Za-z])[A-Za-z-]{2} [0-9]+/[0-9]+/[0-9]+/[0-9]+/[0-9]+ ' | tail -n 20 || true`,
    );
    out.push(
      `${lb}'s proxy log, requests that did not end normally:`,
      ...lines
        .split('\n')
        .filter(Boolean)
        .map((l) => `  ${l}`),
    );
  }
  return out.join('\n');
}

export interface VipSample {
  t: number;
  holders: string[];
}

/** A process inside a host's network namespace (the lowest PID: the container's init). */
async function pidIn(lab: Lab, host: string): Promise<string> {
  const r = await run('ip', ['netns', 'pids', netnsOf(lab, host)]);
  const pid = r.stdout
    .split('\n')
    .map(Number)
    .filter((n) => n > 0)
    .sort((a, b) => a - b)[0];
  if (!pid) throw new Error(`no process in ${host}'s network namespace`);
  return String(pid);
}

/**
 * Samples which LBs hold the VIP every 20 ms for `ms`, both in the same instant
 * (test/helpers/vip-watch.ts); the samples where the holders changed.
 */
export async function watchVip(lab: Lab, ms: number, lbs = ['lb01', 'lb02']): Promise<{ stop(): Promise<VipSample[]> }> {
  const pairs = await Promise.all(lbs.map(async (h) => `${h}=${await pidIn(lab, h)}`));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'test/helpers/vip-watch.ts'), VIP_ADDRESS, String(ms), ...pairs],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (err += b));
  const done = new Promise<VipSample[]>((resolve, reject) =>
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out.trim()) as VipSample[]);
      } catch {
        reject(new Error(`vip-watch: exit ${code}: ${err}`));
      }
    }),
  );
  // its first sample taken before the caller goes on
  await new Promise((r) => setTimeout(r, 700));
  return {
    stop: () => {
      child.kill('SIGTERM');
      return done;
    },
  };
}

/** The samples (after `from`, epoch ms) where more than one LB held the VIP. */
export const bothHeld = (samples: VipSample[], from = 0): VipSample[] => samples.filter((s) => s.t >= from && s.holders.length > 1);

/** How long (ms) both LBs held the VIP from `from` on: each sample of two holders lasts until the next sample. */
export function bothHeldMs(samples: VipSample[], from = 0): number {
  let ms = 0;
  for (let i = 0; i < samples.length - 1; i++)
    if (samples[i].t >= from && samples[i].holders.length > 1) ms += samples[i + 1].t - samples[i].t;
  return ms;
}

export interface LoadSummary {
  total: number;
  failed: number;
  byNode: Record<string, number>;
  failures: { t: number; ms: number; kind: string; status: number; error?: string }[];
  lastByNode: Record<string, number>;
}

/**
 * Starts a bounded load through the VIP from the controller namespace; resolves when it ends. By
 * default plain HTTP; `https` gives the HTTPS port and the PEM file of the certificates to trust.
 */
export async function loadThroughVip(
  lab: Lab,
  rate: number,
  ms: number,
  count?: number,
  samplesFile?: string,
  https?: { port: number; caFile: string },
  /** A regular expression: its first group in each answer's body is recorded in samplesFile as `mark`. */
  mark?: string,
  /** A file whose creation ends the load before `ms` (see vip-load.ts). */
  stopFile?: string,
): Promise<LoadSummary> {
  const url = https ? `https://${VIP_ADDRESS}:${https.port}/` : `http://${VIP_ADDRESS}/`;
  const args = [
    join(repoRoot, 'test/helpers/vip-load.ts'),
    url,
    String(rate),
    String(ms),
    String(count ?? 0),
    ...(samplesFile ? [samplesFile] : []),
  ];
  const vars = [
    ...(https ? [`VIP_LOAD_CA=${https.caFile}`] : []),
    ...(mark ? [`VIP_LOAD_MARK=${mark}`] : []),
    ...(stopFile ? [`VIP_LOAD_STOP=${stopFile}`] : []),
  ];
  const env = vars.length ? ['env', ...vars] : [];
  const r = await lab.exec([...env, process.execPath, '--import', 'tsx', ...args], { timeoutMs: ms + 60_000 });
  if (r.code !== 0) throw new Error(`the load failed (exit ${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as LoadSummary;
}

/** Runs a shell command on a host; fails the test when it fails. */
export async function sh(lab: Lab, host: string, cmd: string): Promise<string> {
  const r = await lab.ssh(host, cmd);
  if (r.code !== 0) throw new Error(`${host}: ${cmd}: exit ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}
