// Benchmark: the whole cluster on the Vagrant lab's five VMs (the long version of the Vagrant
// end-to-end test, which applies the common role only). `lab up --provider vagrant`, `hasetup apply`
// of the whole cluster twice (the second must change nothing), the VIP answering from each web node,
// `down`; the times go to the end of bench/results/vagrant.md with the machine and the date.
//
//   node --import tsx bench/vagrant/run.ts     (root; vagrant-libvirt; no Vagrant lab up in this checkout)
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { readPlan, vagrantDown, vagrantUp } from '../../cli/lab/vagrant.ts';
import { applyTwice, webNodesBehind } from '../../harness/vagrant-apply.ts';

const out = join(import.meta.dirname, '../results/vagrant.md');
const plan = readPlan();
const dir = mkdtempSync(join(tmpdir(), 'hasetup-vagrant-bench-'));
const inventory = join(dir, 'inventory.yaml');
const started = new Date();
const t0 = Date.now();
let up: number;
let rounds: ReturnType<typeof applyTwice>;
let served: string[];
let down: number;
try {
  await vagrantUp({ inventoryOut: inventory });
  up = (Date.now() - t0) / 1000;
  rounds = applyTwice(
    inventory,
    plan.hosts.map((h) => h.name),
  );
  served = [...webNodesBehind(plan.vip.split('/')[0])].sort();
  const webs = plan.hosts.filter((h) => h.group === 'web').map((h) => h.name);
  if (served.join() !== webs.join()) throw new Error(`the VIP answered from ${served.join(', ')}, not from ${webs.join(', ')}`);
} finally {
  const t1 = Date.now();
  await vagrantDown();
  down = (Date.now() - t1) / 1000;
  rmSync(dir, { recursive: true, force: true });
}

const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim()}`;
const [first, second] = rounds;
appendFileSync(
  out,
  `
## The whole cluster on the five VMs (bench/vagrant/run.ts)

- date: ${started.toISOString()}; machine: ${machine}; load average at the end ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}
- command: \`node --import tsx bench/vagrant/run.ts\`

| \`up\` | apply of the whole cluster, 1st run | 2nd run (no change) | VIP answered from | \`down\` | whole run |
| --- | --- | --- | --- | --- | --- |
| ${up.toFixed(0)} s | ${first.seconds.toFixed(0)} s | ${second.seconds.toFixed(0)} s | ${served.join(', ')} | ${down.toFixed(0)} s | ${((Date.now() - t0) / 1000).toFixed(0)} s |
`,
);
console.log(`bench/vagrant: written to ${out}`);
