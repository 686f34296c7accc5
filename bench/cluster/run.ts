// Benchmark: the whole cluster (every role, the LB tier included) applied by hasetup and by Debian's
// Ansible in the same run, on the same lab: the first apply on fresh hosts, and no-change applies.
//
// Ansible has no bundled engine, so its playbook installs HAProxy and keepalived; hasetup is measured
// with the same engine (`runtime: haproxy`) and, for the record, with its own (`runtime: bundled`).
// To make the two do the same work, the playbook puts on each host the very files hasetup wrote
// there (read back from a lab hasetup applied), with the same packages, services, users and SQL.
//
//   node --import tsx bench/cluster/run.ts [--runs 5]      (root; needs ansible-core; writes bench/results/cluster.md)
//
// Labs of its own (HASETUP_LAB_NAME=cbench), each engine and Ansible on fresh hosts; down at the end.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { TestLab, REPO, type Run } from '../../harness/lab-cli.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const lab = new TestLab('cbench');
const HOSTS = ['lb01', 'lb02', 'web01', 'web02', 'db01'];

/** The files hasetup's roles write, per group: read back from the hosts for the playbook. */
const FILES: Record<string, string[]> = {
  all: [
    '/etc/hostname',
    '/etc/hosts',
    '/etc/security/limits.d/60-hasetup.conf',
    '/etc/systemd/system.conf.d/60-hasetup-limits.conf',
    '/etc/nftables.conf',
  ],
  lb: [
    '/etc/haproxy/haproxy.cfg',
    '/etc/keepalived/keepalived.conf',
    '/etc/sysctl.d/60-hasetup-net.ipv4.ip_nonlocal_bind.conf',
    '/etc/sysctl.d/60-hasetup-net.core.somaxconn.conf',
    '/etc/sysctl.d/60-hasetup-net.ipv4.tcp_max_syn_backlog.conf',
  ],
  web: [
    '/etc/apache2/mods-available/mpm_event.conf',
    '/etc/apache2/conf-available/hasetup.conf',
    '/etc/apache2/sites-available/hasetup.conf',
    '/var/www/hasetup/index.html',
    '/var/www/hasetup/health.txt',
  ],
  db: ['/etc/mysql/mariadb.conf.d/60-hasetup.cnf'],
};
const groupOf = (h: string) => (h.startsWith('lb') ? 'lb' : h.startsWith('web') ? 'web' : 'db');

const recapOf = (r: Run) =>
  JSON.parse(r.stdout) as {
    hosts: Record<string, { changed: number; failed: number; unreachable: number }>;
    roundTrips: Record<string, number>;
  };

/** hasetup on fresh hosts: the first apply, then no-change applies. */
async function measureHasetup(engine: string): Promise<{ first: number; noChange: number[]; roundTrips: Record<string, number> }> {
  await lab.up();
  const inv = await lab.inventoryFor(engine);
  const first = await lab.apply(['--json'], inv);
  if (first.code !== 0) throw new Error(`hasetup first apply (${engine}) failed: ${first.stdout.slice(-3000)}`);
  const noChange: number[] = [];
  let roundTrips: Record<string, number> = {};
  for (let i = 0; i < runs; i++) {
    const r = await lab.apply(['--json'], inv);
    const j = recapOf(r);
    const changed = Object.values(j.hosts).reduce((a, h) => a + h.changed, 0);
    if (r.code !== 0 || changed) throw new Error(`hasetup no-change apply (${engine}) changed ${changed}`);
    noChange.push(r.ms);
    roundTrips = j.roundTrips;
  }
  return { first: first.ms, noChange, roundTrips };
}

/** The files hasetup wrote on each host, into dir/files/HOST/PATH. */
async function harvest(dir: string): Promise<void> {
  // the passwords the files and the SQL hold: those of this lab's secrets file
  copyFileSync(lab.inventory.replace(/\.yaml$/, '.secrets.yaml'), join(dir, 'secrets.yaml'));
  for (const h of HOSTS)
    for (const f of [...FILES.all, ...FILES[groupOf(h)]]) {
      const r = await lab.ssh(h, `cat ${f}`);
      if (r.code !== 0) throw new Error(`${h}: ${f}: ${r.stderr}`);
      const to = join(dir, 'files', h, f);
      mkdirSync(dirname(to), { recursive: true });
      writeFileSync(to, r.stdout);
    }
}

