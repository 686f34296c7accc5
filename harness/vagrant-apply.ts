// `hasetup apply` on the Vagrant lab's VMs, run twice (the second run must change nothing), for the
// Vagrant end-to-end test (the common role: a short check that fits CI) and the Vagrant bench (the
// whole cluster, which under QEMU emulation takes ten minutes and more).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../cli/lab/config.ts';

export interface ApplyRound {
  round: 'first' | 'second';
  seconds: number;
  /** Per host: the counts `apply --json` reports. */
  hosts: Record<string, { ok: number; changed: number; failed: number; unreachable: number }>;
}

/**
 * Applies `inventory` twice with `args` (e.g. `--tags common`) and checks each run: every host in
 * `hostNames` reported, nothing failed or unreachable, the first run changed every host and the
 * second none. Throws with the end of the output on the first violation.
 */
export function applyTwice(inventory: string, hostNames: string[], args: string[] = []): ApplyRound[] {
  const rounds: ApplyRound[] = [];
  for (const round of ['first', 'second'] as const) {
    const t0 = Date.now();
    const a = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'cli', 'main.ts'), 'apply', inventory, ...args, '--json'], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 30 * 60_000,
      env: { ...process.env, CI: 'true' },
    });
    const seconds = (Date.now() - t0) / 1000;
    console.log(`# apply ${args.join(' ') || 'of the whole cluster'}, ${round} run: ${seconds.toFixed(0)} s`);
    if (a.status !== 0) throw new Error(`apply (${round} run) failed:\n${a.stdout.slice(-4000)}\n${a.stderr.slice(-3000)}`);
    const summary = JSON.parse(a.stdout) as { hosts: ApplyRound['hosts'] };
    const reported = Object.keys(summary.hosts).sort();
    if (reported.join() !== [...hostNames].sort().join()) throw new Error(`apply (${round} run) reported ${reported.join(', ')}`);
    for (const [name, r] of Object.entries(summary.hosts)) {
      if (r.failed !== 0 || r.unreachable !== 0)
        throw new Error(`${name}: ${r.failed} failed, ${r.unreachable} unreachable (${round} run)`);
      if (round === 'second' && r.changed !== 0) throw new Error(`${name}: the second run changed ${r.changed} tasks`);
      if (round === 'first' && r.changed === 0) throw new Error(`${name}: the first run changed nothing`);
    }
    rounds.push({ round, seconds, hosts: summary.hosts });
  }
  return rounds;
}

/** Asks the VIP over HTTP six times; returns the web nodes that answered ("served by webNN"). */
export function webNodesBehind(vip: string): Set<string> {
  const served = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const c = spawnSync('curl', ['-sS', '--max-time', '10', `http://${vip}/`], { encoding: 'utf8' });
    if (c.status !== 0) throw new Error(`curl http://${vip}/: ${c.stderr}`);
    const m = /served by (web\d+)/.exec(c.stdout);
    if (!m) throw new Error(`http://${vip}/ did not say which node served it: ${c.stdout.slice(0, 300)}`);
    served.add(m[1]);
  }
  return served;
}
