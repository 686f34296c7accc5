// The wizard's course, driven by a script in place of the terminal (offline: no host contacted):
// which questions come, in which order, a refused answer asked again, changing an answer, what is
// written (and that it loads), and that an interrupted or abandoned run writes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory } from '../../../inventory/load.ts';
import { checkFlags, type Given } from '../../../cli/init/answers.ts';
import type { Choice, InputQuestion, Prompter, SelectQuestion } from '../../../cli/init/prompter.ts';
import { Wizard, type WizardOptions } from '../../../cli/init/wizard.ts';
import { UserError } from '../../../cli/errors.ts';

const work = mkdtempSync(join(tmpdir(), 'hasetup-init-wizard-'));
test.after(() => rmSync(work, { recursive: true, force: true }));
const keysDir = join(work, 'ssh');
mkdirSync(keysDir);
writeFileSync(join(keysDir, 'id_ed25519'), '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n');
writeFileSync(join(keysDir, 'id_ed25519.pub'), 'ssh-ed25519 AAAA me@laptop\n');
const KEY = join(keysDir, 'id_ed25519');

type Step = [RegExp, string];

/** A prompter that answers from a script: each step names the question it expects ('' takes the default). */
class Script implements Prompter {
  readonly asked: string[] = [];
  readonly refused: { message: string; value: string; why: string }[] = [];
  readonly notes: string[] = [];
  constructor(private readonly steps: Step[]) {}
  private next(message: string): string {
    const s = this.steps.shift();
    assert.ok(s, `no answer scripted for "${message}"`);
    assert.match(message, s[0], `asked "${message}", the script expected ${s[0]}`);
    this.asked.push(message);
    return s[1];
  }
  get left(): number {
    return this.steps.length;
  }
  async input(q: InputQuestion): Promise<string> {
    for (;;) {
      const a = this.next(q.message);
      const v = a === '' ? (q.default ?? '') : a;
      const verdict = q.validate ? await q.validate(v) : true;
      if (verdict === true) return v;
      this.refused.push({ message: q.message, value: v, why: verdict });
    }
  }
  async select<T>(q: SelectQuestion<T>): Promise<T> {
    const a = this.next(q.message);
    if (a === '') return q.default ?? q.choices[0].value;
    const c = q.choices.find((x: Choice<T>) => String(x.value) === a || x.name.startsWith(a));
    assert.ok(c, `no choice "${a}" in ${q.choices.map((x) => x.name).join(' | ')}`);
    return c.value;
  }
  async confirm(q: { message: string; default: boolean }): Promise<boolean> {
    const a = this.next(q.message);
    return a === '' ? q.default : a === 'y';
  }
  note(line: string): void {
    this.notes.push(line);
  }
}

/** A prompter that fails the test when asked anything. */
const mute = new Script([]);

function dir(name: string): string {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  return d;
}

function wizard(d: string, prompter: Prompter, over: Partial<WizardOptions> = {}): { w: Wizard; out: () => string } {
  let out = '';
  const w = new Wizard({
    file: join(d, 'inventory.yaml'),
    given: { hosts: {} },
    tty: true,
    yes: false,
    offline: true,
    force: false,
    plain: true,
    prompter,
    keysDir,
    resolve: async () => {
      throw Object.assign(new Error('no resolver here'), { code: 'ENOTFOUND' });
    },
    out: (s) => (out += s),
    ...over,
  });
  return { w, out: () => out };
}

const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);