function playbook(
  dir: string,
  secrets: Record<string, string>,
  inv: { hosts: Record<string, { name: string; address: string }[]>; roles?: unknown },
): string {
  const f = (path: string, extra = '') => `      copy: { src: "${dir}/files/{{ inventory_hostname }}${path}", dest: ${path}${extra} }`;
  const webs = inv.hosts.web.map((w) => w.address);
  const appUsers = webs.map((a) => `'app'@'${a}'`);
  // the SQL hasetup's mysql role runs, each step checking first and printing CHANGED when it changed something
  const sql = [
    `SELECT IF(COUNT(*), 'CHANGED', '') FROM mysql.user WHERE user = '';`,
    `DELETE FROM mysql.global_priv WHERE user = '';`,
    `SELECT IF(COUNT(*), 'CHANGED', '') FROM information_schema.schemata WHERE schema_name = 'test';`,
    `DROP DATABASE IF EXISTS test;`,
    `SELECT IF(COUNT(*), '', 'CHANGED') FROM information_schema.schemata WHERE schema_name = 'app';`,
    `CREATE DATABASE IF NOT EXISTS app;`,
    ...appUsers.flatMap((u) => [
      `SELECT IF(COUNT(*), '', 'CHANGED') FROM mysql.user WHERE CONCAT("'", user, "'@'", host, "'") = "${u}";`,
      `CREATE USER IF NOT EXISTS ${u} IDENTIFIED BY '${secrets.mysql_app_password}';`,
      `GRANT ALL ON app.* TO ${u};`,
    ]),
  ].join(' ');
  return `- hosts: all
  gather_facts: true
  handlers:
    - { name: reexec systemd, command: systemctl daemon-reexec }
    - { name: apply sysctls, shell: "for f in ${FILES.lb.filter((p) => p.includes('sysctl')).join(' ')}; do sysctl -q -p $f; done" }
    - { name: load nftables, command: nft -f /etc/nftables.conf }
    - { name: reload haproxy, service: { name: haproxy, state: reloaded }, throttle: 1 }
    - { name: reload keepalived, service: { name: keepalived, state: reloaded }, throttle: 1 }
    - { name: restart apache2, service: { name: apache2, state: restarted } }
    - { name: reload apache2, service: { name: apache2, state: reloaded } }
    - { name: restart mariadb, service: { name: mariadb, state: restarted } }
  tasks:
    # common
    - name: hostname file
${f('/etc/hostname')}
    - { name: hostname, command: "hostname {{ inventory_hostname }}", when: ansible_hostname != inventory_hostname }
    - name: /etc/hosts
${f('/etc/hosts')}
    - { name: base packages, apt: { name: [chrony, curl, ca-certificates, iproute2, procps], state: present } }
    - name: sysctls (LBs)
      copy: { src: "${dir}/files/{{ inventory_hostname }}{{ item }}", dest: "{{ item }}" }
      loop: ${JSON.stringify(FILES.lb.filter((p) => p.includes('sysctl')))}
      when: "'lb' in group_names"
      notify: apply sysctls
    - name: nofile limit (login sessions)
${f('/etc/security/limits.d/60-hasetup.conf')}
    - { name: systemd drop-in folder, file: { path: /etc/systemd/system.conf.d, state: directory, mode: "0755" } }
    - name: nofile limit (services)
${f('/etc/systemd/system.conf.d/60-hasetup-limits.conf')}
      notify: reexec systemd
    # firewall
    - { name: nftables package, apt: { name: nftables, state: present } }
    - name: ruleset
${f('/etc/nftables.conf', ', mode: "0755", validate: "nft -c -f %s"')}
      notify: load nftables
    - { name: rules loaded at boot, service: { name: nftables, enabled: true } }
    # the LB tier (HAProxy and keepalived)
    - { name: haproxy and keepalived, apt: { name: [haproxy, keepalived, socat], state: present }, when: "'lb' in group_names" }
    - { name: keepalived_script user, user: { name: keepalived_script, system: true, shell: /usr/sbin/nologin, create_home: false }, when: "'lb' in group_names" }
    - name: haproxy.cfg
${f('/etc/haproxy/haproxy.cfg', ', group: haproxy, mode: "0640", validate: "haproxy -c -q -f %s"')}
      when: "'lb' in group_names"
      notify: reload haproxy
    - name: keepalived.conf
${f('/etc/keepalived/keepalived.conf', ', mode: "0640"')}
      when: "'lb' in group_names"
      notify: reload keepalived
    - { name: haproxy service, service: { name: haproxy, state: started, enabled: true }, when: "'lb' in group_names" }
    - { name: keepalived service, service: { name: keepalived, state: started, enabled: true }, when: "'lb' in group_names" }
    # apache
    - { name: apache2 package, apt: { name: [apache2, mariadb-client], state: present }, when: "'web' in group_names" }
    - name: event MPM sizing
${f('/etc/apache2/mods-available/mpm_event.conf')}
      when: "'web' in group_names"
      notify: restart apache2
    - name: modules
      shell: "a2dismod -q -f mpm_prefork mpm_worker >/dev/null 2>&1; for m in mpm_event remoteip headers status alias setenvif; do [ -e /etc/apache2/mods-enabled/$m.load ] || { a2enmod -q $m; echo CHANGED; }; done"
      register: mods
      changed_when: "'CHANGED' in mods.stdout"
      when: "'web' in group_names"
      notify: restart apache2
    - name: server settings
${f('/etc/apache2/conf-available/hasetup.conf')}
      when: "'web' in group_names"
      notify: reload apache2
    - { name: document root, file: { path: /var/www/hasetup, state: directory }, when: "'web' in group_names" }
    - name: node page and health URL
      copy: { src: "${dir}/files/{{ inventory_hostname }}{{ item }}", dest: "{{ item }}" }
      loop: [/var/www/hasetup/index.html, /var/www/hasetup/health.txt]
      when: "'web' in group_names"
    - name: site
${f('/etc/apache2/sites-available/hasetup.conf')}
      when: "'web' in group_names"
      notify: reload apache2
    - name: confs and sites
      shell: "[ -e /etc/apache2/conf-enabled/hasetup.conf ] || { a2enconf -q hasetup; echo CHANGED; }; for c in security serve-cgi-bin; do [ -e /etc/apache2/conf-enabled/$c.conf ] && { a2disconf -q $c; echo CHANGED; }; done; [ -e /etc/apache2/sites-enabled/hasetup.conf ] || { a2ensite -q hasetup; echo CHANGED; }; [ -e /etc/apache2/sites-enabled/000-default.conf ] && { a2dissite -q 000-default; echo CHANGED; }; true"
      register: a2
      changed_when: "'CHANGED' in a2.stdout"
      when: "'web' in group_names"
      notify: reload apache2
    - { name: apache2 service, service: { name: apache2, state: started, enabled: true }, when: "'web' in group_names" }
    # mysql
    - { name: option file folder, file: { path: /etc/mysql/mariadb.conf.d, state: directory }, when: "'db' in group_names" }
    - name: replication settings
${f('/etc/mysql/mariadb.conf.d/60-hasetup.cnf')}
      when: "'db' in group_names"
      notify: restart mariadb
    - { name: mariadb-server package, apt: { name: mariadb-server, state: present }, when: "'db' in group_names" }
    - { name: mariadb service, service: { name: mariadb, state: started, enabled: true }, when: "'db' in group_names" }
    - name: hardening, the application's database and its users
      command: mariadb -N -B -e "${sql.replace(/"/g, '\\"')}"
      register: sql
      changed_when: "'CHANGED' in sql.stdout"
      when: "'db' in group_names"
`;
}

