// Benchmark: a no-change `hasetup apply` of the common role on the five lab hosts, against the
// anchor measured in the same run: Debian's Ansible running an equivalent playbook (same tasks,
// pipelining on) on the same hosts. Also the SSH round trips per host per task, and the no-change
// apply of the whole cluster (every role).
//
//   node --import tsx bench/engine/run.ts [--runs N]      (root; writes bench/results/engine.md)
//
// It brings up a lab of its own (HASETUP_LAB_NAME=bench), installs python3 on its hosts for
// Ansible (from the lab's local repository), and takes the lab down at the end.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { cpus, totalmem, hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { TestLab, REPO } from '../../harness/lab-cli.ts';
import { ROLE_NAMES } from '../../roles/index.ts';

const { values: argv } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(argv.runs) || 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export function ansibleFiles(dir: string, inventoryFile: string): { inv: string; play: string } {
  const inv = parse(readFileSync(inventoryFile, 'utf8'));
  const key = inv.ssh.private_key as string;
  const lines = ['[lb]'];
  const all: { name: string; address: string }[] = [];
  for (const g of ['lb', 'web', 'db']) {
    if (g !== 'lb') lines.push(`[${g}]`);
    for (const h of inv.hosts[g]) {
      lines.push(`${h.name} ansible_host=${h.address}`);
      all.push(h);
    }
  }
  lines.push('[all:vars]', 'ansible_user=root', `ansible_ssh_private_key_file=${key}`, 'ansible_python_interpreter=/usr/bin/python3');
  const hostsFile = ['127.0.0.1 localhost', ...all.map((h) => `${h.address} ${h.name}`)].join('\\n');
  const play = `- hosts: all
  gather_facts: true
  tasks:
    - name: hostname file
      copy: { dest: /etc/hostname, content: "{{ inventory_hostname }}\\n" }
    - name: hostname
      command: hostname {{ inventory_hostname }}
      when: ansible_hostname != inventory_hostname
    - name: /etc/hosts
      copy: { dest: /etc/hosts, content: "${hostsFile}\\n" }
    - name: base packages
      apt: { name: [chrony, curl, ca-certificates, iproute2, procps], state: present }
    - name: sysctls (persisted; ansible-core alone has no sysctl module)
      copy: { dest: /etc/sysctl.d/60-ansible.conf, content: "net.ipv4.ip_nonlocal_bind = 1\\nnet.core.somaxconn = 4096\\nnet.ipv4.tcp_max_syn_backlog = 4096\\n" }
      when: "'lb' in group_names"
      notify: apply sysctls
    - name: nofile limit (login sessions)
      copy: { dest: /etc/security/limits.d/60-ansible.conf, content: "* soft nofile 65536\\n* hard nofile 65536\\n" }
    - name: systemd drop-in folder
      file: { path: /etc/systemd/system.conf.d, state: directory, mode: "0755" }
    - name: nofile limit (services)
      copy: { dest: /etc/systemd/system.conf.d/60-ansible-limits.conf, content: "[Manager]\\nDefaultLimitNOFILE=65536\\n" }
      notify: reexec systemd
  handlers:
    - name: apply sysctls
      command: sysctl -p /etc/sysctl.d/60-ansible.conf
    - name: reexec systemd
      command: systemctl daemon-reexec
`;
  writeFileSync(join(dir, 'hosts.ini'), lines.join('\n') + '\n');
  writeFileSync(join(dir, 'play.yml'), play);
  return { inv: join(dir, 'hosts.ini'), play: join(dir, 'play.yml') };
}

