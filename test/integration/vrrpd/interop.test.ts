// Interoperation with Debian's keepalived on the same LAN: each implementation as master with the
// other as backup, VRRPv2 (with PASS authentication) and VRRPv3; failover in both directions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prerequisites, rootUnavailable, commandUnavailable } from '../../helpers/env.ts';
import { Topology, vrrpConf, waitFor } from '../../../harness/netns.ts';

const VIP = '10.77.0.100';
const gates = () => [rootUnavailable(), commandUnavailable('ip', 'keepalived')];

for (const version of [2, 3] as const) {
  const opts = version === 2 ? { version, advertInt: 1, auth: 'k33pal1v' } : { version, advertInt: 0.5 };

  test(`VRRPv${version}: ours master, keepalived backup; kill -9 of ours -> keepalived takes over; ours back -> preempts; SIGTERM -> keepalived at once`, async (t) => {
    if (!prerequisites(t, ...gates())) return;
    const lan = Topology.lan(2);
    t.after(() => lan.cleanup());
    const ours = lan.vrrpd(0, 'ours', vrrpConf({ priority: 150, ...opts }));
    assert.notEqual(await waitFor(() => ours.state() === 'MASTER', 10_000), null, ours.out);
    const k = lan.keepalived(1, 'keepalived', vrrpConf({ priority: 100, ...opts }));
    assert.ok(await k.ready(), k.out);
    assert.notEqual(await waitFor(() => /Entering BACKUP STATE/.test(k.out), 10_000), null, k.out);
    await new Promise((r) => setTimeout(r, 4000 * opts.advertInt)); // keepalived accepts our adverts: it stays backup
    assert.doesNotMatch(k.out, /Entering MASTER STATE/, k.out);
    await lan.expectHolders(VIP, [0]);

    ours.kill('SIGKILL');
    await ours.waitExit();
    const took = await waitFor(() => /Entering MASTER STATE/.test(k.out), 10_000);
    assert.notEqual(took, null, k.out);
    console.log(`# v${version} kill -9 of ours: keepalived MASTER after ${took!.toFixed(0)} ms`);
    assert.notEqual(await waitFor(() => lan.holders(VIP).includes(1), 3000), null);

    const back = lan.vrrpd(0, 'ours2', vrrpConf({ priority: 150, ...opts }));
    assert.notEqual(await waitFor(() => back.state() === 'MASTER', 10_000), null, back.out);
    assert.notEqual(await waitFor(() => (k.out.match(/Entering BACKUP STATE/g) ?? []).length >= 2, 10_000), null, k.out);
    assert.notEqual(await waitFor(() => lan.holders(VIP).join() === '0', 5000), null, `${lan.holders(VIP)}`);
    assert.equal(back.instance()!.counters.authErrors + back.instance()!.counters.checksumErrors, 0);

    back.kill('SIGTERM');
    const fast = await waitFor(() => (k.out.match(/Entering MASTER STATE/g) ?? []).length >= 2, 10_000);
    assert.notEqual(fast, null, k.out);
    console.log(`# v${version} SIGTERM of ours: keepalived MASTER after ${fast!.toFixed(0)} ms`);
    assert.notEqual(await waitFor(() => lan.holders(VIP).join() === '1', 3000), null, `${lan.holders(VIP)}`);
    k.term();
    assert.ok(await k.waitGone());
  });

  test(`VRRPv${version}: keepalived master, ours backup; hard failure of keepalived -> ours takes over; keepalived back -> preempts`, async (t) => {
    if (!prerequisites(t, ...gates())) return;
    const lan = Topology.lan(2);
    t.after(() => lan.cleanup());
    const k = lan.keepalived(0, 'keepalived', vrrpConf({ priority: 150, ...opts }));
    assert.ok(await k.ready(), k.out);
    assert.notEqual(await waitFor(() => /Entering MASTER STATE/.test(k.out), 10_000), null, k.out);
    const ours = lan.vrrpd(1, 'ours', vrrpConf({ priority: 100, ...opts }));
    assert.notEqual(await waitFor(() => ours.instance()?.masterAddress === '10.77.0.1', 10_000), null, ours.out);
    await new Promise((r) => setTimeout(r, 4000 * opts.advertInt));
    assert.equal(ours.state(), 'BACKUP');
    const c = ours.instance()!.counters;
    assert.ok(c.advertsReceived >= 3, JSON.stringify(c));
    assert.equal(c.authErrors + c.checksumErrors + c.intervalErrors + c.versionErrors, 0, JSON.stringify(c));
    await lan.expectHolders(VIP, [0]);

    const t0 = performance.now();
    k.killHard();
    assert.ok(await k.waitGone());
    const after = await waitFor(() => /master down timer expired \(no advert from 10\.77\.0\.1/.test(ours.out), 10_000);
    assert.notEqual(after, null, ours.out);
    console.log(`# v${version} hard failure of keepalived: ours MASTER after ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal(ours.state(), 'MASTER');
    assert.ok(lan.holders(VIP).includes(1));

    const k2 = lan.keepalived(0, 'keepalived2', vrrpConf({ priority: 150, ...opts }));
    assert.ok(await k2.ready(), k2.out);
    assert.notEqual(
      await waitFor(() => /higher priority advert from 10\.77\.0\.1 \(150 > 100\)/.test(ours.out), 15_000),
      null,
      ours.out + k2.out,
    );
    assert.equal(ours.state(), 'BACKUP');
    assert.notEqual(await waitFor(() => lan.holders(VIP).join() === '0', 5000), null, `${lan.holders(VIP)}`);
    k2.term();
    const fast = await waitFor(() => /left \(priority 0 advert\)/.test(ours.out), 10_000);
    assert.notEqual(fast, null, ours.out);
    console.log(`# v${version} SIGTERM of keepalived: ours MASTER after ${fast!.toFixed(0)} ms`);
    assert.equal(ours.state(), 'MASTER');
    assert.ok(await k2.waitGone());
  });
}
