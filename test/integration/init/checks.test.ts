// The host checks against real sshd hosts in network namespaces of this test's own (10.213.240.0/24):
// reachable or not (a closed port, an unused address), the host key trusted on first use and
// recorded only when asked, Debian with systemd or not, sudo with or without a password, the LB
// interface that lacks the address, the controller's address as the hosts see it, the VIP free, in
// use or held.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Answers } from '../../../cli/init/answers.ts';
import { detectInterface, hostRows, vipHolder, type Row } from '../../../cli/init/checks.ts';
import { probeAll, Prober, type Access, type Probe, type Target } from '../../../cli/init/probe.ts';
import { commandUnavailable, prerequisites, rootUnavailable } from '../../helpers/env.ts';
import { CONTROLLER, Lan, SUBNET, SUDO_USER } from './lan.ts';

const skip = rootUnavailable() ?? commandUnavailable('/usr/sbin/sshd', 'ssh-keygen', 'sudo', 'ping');
let lan: Lan | undefined;

before(async () => {
  if (skip) return;
  lan = await Lan.start([
    { name: 'lb01', octet: 11, extraLinks: ['eth1'] },
    { name: 'lb02', octet: 12 },
    { name: 'web01', octet: 21 },
    { name: 'web02', octet: 22, sshd: false },
    { name: 'db01', octet: 31, systemd: false, osId: 'fedora', sudoNoPassword: false },
  ]);
});
after(async () => {
  await lan?.stop();
});

const target = (name: string, group: Target['group'], octet: number): Target => ({
  name,
  group,
  address: `${SUBNET}.${octet}`,
  sshHost: `${SUBNET}.${octet}`,
});
const LB1 = target('lb01', 'lb', 11);
const LB2 = target('lb02', 'lb', 12);
const WEB1 = target('web01', 'web', 21);
const WEB2 = target('web02', 'web', 22);
const DB1 = target('db01', 'db', 31);
const NOBODY = target('web03', 'web', 99); // inside the test's subnet, held by no one

function answers(over: Partial<Answers> = {}): Answers {
  return {
    cluster: 'it',
    hosts: { lb: [LB1, LB2], web: [WEB1, WEB2, NOBODY], db: [DB1] },
    sshUser: 'root',
    sshPort: 22,
    sshKey: null,
    connectTimeout: 5,
    knownHosts: null,
    interface: 'eth0',
    vip: `${SUBNET}.100/24`,
    vrrp: 'multicast',
    adminCidrs: [`${CONTROLLER}/32`],
    runtime: 'bundled',
    ...over,
  };
}

const access = (user = 'root'): Access => ({ user, port: 22, privateKey: lan!.key, connectTimeout: 5 });
const rowsOf = (t: Target, p: Probe | undefined, a = answers()) => Object.fromEntries(hostRows(t, p, a).map((r: Row) => [r.check, r]));
/** A prober recording into a known_hosts of the test's own, closed after fn. */
async function withProber<T>(name: string, fn: (p: Prober) => Promise<T>): Promise<T> {
  const prober = Prober.create(join(lan!.dir, name, 'known_hosts'));
  try {
    return await fn(prober);
  } finally {
    await prober.close();
  }
}

const fingerprint = (pub: string) => execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', pub], { encoding: 'utf8' }).split(' ')[1];