async function measureAnsible(dir: string): Promise<{ first: number; noChange: number[]; version: string }> {
  await lab.up();
  for (const h of HOSTS) {
    const r = await lab.ssh(h, 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-apt >/dev/null 2>&1; command -v python3');
    if (r.code !== 0) throw new Error(`python3 on ${h}: ${r.stderr}`);
  }
  const inv = parse(readFileSync(lab.inventory, 'utf8'));
  const secrets = parse(readFileSync(join(dir, 'secrets.yaml'), 'utf8')) as Record<string, string>;
  const hostsIni = [
    '[lb]',
    ...inv.hosts.lb.map((h: { name: string; address: string }) => `${h.name} ansible_host=${h.address}`),
    '[web]',
    ...inv.hosts.web.map((h: { name: string; address: string }) => `${h.name} ansible_host=${h.address}`),
    '[db]',
    ...inv.hosts.db.map((h: { name: string; address: string }) => `${h.name} ansible_host=${h.address}`),
    '[all:vars]',
    'ansible_user=root',
    `ansible_ssh_private_key_file=${resolve(dirname(lab.inventory), inv.ssh.private_key)}`,
    'ansible_python_interpreter=/usr/bin/python3',
  ];
  writeFileSync(join(dir, 'hosts.ini'), hostsIni.join('\n') + '\n');
  writeFileSync(join(dir, 'play.yml'), playbook(dir, secrets, inv));
  const env = { ANSIBLE_HOST_KEY_CHECKING: 'False', ANSIBLE_PIPELINING: 'True', ANSIBLE_FORKS: '5', ANSIBLE_NOCOLOR: '1' };
  const ansible = () =>
    lab.exec([
      'env',
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      'ansible-playbook',
      '-i',
      join(dir, 'hosts.ini'),
      join(dir, 'play.yml'),
    ]);
  const first = await ansible();
  if (first.code !== 0) throw new Error(`ansible first run failed: ${first.stdout.slice(-4000)}`);
  const noChange: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await ansible();
    if (r.code !== 0 || /changed=[1-9]/.test(r.stdout)) throw new Error(`ansible no-change run changed: ${r.stdout.slice(-3000)}`);
    noChange.push(r.ms);
  }
  return { first: first.ms, noChange, version: execFileSync('ansible', ['--version'], { encoding: 'utf8' }).split('\n')[0] };
}

