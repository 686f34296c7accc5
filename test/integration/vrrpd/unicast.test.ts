// Unicast VRRP (unicast_src_ip / unicast_peer) between two subnets joined by a router, where
// link-local multicast cannot pass: the election works through unicast only; ours with ours and
// ours with keepalived.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prerequisites, rootUnavailable, commandUnavailable } from '../../helpers/env.ts';
import { Topology, vrrpConf, waitFor } from '../../../harness/netns.ts';

const VIP = '10.78.1.100/32';
const H1 = '10.78.1.2';
const H2 = '10.78.2.2';
const conf = (priority: number, src: string, peer: string, version: 2 | 3 = 3) =>
  vrrpConf({ priority, version, advertInt: version === 3 ? 0.5 : 1, vip: VIP, unicast: { src, peers: [peer] } });

test('unicast across a router: one master, the peer backs it up and takes over on kill -9', async (t) => {
  if (!prerequisites(t, rootUnavailable(), commandUnavailable('ip'))) return;
  const net = Topology.routed();
  t.after(() => net.cleanup());
  // multicast would not get through: a multicast-configured pair here ends with two masters
  const m1 = net.vrrpd(0, 'm1', vrrpConf({ priority: 150, version: 3, advertInt: 0.5, vrid: 60, vip: '10.78.1.200/32' }));
  const m2 = net.vrrpd(1, 'm2', vrrpConf({ priority: 100, version: 3, advertInt: 0.5, vrid: 60, vip: '10.78.1.200/32' }));
  assert.notEqual(await waitFor(() => m1.state() === 'MASTER' && m2.state() === 'MASTER', 10_000), null, m1.out + m2.out);
  m1.kill('SIGTERM');
  m2.kill('SIGTERM');
  await m1.waitExit();
  await m2.waitExit();

  const a = net.vrrpd(0, 'a', conf(150, H1, H2));
  const b = net.vrrpd(1, 'b', conf(100, H2, H1));
  assert.notEqual(await waitFor(() => a.state() === 'MASTER' && b.instance()?.masterAddress === H1, 10_000), null, a.out + b.out);
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(b.state(), 'BACKUP');
  assert.ok(b.instance()!.counters.advertsReceived >= 3);
  await net.expectHolders('10.78.1.100', [0]);
  a.kill('SIGKILL');
  await a.waitExit();
  const took = await waitFor(() => b.state() === 'MASTER', 5000);
  assert.notEqual(took, null, b.out);
  console.log(`# unicast kill -9: peer MASTER after ${took!.toFixed(0)} ms`);
  assert.ok(net.holders('10.78.1.100').includes(1));
});

test('unicast interop with keepalived (VRRPv2 and v3): keepalived master, ours backup, then the reverse after its stop', async (t) => {
  if (!prerequisites(t, rootUnavailable(), commandUnavailable('ip', 'keepalived'))) return;
  for (const version of [2, 3] as const) {
    const net = Topology.routed();
    try {
      const k = net.keepalived(0, `k${version}`, conf(150, H1, H2, version));
      assert.ok(await k.ready(), k.out);
      const ours = net.vrrpd(1, `ours${version}`, conf(100, H2, H1, version));
      assert.notEqual(await waitFor(() => ours.instance()?.masterAddress === H1, 10_000), null, `v${version}\n${ours.out}\n${k.out}`);
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(ours.state(), 'BACKUP', `v${version}: ${ours.out}`);
      await net.expectHolders('10.78.1.100', [0]);
      k.term();
      assert.notEqual(await waitFor(() => ours.state() === 'MASTER', 5000), null, ours.out);
      assert.match(ours.out, /left \(priority 0/);
      assert.ok(await k.waitGone());
      // keepalived comes back as backup-priority and follows ours
      const k2 = net.keepalived(0, `k${version}b`, conf(50, H1, H2, version));
      assert.ok(await k2.ready(), k2.out);
      assert.notEqual(await waitFor(() => /Entering BACKUP STATE/.test(k2.out), 10_000), null, k2.out);
      await new Promise((r) => setTimeout(r, 4000));
      assert.doesNotMatch(k2.out, /Entering MASTER STATE/, k2.out);
      assert.equal(ours.state(), 'MASTER');
      k2.term();
      assert.ok(await k2.waitGone());
    } finally {
      net.cleanup();
    }
  }
});