test('all hosts at once: the reachable ones read, a closed port and an unused address explained', async (t) => {
  if (!prerequisites(t, skip) || !lan) return;
  const known = join(lan.dir, 'tofu', 'known_hosts');
  const prober = Prober.create(known);
  try {
    const probes = await probeAll(prober, [LB1, LB2, WEB1, WEB2, DB1, NOBODY], access(), { plain: true });
    const lb1 = probes.get('lb01');
    assert.ok(lb1?.ok, JSON.stringify(lb1));
    assert.equal(lb1.target, `root@${LB1.address}:22`);
    assert.equal(lb1.controller, CONTROLLER, 'this machine as the host sees it');
    assert.equal(lb1.sudo, 'root');
    assert.deepEqual(lb1.hostKey, { type: 'ssh-ed25519', fingerprint: fingerprint(lan.hostKeyPub('lb01')), firstUse: true });
    assert.ok(lb1.diskFreeMb !== null && lb1.diskFreeMb > 0);

    assert.deepEqual(probes.get('web02'), {
      ok: false,
      error: 'connection refused',
      fix: 'start sshd on web02, or give the port it listens on (now 22)',
    });
    assert.deepEqual(probes.get('web03'), {
      ok: false,
      error: 'no route to host',
      fix: `check that ${NOBODY.address} is web03's address and that the host is up (and that nothing drops port 22)`,
    });

    const lb = rowsOf(LB1, lb1);
    for (const c of ['ssh', 'host key', 'system', 'init', 'sudo', 'interface', 'memory', 'disk', 'firewall'])
      assert.equal(lb[c].ok, true, `${c}: ${lb[c].result}`);
    assert.equal(lb.interface.result, `eth0 carries ${LB1.address}/24`);
    assert.deepEqual(detectInterface([LB1, LB2], probes), { name: 'eth0', prefix: 24, from: ['lb01', 'lb02'] });

    const db = rowsOf(DB1, probes.get('db01'));
    assert.deepEqual([db.system.ok, db.system.result], [false, 'fedora (test): not Debian or Ubuntu']);
    assert.deepEqual([db.init.ok, db.init.result], [false, 'not running systemd']);
    assert.deepEqual([db.address.ok, db.address.result], [true, `${DB1.address} on eth0`]);

    assert.equal(existsSync(known), false, 'nothing recorded where apply reads the keys yet');
  } finally {
    await prober.close();
  }
});

test("an LB interface that does not carry the LB's address; admin networks that would lock this machine out", async (t) => {
  if (!prerequisites(t, skip) || !lan) return;
  await withProber('iface', async (prober) => {
    const p = await prober.probe(LB1, access());
    const eth1 = rowsOf(LB1, p, answers({ interface: 'eth1' })).interface;
    assert.deepEqual(eth1, {
      host: 'lb01',
      check: 'interface',
      ok: false,
      result: `eth1 does not carry ${LB1.address} (it has no IPv4 address)`,
      fix: `set the LB interface to eth0, which carries ${LB1.address}`,
    });
    const none = rowsOf(LB1, p, answers({ interface: 'ens9' })).interface;
    assert.match(none.result, /^no interface ens9 \(it has lo, eth0, .*eth1.*\)$/);
    const fw = rowsOf(LB1, p, answers({ adminCidrs: ['192.0.2.0/24'] })).firewall;
    assert.deepEqual([fw.ok, fw.fix], [false, `add ${CONTROLLER}/32 to the admin networks`]);
  });
});

test('sudo as a user: without a password it passes, with one it is a problem that says what to do', async (t) => {
  if (!prerequisites(t, skip) || !lan) return;
  await withProber('sudo', async (prober) => {
    const [web, db] = await Promise.all([prober.probe(WEB1, access(SUDO_USER)), prober.probe(DB1, access(SUDO_USER))]);
    assert.ok(web.ok && db.ok);
    assert.equal(web.sudo, 'ok');
    assert.equal(web.facts.user, SUDO_USER);
    assert.equal(db.sudo, 'password');
    const row = rowsOf(DB1, db, answers({ sshUser: SUDO_USER })).sudo;
    assert.equal(row.ok, false);
    assert.match(row.result, new RegExp(`^sudo asks ${SUDO_USER} for a password \\(sudo: a password is required\\)$`));
    assert.equal(
      row.fix,
      `on db01, as root: echo '${SUDO_USER} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/hasetup; chmod 440 /etc/sudoers.d/hasetup`,
    );
    assert.equal(rowsOf(WEB1, web, answers({ sshUser: SUDO_USER })).sudo.ok, true);
  });
});

