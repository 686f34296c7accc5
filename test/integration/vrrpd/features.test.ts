// Daemon features around the protocol: SIGHUP reload without a role flap, notify scripts with
// keepalived's arguments, vrrp_script tracking (weight and FAULT), track_interface, the status file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync, rmSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { prerequisites, rootUnavailable, commandUnavailable } from '../../helpers/env.ts';
import { Topology, vrrpConf, waitFor, sleep, sh } from '../../../harness/netns.ts';

const VIP = '10.77.0.100';
const gates = () => [rootUnavailable(), commandUnavailable('ip')];

test('SIGHUP: an unchanged instance keeps MASTER and its VIP; a new priority and a new VIP apply; a broken file is refused', async (t) => {
  if (!prerequisites(t, ...gates())) return;
  const lan = Topology.lan(2);
  t.after(() => lan.cleanup());
  const opts = { version: 3 as const, advertInt: 0.2 };
  const a = lan.vrrpd(0, 'a', vrrpConf({ priority: 150, ...opts }));
  const b = lan.vrrpd(1, 'b', vrrpConf({ priority: 100, ...opts }));
  assert.notEqual(await waitFor(() => a.state() === 'MASTER' && b.instance()?.masterAddress === '10.77.0.1', 10_000), null);
  const sent = a.instance()!.counters.becameMaster;

  // watch the VIP continuously during the reloads
  let lost = 0;
  let watching = true;
  const watch = (async () => {
    while (watching) {
      if (!lan.addresses(0).includes(VIP)) lost++;
      await sleep(20);
    }
  })();
  writeFileSync(a.configFile, vrrpConf({ priority: 140, ...opts, vip: '10.77.0.100/24 dev eth0\n    10.77.0.101/24' }));
  a.kill('SIGHUP');
  assert.notEqual(await waitFor(() => /reloaded/.test(a.out), 5000), null, a.out);
  assert.notEqual(await waitFor(() => lan.addresses(0).includes('10.77.0.101'), 3000), null, 'the new VIP is added');
  assert.notEqual(await waitFor(() => b.instance()?.masterAddress === '10.77.0.1' && a.instance()?.priority === 140, 3000), null);
  writeFileSync(a.configFile, 'vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  priority banana\n}\n');
  a.kill('SIGHUP');
  assert.notEqual(await waitFor(() => /reload refused/.test(a.out), 5000), null, a.out);
  assert.match(a.out, /\.conf:4: priority: 'banana' is not an integer/);
  await sleep(1000);
  watching = false;
  await watch;
  assert.equal(lost, 0, 'the VIP never left during the reloads');
  assert.equal(a.state(), 'MASTER');
  assert.equal(a.instance()!.counters.becameMaster, sent, 'no role flap');
  assert.equal(b.state(), 'BACKUP');
  assert.doesNotMatch(a.out, /MASTER -> /);

  // a lower priority after a reload hands the VIP over (preemption on the backup)
  writeFileSync(a.configFile, vrrpConf({ priority: 90, ...opts }));
  a.kill('SIGHUP');
  assert.notEqual(await waitFor(() => b.state() === 'MASTER' && a.state() === 'BACKUP', 5000), null, a.out + b.out);
  assert.notEqual(await waitFor(() => !lan.addresses(0).includes('10.77.0.101') && !lan.addresses(0).includes(VIP), 3000), null);
});

