// A VIP left behind by a daemon that died (SIGKILL, the OOM killer, a crash) leaves the host when the
// daemon starts again: a host that does not hold the VIP must not answer for it (its kernel would reset
// the clients' new connections instead of letting them go to the master).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prerequisites, rootUnavailable, commandUnavailable } from '../../helpers/env.ts';
import { Topology, vrrpConf, waitFor, sh } from '../../../harness/netns.ts';

const VIP = '10.77.0.100';
const gates = () => [rootUnavailable(), commandUnavailable('ip')];

test('a VIP already on the interface at start is removed before the daemon starts as a backup, and said so once', async (t) => {
  if (!prerequisites(t, ...gates())) return;
  const lan = Topology.lan(2);
  t.after(() => lan.cleanup());
  // the master runs; host 1 has the VIP as a dead master would have left it
  const a = lan.vrrpd(0, 'a', vrrpConf({ priority: 150, version: 3, advertInt: 0.2 }));
  assert.notEqual(await waitFor(() => a.state() === 'MASTER', 10_000), null, a.out);
  sh(['ip', '-n', lan.hosts[1].ns, 'addr', 'add', `${VIP}/24`, 'dev', 'eth0']);
  assert.deepEqual(lan.holders(VIP), [0, 1]);

  const b = lan.vrrpd(1, 'b', vrrpConf({ priority: 100, version: 3, advertInt: 0.2 }));
  assert.notEqual(await waitFor(() => b.state() === 'BACKUP', 10_000), null, b.out);
  // the status file says BACKUP before the daemon's log line has come through its pipe
  assert.notEqual(await waitFor(() => b.out.includes('INIT -> BACKUP'), 5_000), null, b.out);
  await lan.expectHolders(VIP, [0]);
  const said = b.out.split('\n').filter((l) => /found on the interface at start/.test(l));
  assert.equal(said.length, 1, b.out);
  assert.match(said[0], /\(VI_1\) 10\.77\.0\.100\/24 dev eth0 found on the interface at start .*removed before starting as a backup/);
  // the line comes before the instance leaves INIT
  assert.ok(b.out.indexOf(said[0]) < b.out.indexOf('INIT -> BACKUP'), b.out);
});

test('no VIP on the interface at start: nothing said; an address owner (priority 255) keeps its VIP', async (t) => {
  if (!prerequisites(t, ...gates())) return;
  const lan = Topology.lan(2);
  t.after(() => lan.cleanup());
  const b = lan.vrrpd(1, 'b', vrrpConf({ priority: 100, version: 3, advertInt: 0.2 }));
  assert.notEqual(await waitFor(() => b.state() === 'BACKUP' || b.state() === 'MASTER', 10_000), null, b.out);
  assert.doesNotMatch(b.out, /found on the interface at start/);

  sh(['ip', '-n', lan.hosts[0].ns, 'addr', 'add', `${VIP}/24`, 'dev', 'eth0']);
  const a = lan.vrrpd(0, 'a', vrrpConf({ priority: 255, version: 3, advertInt: 0.2 }));
  assert.notEqual(await waitFor(() => a.state() === 'MASTER', 10_000), null, a.out);
  assert.doesNotMatch(a.out, /found on the interface at start/);
  await lan.expectHolders(VIP, [0]);
});