test('every question in order, a wrong address refused and asked again, an answer changed, then written', async () => {
  const d = dir('full');
  const s = new Script([
    [/^Cluster name$/, 'shop'],
    [/^Topology$/, 'other'],
    [/^Number of web nodes$/, '3'],
    [/^Add a MySQL replica\?$/, 'y'],
    [/^Name of load balancer 1$/, ''],
    [/^Address of lb01$/, '10.20.0.300'],
    [/^Address of lb01$/, '10.20.0.11'],
    [/^Name of load balancer 2$/, 'lb01'],
    [/^Name of load balancer 2$/, ''],
    [/^Address of lb02$/, ''], // the default: the next address, 10.20.0.12
    [/^Name of web node 1$/, ''],
    [/^Address of web01$/, '10.20.0.12'],
    [/^Address of web01$/, '10.20.0.21'],
    [/^Name of web node 2$/, ''],
    [/^Address of web02$/, ''],
    [/^Name of web node 3$/, ''],
    [/^Address of web03$/, ''],
    [/^Name of the MySQL primary$/, ''],
    [/^Address of db01$/, '10.20.0.31'],
    [/^Name of MySQL replica 1$/, ''],
    [/^Address of db02$/, ''],
    [/^How does hasetup log in/, 'sudo'],
    [/^SSH user$/, 'root'],
    [/^SSH user$/, 'deploy'],
    [/^SSH port$/, '2222'],
    [/^SSH private key$/, ''],
    [/^Interface on the load balancers$/, 'ens3'],
    [/^Virtual IP/, '10.21.0.100/24'],
    [/^Virtual IP/, ''],
    [/^VRRP adverts/, 'unicast'],
    [/^Admin networks/, '10.20.0.5/32, 192.168.50.0/24'],
    [/^Load-balancer software$/, 'haproxy'],
    [/^What now\?$/, 'change'],
    [/^Which answer\?$/, 'cluster'],
    [/^Cluster name$/, 'shop-eu'],
    [/^What now\?$/, 'write'],
  ]);
  const { w, out } = wizard(d, s);
  const written = await w.run();
  assert.equal(s.left, 0);
  assert.deepEqual(
    s.refused.map((r) => [r.message, r.value, r.why]),
    [
      ['Address of lb01', '10.20.0.300', 'expected an IPv4 address like 10.0.0.1 (no /prefix)'],
      ['Name of load balancer 2', 'lb01', '"lb01" is already the name of load balancer 1: host names are unique in the cluster'],
      [
        'Address of web01',
        '10.20.0.12',
        '10.20.0.12 is already the address of load balancer 2 (lb02): addresses are unique in the cluster',
      ],
      ['SSH user', 'root', 'root logs in without sudo: choose "as root" instead'],
      [
        'Virtual IP (address/prefix)',
        '10.21.0.100/24',
        "10.21.0.100/24 is outside the subnet of load balancer lb01 (10.20.0.11): the VIP must be in the load balancers' subnet",
      ],
    ],
  );
  assert.ok(written);
  const file = join(d, 'inventory.yaml');
  assert.equal(mode(file), '644');
  assert.equal(mode(join(d, 'inventory.secrets.yaml')), '600');
  const text = readFileSync(file, 'utf8');
  assert.match(text, /^# Written by `hasetup init` on \d{4}-\d\d-\d\d/);
  assert.deepEqual(
    text
      .split('\n')
      .filter((l) => /^[a-z]/.test(l))
      .map((l) => l.split(':')[0]),
    ['cluster', 'vip', 'vrrp', 'runtime', 'ssh', 'hosts', 'roles'],
    'top-level keys in the order of inventory/README.md',
  );
  const inv = await loadInventory(file);
  assert.equal(inv.cluster, 'shop-eu');
  assert.deepEqual(
    inv.hosts.map((h) => [h.name, h.address, h.group]),
    [
      ['lb01', '10.20.0.11', 'lb'],
      ['lb02', '10.20.0.12', 'lb'],
      ['web01', '10.20.0.21', 'web'],
      ['web02', '10.20.0.22', 'web'],
      ['web03', '10.20.0.23', 'web'],
      ['db01', '10.20.0.31', 'db'],
      ['db02', '10.20.0.32', 'db'],
    ],
  );
  assert.deepEqual(inv.hosts[0].ssh, {
    user: 'deploy',
    port: 2222,
    become: true,
    connectTimeout: 10,
    knownHosts: join(d, '.hasetup/known_hosts'),
    host: '10.20.0.11',
    privateKey: KEY,
  });
  assert.deepEqual(inv.vip, { address: '10.20.0.100', prefix: 24, interface: 'ens3' });
  assert.equal(inv.vrrp.unicast, true);
  assert.equal(inv.runtime, 'haproxy');
  assert.deepEqual(inv.roles.firewall.adminCidrs, ['10.20.0.5/32', '192.168.50.0/24']);
  assert.equal(inv.secrets.vrrpAuthPass.length, 8);
  assert.match(inv.secrets.mysqlRootPassword, /^[A-Za-z0-9]{24}$/);
  assert.doesNotMatch(out(), new RegExp(inv.secrets.mysqlRootPassword), 'no secret in the output');
  assert.match(out(), /Host checks skipped \(--offline\)/);
  assert.equal(existsSync(join(d, '.hasetup')), false, 'offline: no host key to record');
});

test('Ctrl-C at a prompt: exit 130 and nothing written', async () => {
  const d = dir('interrupted');
  const interrupting: Prompter = {
    input: async (q) => {
      if (q.message === 'Address of lb01')
        throw Object.assign(new Error('User force closed the prompt with SIGINT'), { name: 'ExitPromptError' });
      return q.default ?? '';
    },
    select: async (q) => q.default ?? q.choices[0].value,
    confirm: async (q) => q.default,
    note: () => {},
  };
  await assert.rejects(
    wizard(d, interrupting).w.run(),
    (e: Error) => e instanceof UserError && e.exitCode === 130 && /nothing was written/.test(e.message),
  );
  assert.deepEqual(readdirSync(d), []);
});

test('quitting at the end writes nothing', async () => {
  const d = dir('quit');
  const given = (
    await checkFlags(
      {
        lb: '10.30.0.11,10.30.0.12',
        web: '10.30.0.21',
        db: '10.30.0.31',
        cluster: 'q',
        sshUser: 'root',
        sshPort: '22',
        sshKey: 'agent',
        vrrp: 'multicast',
        runtime: 'bundled',
        interface: 'eth0',
        vip: '10.30.0.100/24',
        adminCidr: ['10.30.0.5'],
      },
      { baseDir: work },
    )
  ).given;
  const s = new Script([[/^What now\?$/, 'quit']]);
  await assert.rejects(
    wizard(d, s, { given }).w.run(),
    (e: Error) => e instanceof UserError && e.exitCode === 1 && e.message === 'nothing was written',
  );
  assert.deepEqual(readdirSync(d), []);
});

test('without a terminal: nothing asked, the defaults taken, or exit 2 with the missing flags', async () => {
  const none = dir('notty-missing');
  await assert.rejects(wizard(none, mute, { tty: false, given: { hosts: {} } }).w.run(), (e: Error) => {
    assert.ok(e instanceof UserError);
    assert.equal(e.exitCode, 2);
    assert.equal(
      e.message,
      [
        'no terminal to ask on, and these answers are missing:',
        '  --lb lb01=ADDRESS,lb02=ADDRESS     the addresses of the 2 load balancers',
        '  --web web01=ADDRESS,web02=ADDRESS  the addresses of the 2 web nodes',
        '  --db db01=ADDRESS                  the address of the MySQL primary',
        'Give them as flags or in --answers FILE (hasetup init --help lists every answer and its default).',
      ].join('\n'),
    );
    return true;
  });
  assert.deepEqual(readdirSync(none), []);

  const d = dir('notty');
  const given: Given = (
    await checkFlags({ lb: '10.40.0.11,10.40.0.12', web: '10.40.0.21,10.40.0.22', db: '10.40.0.31' }, { baseDir: work })
  ).given;
  const { w, out } = wizard(d, mute, { tty: false, given });
  await w.run();
  const inv = await loadInventory(join(d, 'inventory.yaml'));
  assert.equal(inv.cluster, 'webfarm');
  assert.deepEqual(inv.vip, { address: '10.40.0.100', prefix: 24, interface: 'eth0' });
  assert.equal(inv.hosts[0].ssh.privateKey, KEY, 'the first key found');
  assert.equal(inv.roles.firewall.adminCidrs.length, 1);
  assert.match(out(), /Wrote inventory\.secrets\.yaml|Wrote .*inventory\.secrets\.yaml/);

  // an existing inventory is not replaced without --force (and without a terminal, nothing asks)
  const before = readFileSync(join(d, 'inventory.yaml'), 'utf8');
  await assert.rejects(
    wizard(d, mute, { tty: false, given }).w.run(),
    (e: Error) => e instanceof UserError && e.exitCode === 2 && /exists: nothing was written \(--force replaces it\)/.test(e.message),
  );
  assert.equal(readFileSync(join(d, 'inventory.yaml'), 'utf8'), before);
});

test('an existing inventory: asked before anything else; kept when refused; replaced with its secrets kept when confirmed', async () => {
  const d = dir('existing');
  const given: Given = (await checkFlags({ lb: '10.50.0.11,10.50.0.12', web: '10.50.0.21', db: '10.50.0.31' }, { baseDir: work })).given;
  await wizard(d, mute, { tty: false, given }).w.run();
  const inv = readFileSync(join(d, 'inventory.yaml'), 'utf8');
  const secrets = readFileSync(join(d, 'inventory.secrets.yaml'), 'utf8');

  const no = new Script([[/inventory\.yaml exists\. Replace it\?$/, 'n']]);
  await assert.rejects(
    wizard(d, no, { given }).w.run(),
    (e: Error) => e instanceof UserError && /was kept: nothing was written/.test(e.message),
  );
  assert.equal(readFileSync(join(d, 'inventory.yaml'), 'utf8'), inv);

  const yes = new Script([[/exists\. Replace it\?$/, 'y']]);
  const { w, out } = wizard(d, yes, { yes: true, given: { ...given, cluster: 'other' } });
  await w.run();
  assert.match(readFileSync(join(d, 'inventory.yaml'), 'utf8'), /^cluster: other$/m);
  assert.equal(readFileSync(join(d, 'inventory.secrets.yaml'), 'utf8'), secrets, "the cluster's passwords stay");
  assert.match(out(), /Kept .*inventory\.secrets\.yaml \(mode 0600: its passwords are the cluster's\)/);
});

test('--yes on a terminal: only what has no default is asked (the addresses)', async () => {
  const d = dir('yes');
  const s = new Script([
    [/^Address of lb01$/, '10.60.0.11'],
    [/^Address of lb02$/, ''],
    [/^Address of web01$/, '10.60.0.21'],
    [/^Address of web02$/, ''],
    [/^Address of db01$/, '10.60.0.31'],
  ]);
  await wizard(d, s, { yes: true }).w.run();
  assert.equal(s.left, 0);
  const inv = await loadInventory(join(d, 'inventory.yaml'));
  assert.deepEqual(
    inv.hosts.map((h) => h.address),
    ['10.60.0.11', '10.60.0.12', '10.60.0.21', '10.60.0.22', '10.60.0.31'],
  );
  assert.ok(s.notes.some((n) => /^LB interface: eth0 \(default; not read from the LBs: the hosts were not contacted\)$/.test(n)));
});