test('notify scripts get keepalived arguments; a failing vrrp_script with weight 0 puts the master in FAULT; a negative weight lowers the priority', async (t) => {
  if (!prerequisites(t, ...gates())) return;
  const lan = Topology.lan(2);
  t.after(() => lan.cleanup());
  const notifyLog = join(lan.dir, 'notify.log');
  const notify = lan.file('notify.sh', `#!/bin/sh\necho "$*" >> ${notifyLog}\n`);
  chmodSync(notify, 0o755);
  const healthy = join(lan.dir, 'proxy-up');
  const weightFlag = join(lan.dir, 'weight-ok');
  writeFileSync(healthy, '');
  writeFileSync(weightFlag, '');
  const scripts = `vrrp_script chk_proxy {\n  script "/bin/test -e ${healthy}"\n  interval 0.2\n  fall 2\n  rise 2\n}\nvrrp_script chk_weight {\n  script "/bin/test -e ${weightFlag}"\n  interval 0.2\n  weight -60\n}\n`;
  const extra = `  track_script {\n    chk_proxy\n    chk_weight\n  }\n  notify ${notify}\n  notify_master "${notify} master-only"\n`;
  const opts = { version: 3 as const, advertInt: 0.2 };
  const a = lan.vrrpd(0, 'a', scripts + vrrpConf({ priority: 150, ...opts, extra }));
  const b = lan.vrrpd(1, 'b', vrrpConf({ priority: 100, ...opts }));
  assert.notEqual(await waitFor(() => a.state() === 'MASTER' && b.state() === 'BACKUP', 10_000), null, a.out);
  assert.notEqual(
    await waitFor(() => existsSync(notifyLog) && readFileSync(notifyLog, 'utf8').includes('INSTANCE VI_1 MASTER 150'), 3000),
    null,
  );
  const lines = readFileSync(notifyLog, 'utf8').trim().split('\n');
  assert.deepEqual(lines.filter((l) => l.startsWith('INSTANCE')).sort(), ['INSTANCE VI_1 BACKUP 150', 'INSTANCE VI_1 MASTER 150']);
  assert.ok(lines.includes('master-only'));

  // weight -60: 150 -> 90 < 100, b preempts
  rmSync(weightFlag);
  assert.notEqual(await waitFor(() => b.state() === 'MASTER' && a.state() === 'BACKUP', 5000), null, a.out);
  assert.equal(a.instance()!.priority, 90);
  writeFileSync(weightFlag, '');
  assert.notEqual(await waitFor(() => a.state() === 'MASTER', 5000), null, a.out);

  // weight 0: FAULT, the VIP goes at once (priority 0), the status file says why
  rmSync(healthy);
  assert.notEqual(await waitFor(() => a.state() === 'FAULT', 5000), null, a.out);
  assert.deepEqual(a.instance()!.faults, ['script chk_proxy failed']);
  assert.notEqual(await waitFor(() => b.state() === 'MASTER', 3000), null);
  assert.notEqual(await waitFor(() => lan.holders(VIP).join() === '1', 3000), null, `${lan.holders(VIP)}`);
  assert.notEqual(await waitFor(() => readFileSync(notifyLog, 'utf8').includes('INSTANCE VI_1 FAULT'), 3000), null);
  writeFileSync(healthy, '');
  assert.notEqual(await waitFor(() => a.state() === 'MASTER', 5000), null, a.out);
  assert.notEqual(await waitFor(() => lan.holders(VIP).join() === '0', 3000), null, `${lan.holders(VIP)}`);
  assert.match(a.out, /vrrp_script chk_proxy: ok -> failed/);
  assert.match(a.out, /FAULT -> BACKUP .*fault cleared/);

  a.kill('SIGTERM');
  assert.ok(await a.waitExit());
  assert.notEqual(await waitFor(() => readFileSync(notifyLog, 'utf8').includes('INSTANCE VI_1 STOP'), 3000), null);
});

test('the instance interface going down is a FAULT; it comes back as backup', async (t) => {
  if (!prerequisites(t, ...gates())) return;
  const lan = Topology.lan(2);
  t.after(() => lan.cleanup());
  const opts = { version: 3 as const, advertInt: 0.2 };
  const a = lan.vrrpd(0, 'a', vrrpConf({ priority: 150, ...opts }));
  const b = lan.vrrpd(1, 'b', vrrpConf({ priority: 100, ...opts }));
  assert.notEqual(await waitFor(() => a.state() === 'MASTER' && b.state() === 'BACKUP', 10_000), null);
  lan.setLink(0, false); // carrier lost on a's side
  assert.notEqual(await waitFor(() => a.state() === 'FAULT', 5000), null, a.out);
  assert.notEqual(await waitFor(() => b.state() === 'MASTER', 5000), null, b.out);
  assert.match(a.out, /fault: interface eth0 down/);
  lan.setLink(0, true);
  assert.notEqual(await waitFor(() => a.state() === 'MASTER' && b.state() === 'BACKUP', 10_000), null, a.out);
  const st = a.status()!;
  assert.equal(st.pid, a.pid);
  const i = st.instances[0] as unknown as Record<string, unknown>;
  for (const k of ['state', 'priority', 'masterAddress', 'counters', 'vips', 'lastReason', 'since']) assert.ok(k in i, `status has ${k}`);
  assert.ok(sh(['cat', a.statusFile]).length > 0);
});

test('two instances per daemon on one interface (active/active): each VRID elects its own master', async (t) => {
  if (!prerequisites(t, ...gates())) return;
  const lan = Topology.lan(2);
  t.after(() => lan.cleanup());
  const two = (p1: number, p2: number) =>
    vrrpConf({ priority: p1, version: 3, advertInt: 0.2, vrid: 51, vip: '10.77.0.100/24' }) +
    vrrpConf({ priority: p2, version: 3, advertInt: 0.2, vrid: 52, vip: '10.77.0.200/24' })
      .replace(/global_defs \{[^}]*\}/, '')
      .replace('vrrp_instance VI_1', 'vrrp_instance VI_2');
  const a = lan.vrrpd(0, 'a', two(150, 100));
  const b = lan.vrrpd(1, 'b', two(100, 150));
  const ok = () =>
    a.state('VI_1') === 'MASTER' && a.state('VI_2') === 'BACKUP' && b.state('VI_1') === 'BACKUP' && b.state('VI_2') === 'MASTER';
  assert.notEqual(await waitFor(ok, 10_000), null, a.out + b.out);
  await lan.expectHolders('10.77.0.100', [0]);
  await lan.expectHolders('10.77.0.200', [1]);
  await sleep(1500);
  assert.ok(ok(), 'stable');
  // each instance sees the other VRID's adverts and counts them aside
  assert.ok(a.instance('VI_1')!.counters.otherVrid > 0);
  assert.equal(a.instance('VI_2')!.masterAddress, '10.77.0.2');
  b.kill('SIGTERM');
  assert.notEqual(await waitFor(() => a.state('VI_2') === 'MASTER', 5000), null, a.out);
  await lan.expectHolders('10.77.0.200', [0]);
});
