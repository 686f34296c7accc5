// Benchmark of the nspawn lab: cold `lab up` (empty cache directory), warm `lab up` (cache filled),
// `lab down`, and the memory of each idle host. Each time is also given as a ratio against a
// reference measured in the same run: the boot of one bare host (namespace, overlay, nspawn, until
// sshd answers) for the warm case, a plain minbase mmdebstrap for the cold one.
//
//   node --import tsx bench/lab/lab-bench.ts [--runs 3] [--out bench/results/lab.md]
//
// Needs root and Linux; downloads the base image's and the repository's packages twice (cold case
// and reference) from the machine's configured Debian mirror.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { hostsFor, labConfig, type LabConfig } from '../../cli/lab/config.ts';
import { cacheKeys, ensureBaseImage, ensureRepo, machineAptOptions, machineAptSources, sourcesListText } from '../../cli/lab/image.ts';
import { cgroupDirs, ensureLabKey, launchHost, prepareUpper, hostDir, knownHostsPath } from '../../cli/lab/hosts.ts';
import { hostMemory, labDown, labSsh, labUp, probeSsh, teardown } from '../../cli/lab/lab.ts';
import { createBridge, createCtl, createNode, hostNs } from '../../cli/lab/net.ts';
import { runOk, sleep } from '../../cli/lab/proc.ts';
import { readState, writeState, type LabState } from '../../cli/lab/state.ts';
import { parseArgs } from 'node:util';

const { values: argv } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, out: { type: 'string', default: join(import.meta.dirname, '../results/lab.md') } },
});
const runs = Number(argv.runs);
const out = argv.out;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [performance.now() - t0, r];
}

/** Reference: one bare host, booted the lab's way, until its sshd answers; then removed. */
async function oneHostBoot(cfg: LabConfig, baseDir: string, repoDir: string): Promise<number> {
  const host = hostsFor()[0];
  const state: LabState = {
    version: 1,
    name: cfg.name,
    phase: 'starting',
    replica: false,
    netns: [],
    cgroups: [],
    launchers: [],
    dirs: [],
    baseDir,
    repoDir,
    inventory: '',
    helperOwned: false,
    startedAt: new Date().toISOString(),
  };
  const record = (ns: string) => state.netns.push(ns);
  try {
    await createBridge(cfg, record);
    await createCtl(cfg, record);
    const pub = readFileSync(`${await ensureLabKey(cfg)}.pub`, 'utf8');
    const t0 = performance.now();
    await createNode(cfg, hostNs(cfg, host.name), host.name, host.address, record);
    state.dirs.push(hostDir(cfg, host.name));
    writeFileSync(knownHostsPath(cfg), (await prepareUpper(cfg, host, [host], pub)) + '\n');
    state.cgroups.push(...cgroupDirs(cfg, host.name));
    state.launchers.push(launchHost(cfg, host, baseDir, repoDir));
    const ok = await probeSsh(cfg, [host.address], 120_000);
    if (!ok[host.address]) throw new Error('the reference host did not answer');
    const t = performance.now() - t0;
    writeState(cfg, state);
    return t;
  } finally {
    await teardown(cfg, state);
  }
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'hsl-bench-'));
  const cacheDir = join(work, 'cache');
  const cfg = labConfig({ name: `bench${process.pid}`, cacheDir, stateDir: join(work, 'state') });
  const refCfg = labConfig({ name: `bref${process.pid}`, cacheDir, stateDir: join(work, 'ref-state') });
  const inventory = join(work, 'inventory.yaml');
  const lines: string[] = [];
  try {
    // cold reference: a plain minbase debootstrap from the same mirror
    const sources = machineAptSources();
    writeFileSync(join(work, 'sources.list'), sourcesListText(sources));
    writeFileSync(join(work, 'apt.conf'), (await machineAptOptions()) + '\n');
    const [refCold] = await timed(() =>
      runOk('mmdebstrap', [
        '--variant=minbase',
        '--mode=root',
        `--aptopt=${join(work, 'apt.conf')}`,
        'bookworm',
        join(work, 'minbase'),
        join(work, 'sources.list'),
      ]),
    );
    rmSync(join(work, 'minbase'), { recursive: true, force: true });

    // cold: empty cache
    const [cold, coldUp] = await timed(() => labUp(cfg, { inventory }));
    const [downMs] = await timed(() => labDown(cfg));
    const keys = cacheKeys(sources);
    const baseDir = await ensureBaseImage(cfg, sources, keys);
    const repoDir = await ensureRepo(cfg, sources, keys, baseDir);
    console.log(`cold up ${secs(cold)} (started: ${coldUp.started}), down ${secs(downMs)}`);

    // warm runs, each with a reference boot of one bare host just before it
    const warm: number[] = [];
    const refs: number[] = [];
    const downs: number[] = [downMs];
    const mem: number[][] = [];
    for (let i = 0; i < runs; i++) {
      refs.push(await oneHostBoot(refCfg, baseDir, repoDir));
      const [w] = await timed(() => labUp(cfg, { inventory }));
      warm.push(w);
      // idle: booted completely, then left alone
      const state = readState(cfg)!;
      for (const h of hostsFor({ replica: state.replica }))
        await labSsh(cfg, h.address, 'systemctl is-system-running --wait >/dev/null; true');
      await sleep(10_000);
      mem.push(hostsFor().map((h) => hostMemory(cfg, h.name)));
      const upper = execFileSync('du', ['-sm', join(cfg.stateDir, 'hosts', 'web01', 'upper')], { encoding: 'utf8' }).split('\t')[0];
      console.log(`warm up ${secs(w)}; one-host reference ${secs(refs[i])}; web01 upper dir ${upper} MB`);
      const [d] = await timed(() => labDown(cfg));
      downs.push(d);
    }
    const memPerHost = mem.flat();
    const memMed = median(memPerHost) / 1048576;
    const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const cpu = cpus()[0]?.model ?? 'unknown CPU';
    lines.push(
      '# Lab benchmark (nspawn)',
      '',
      `Machine: ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}; load average at the end ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}.`,
      `Date: ${date}. Command: \`node --import tsx bench/lab/lab-bench.ts --runs ${runs}\` (as root).`,
      '',
      '| what | time | reference (same run) | ratio | target |',
      '| --- | --- | --- | --- | --- |',
      `| cold \`lab up\` (empty cache: base image, local repository, 5 hosts) | ${secs(cold)} | plain minbase mmdebstrap ${secs(refCold)} | ${(cold / refCold).toFixed(2)} | < 180 s |`,
      `| warm \`lab up\` (median of ${runs}: 5 hosts booted, sshd answering, logged in, apt lists) | ${secs(median(warm))} | one bare host booted to sshd ${secs(median(refs))} | ${(median(warm) / median(refs)).toFixed(2)} | < 30 s |`,
      `| \`lab down\` (median of ${downs.length}) | ${secs(median(downs))} | | | |`,
      '',
      `Memory per idle host (proportional set size of every process in the host's cgroup, 10 s after \`systemctl is-system-running --wait\`): median ${memMed.toFixed(1)} MiB, min ${(Math.min(...memPerHost) / 1048576).toFixed(1)}, max ${(Math.max(...memPerHost) / 1048576).toFixed(1)} over ${memPerHost.length} samples (target about 20 MB).`,
      '',
      `Warm runs: ${warm.map(secs).join(', ')}; one-host references: ${refs.map(secs).join(', ')}.`,
      '',
    );
    writeFileSync(out, lines.join('\n'));
    console.log(lines.join('\n'));
  } finally {
    await labDown(cfg).catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