const lab = new TestLab('bench');
await lab.up();
try {
  // hasetup: converge once, then no-change runs.
  const first = await lab.apply(['--tags', 'common', '--json']);
  if (first.code !== 0) throw new Error(`first apply failed: ${first.stdout}${first.stderr}`);
  const ours: number[] = [];
  let roundTrips: Record<string, number> = {};
  let tasks: Record<string, number> = {};
  for (let i = 0; i < runs; i++) {
    const r = await lab.apply(['--tags', 'common', '--json']);
    const j = JSON.parse(r.stdout);
    const changed = Object.values(j.hosts as Record<string, { changed: number }>).reduce((a, h) => a + h.changed, 0);
    if (r.code !== 0 || changed !== 0) throw new Error(`no-change apply changed ${changed}: ${r.stdout}`);
    ours.push(r.ms);
    roundTrips = j.roundTrips;
    tasks = Object.fromEntries(Object.entries(j.hosts as Record<string, { ok: number }>).map(([h, x]) => [h, x.ok]));
  }

  // The whole cluster (every role): converge, then no-change runs (issue target: under 3 s).
  const full = await lab.apply(['--json']);
  if (full.code !== 0) throw new Error(`first full apply failed: ${full.stdout}${full.stderr}`);
  const fullRuns: number[] = [];
  let fullRoundTrips: Record<string, number> = {};
  for (let i = 0; i < runs; i++) {
    const r = await lab.apply(['--json']);
    const j = JSON.parse(r.stdout);
    const changed = Object.values(j.hosts as Record<string, { changed: number }>).reduce((a, h) => a + h.changed, 0);
    if (r.code !== 0 || changed !== 0) throw new Error(`no-change full apply changed ${changed}: ${r.stdout}`);
    fullRuns.push(r.ms);
    fullRoundTrips = j.roundTrips;
  }

  // Ansible, same hosts, same run: python3 on the hosts first (Ansible needs it; hasetup does not).
  for (const h of ['lb01', 'lb02', 'web01', 'web02', 'db01']) {
    const r = await lab.ssh(h, 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-apt >/dev/null 2>&1; command -v python3');
    if (r.code !== 0) throw new Error(`python3 on ${h}: ${r.stdout}${r.stderr}`);
  }
  const a = ansibleFiles(lab.dir, lab.inventory);
  const env = { ANSIBLE_HOST_KEY_CHECKING: 'False', ANSIBLE_PIPELINING: 'True', ANSIBLE_FORKS: '5', ANSIBLE_NOCOLOR: '1' };
  const ansible = (): Promise<{ code: number; stdout: string; stderr: string; ms: number }> =>
    lab.exec(['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'ansible-playbook', '-i', a.inv, a.play]);
  const af = await ansible();
  if (af.code !== 0) throw new Error(`ansible first run failed: ${af.stdout}${af.stderr}`);
  const theirs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await ansible();
    if (r.code !== 0 || !/changed=0 /.test(r.stdout) || /changed=[1-9]/.test(r.stdout))
      throw new Error(`ansible no-change run changed: ${r.stdout}`);
    theirs.push(r.ms);
  }
  const ansibleVersion = execFileSync('ansible', ['--version'], { encoding: 'utf8' }).split('\n')[0];

  const mo = median(ours);
  const ma = median(theirs);
  const perTask = Object.entries(roundTrips).map(
    ([h, n]) => `${h}: ${n} round trips for ${tasks[h]} tasks (${(n / tasks[h]).toFixed(2)} per task)`,
  );
  const md = `# Engine benchmark: no-change apply of the common role on the five lab hosts

- machine: ${hostname()}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim()}
- date: ${new Date().toISOString()}
- command: \`node --import tsx bench/engine/run.ts --runs ${runs}\` (as root)
- both tools run in the lab's controller namespace against the same five systemd-nspawn hosts, one after the other; wall time of the whole command (process start included), median of ${runs} no-change runs after one converging run

| tool | median wall time | runs (ms) |
| --- | --- | --- |
| hasetup apply --tags common | ${mo} ms | ${ours.join(', ')} |
| ${ansibleVersion}, equivalent playbook, pipelining on, 5 forks | ${ma} ms | ${theirs.join(', ')} |

Ratio: hasetup is **${(ma / mo).toFixed(1)}×** faster than Ansible on a no-change run (target: at least 10×).

SSH round trips per host (facts + one probe batch per role, one connection per host):
${perTask.map((l) => `- ${l}`).join('\n')}

## The whole cluster: no-change apply of every role (${ROLE_NAMES.join(', ')})

First (converging) run: ${full.ms} ms. No-change runs: median **${median(fullRuns)} ms** (${fullRuns.join(', ')}); target: under 3 s.
Round trips per host: ${Object.entries(fullRoundTrips)
    .map(([h, n]) => `${h} ${n}`)
    .join(', ')}.
`;
  mkdirSync(join(REPO, 'bench/results'), { recursive: true });
  writeFileSync(join(REPO, 'bench/results/engine.md'), md);
  process.stdout.write(md);
} finally {
  await lab.down();
}
