// The daemon as the LBs run it: a non-root user with CAP_NET_ADMIN and CAP_NET_RAW only (setpriv, in network
// namespaces of this test's own): it speaks VRRP, becomes master, adds the VIP, and removes it when it leaves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync } from 'node:fs';
import { prerequisites, rootUnavailable, commandUnavailable } from '../../helpers/env.ts';
import { Topology, vrrpConf, waitFor } from '../../../harness/netns.ts';

const VIP = '10.77.0.100';

test('non-root with only CAP_NET_ADMIN and CAP_NET_RAW: master, VIP added, removed on SIGTERM', async (t) => {
  if (!prerequisites(t, rootUnavailable(), commandUnavailable('ip', 'setpriv'))) return;
  const lan = Topology.lan(2);
  t.after(() => lan.cleanup());
  // the daemon's user must be able to read its configuration and write its status file
  chmodSync(lan.dir, 0o777);
  const caps = '-all,+net_admin,+net_raw';
  const setpriv = [
    'setpriv',
    '--reuid',
    'nobody',
    '--regid',
    'nogroup',
    '--clear-groups',
    '--inh-caps',
    caps,
    '--ambient-caps',
    caps,
    '--bounding-set',
    caps,
    '--',
  ];
  const a = lan.vrrpd(0, 'a', vrrpConf({ priority: 150 }), setpriv);
  const b = lan.vrrpd(1, 'b', vrrpConf({ priority: 100 }));
  assert.notEqual(await waitFor(() => a.state() === 'MASTER' && b.state() === 'BACKUP', 10_000), null, a.out + b.out);
  await lan.expectHolders(VIP, [0]);
  const status = readFileSync(`/proc/${a.pid}/task/${a.pid}/status`, 'utf8');
  // (a.pid is `ip netns exec`, which execs setpriv, which execs node: the same process)
  assert.match(status, /^Uid:\s+65534\s+65534/m, 'runs as nobody');
  assert.match(status, /^CapEff:\s+0000000000003000$/m, 'with CAP_NET_ADMIN and CAP_NET_RAW only');
  a.kill('SIGTERM');
  assert.equal(await a.waitExit(), true);
  assert.equal(a.exitCode, 0, a.out);
  await lan.expectHolders(VIP, [1]);
});