// outside the lab's folder: `lab down` removes that
const dir = mkdtempSync(join(tmpdir(), 'hasetup-cbench-'));
let ours: Awaited<ReturnType<typeof measureHasetup>>;
let bundled: Awaited<ReturnType<typeof measureHasetup>>;
let theirs: Awaited<ReturnType<typeof measureAnsible>>;
try {
  ours = await measureHasetup('haproxy');
  await harvest(dir);
  await lab.down();
  bundled = await measureHasetup('bundled');
  await lab.down();
  theirs = await measureAnsible(dir);
} finally {
  await lab.down().catch(() => {});
}
rmSync(dir, { recursive: true, force: true });

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const md = `# Cluster benchmark: the whole cluster, hasetup against Ansible

- machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim()}
- date: ${new Date().toISOString()}
- command: \`node --import tsx bench/cluster/run.ts --runs ${runs}\` (as root)
- the five lab hosts (systemd-nspawn, packages from the lab's local repository); each first apply on fresh hosts; wall time of the whole command; no-change: median of ${runs} runs
- Ansible: ${theirs.version}, pipelining on, 5 forks, a playbook putting the same files (read back from the hosts hasetup applied), packages, services, users and SQL as hasetup's roles with \`runtime: haproxy\`; python3-apt installed on the hosts first (Ansible needs it; hasetup does not), not timed

| | first apply | no-change apply (median) | no-change runs (ms) |
| --- | ---: | ---: | --- |
| hasetup, runtime: haproxy | ${s(ours.first)} | ${ours.noChange.length ? `${median(ours.noChange)} ms` : '-'} | ${ours.noChange.join(', ')} |
| Ansible, HAProxy and keepalived | ${s(theirs.first)} | ${median(theirs.noChange)} ms | ${theirs.noChange.join(', ')} |
| hasetup, runtime: bundled | ${s(bundled.first)} | ${median(bundled.noChange)} ms | ${bundled.noChange.join(', ')} |

Ratios (hasetup with the same engine): first apply **${(theirs.first / ours.first).toFixed(1)}×** faster (goal: at least 2×), no-change apply **${(median(theirs.noChange) / median(ours.noChange)).toFixed(1)}×** faster (goal: at least 10×).

SSH round trips per host of a no-change apply (one connection per host: facts, one probe batch per role, the record of the run): ${Object.entries(
  ours.roundTrips,
)
  .map(([h, n]) => `${h} ${n}`)
  .join(', ')} (runtime: haproxy); ${Object.entries(bundled.roundTrips)
  .map(([h, n]) => `${h} ${n}`)
  .join(', ')} (bundled).
`;
mkdirSync(join(REPO, 'bench/results'), { recursive: true });
writeFileSync(join(REPO, 'bench/results/cluster.md'), md);
process.stdout.write(md);