test('host keys: recorded where apply reads them only when asked, known afterwards, a changed key refused', async (t) => {
  if (!prerequisites(t, skip) || !lan) return;
  const known = join(lan.dir, 'keys', '.hasetup', 'known_hosts');
  const first = Prober.create(known);
  const scratch = first.scratch;
  try {
    const [a, b] = await Promise.all([first.probe(LB1, access()), first.probe(LB2, access())]);
    assert.ok(a.ok && b.ok && a.hostKey?.firstUse && b.hostKey?.firstUse);
    assert.equal(existsSync(known), false);
    assert.equal(await first.recordKeys([LB1, LB2], 22), 2);
    assert.equal(await first.recordKeys([LB1, LB2], 22), 0, 'recorded once');
  } finally {
    await first.close();
  }
  assert.equal(existsSync(scratch), false, 'the scratch copy is removed');
  const lines = readFileSync(known, 'utf8').trim().split('\n');
  assert.deepEqual(lines, [
    `${LB1.address} ${readFileSync(lan.hostKeyPub('lb01'), 'utf8').split(' ').slice(0, 2).join(' ')}`,
    `${LB2.address} ${readFileSync(lan.hostKeyPub('lb02'), 'utf8').split(' ').slice(0, 2).join(' ')}`,
  ]);

  lan.rotateHostKey('lb02');
  const second = Prober.create(known);
  try {
    const a = await second.probe(LB1, access());
    assert.ok(a.ok);
    assert.equal(a.hostKey?.firstUse, false, 'already known');
    const b = await second.probe(LB2, access());
    assert.equal(b.ok, false);
    if (!b.ok) {
      assert.match(
        b.error,
        new RegExp(
          `^host key for ${LB2.address.replace(/\./g, '\\.')} has changed \\(now ssh-ed25519 SHA256:\\S+\\); if the host was rebuilt, remove its line from ${known}$`,
        ),
      );
      assert.equal(b.fix, `if lb02 was rebuilt, remove its line from ${known}; otherwise find out who answers on ${LB2.address}`);
    }
    assert.equal(await second.recordKeys([LB1, LB2], 22), 0, 'a changed key is never recorded');
  } finally {
    await second.close();
  }
  assert.equal(readFileSync(known, 'utf8').trim().split('\n').length, 2);
});

test('the VIP seen from an LB: free, answering elsewhere on the network, or already held by the LB', async (t) => {
  if (!prerequisites(t, skip) || !lan) return;
  const vip = `${SUBNET}.100`;
  const net = lan;
  await withProber('vip', async (prober) => {
    const p = await prober.probe(LB1, access());
    assert.ok(p.ok);
    assert.deepEqual(await prober.vipSeen(LB1, access(), vip, p.facts), { state: 'free' });
    net.inHost('web01', ['ip', 'addr', 'add', `${vip}/24`, 'dev', 'eth0']);
    try {
      assert.deepEqual(await prober.vipSeen(LB1, access(), vip, p.facts), { state: 'in use' });
      const row = rowsOf(LB1, p);
      assert.equal(row.vip, undefined, 'no VIP row without a VIP check');
      const rows = Object.fromEntries(hostRows(LB1, p, answers(), { state: 'in use' }).map((r) => [r.check, r]));
      assert.equal(rows.vip.result, `${vip} answers on the network (seen from lb01): another device has it`);
    } finally {
      net.inHost('web01', ['ip', 'addr', 'del', `${vip}/24`, 'dev', 'eth0']);
    }
    net.inHost('lb01', ['ip', 'addr', 'add', `${vip}/24`, 'dev', 'eth0']);
    try {
      const again = await prober.probe(LB1, access());
      assert.ok(again.ok);
      assert.deepEqual(await prober.vipSeen(LB1, access(), vip, again.facts), { state: 'held', by: 'lb01' });
      // lb02 sees lb01 answer for it: that is this cluster's VIP, not another device
      const probes = new Map<string, Probe>([
        ['lb01', again],
        ['lb02', await prober.probe(LB2, access())],
      ]);
      assert.equal(vipHolder([LB1, LB2], probes, vip), 'lb01');
    } finally {
      net.inHost('lb01', ['ip', 'addr', 'del', `${vip}/24`, 'dev', 'eth0']);
    }
  });
});
