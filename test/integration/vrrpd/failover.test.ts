// Our daemon against itself in network namespaces: election, hard and graceful failover,
// preemption, partitions, gratuitous ARP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prerequisites, rootUnavailable, commandUnavailable } from '../../helpers/env.ts';
import { spawn } from 'node:child_process';
import { Topology, vrrpConf, waitFor, sleep, sh } from '../../../harness/netns.ts';

const VIP = '10.77.0.100';
const gates = () => [rootUnavailable(), commandUnavailable('ip')];

test('VIP on the higher priority; kill -9 of the master: the backup takes over; the master comes back and preempts', async (t) => {
  if (!prerequisites(t, ...gates())) return;
  const lan = Topology.lan(3);
  t.after(() => lan.cleanup());
  const a = lan.vrrpd(0, 'a', vrrpConf({ priority: 150, auth: 'pass1234' }));
  const b = lan.vrrpd(1, 'b', vrrpConf({ priority: 100, auth: 'pass1234' }));
  assert.notEqual(await waitFor(() => a.state() === 'MASTER' && b.state() === 'BACKUP', 10_000), null, a.out + b.out);
  await lan.expectHolders(VIP, [0]);
  assert.notEqual(await waitFor(() => b.instance()?.masterAddress === '10.77.0.1', 3000), null, JSON.stringify(b.instance()));

  a.kill('SIGKILL');
  await a.waitExit();
  const took = await waitFor(
    () => /BACKUP -> MASTER \(priority 100\): master down timer expired \(no advert from 10\.77\.0\.1/.test(b.out),
    10_000,
  );
  assert.notEqual(took, null, b.out);
  console.log(
    `# kill -9 of the master (advert_int 1, VRRPv2): backup MASTER ${took!.toFixed(0)} ms after the kill (Master_Down_Interval ${(3000 + (156 * 1000) / 256).toFixed(0)} ms after the last advert)`,
  );
  assert.equal(b.state(), 'MASTER');
  assert.notEqual(await waitFor(() => lan.holders(VIP).includes(1), 3000), null);

  // the old master comes back (its VIP was left behind by kill -9) and preempts
  const a2 = lan.vrrpd(0, 'a2', vrrpConf({ priority: 150, auth: 'pass1234' }));
  assert.notEqual(
    await waitFor(() => /MASTER -> BACKUP \(priority 100\): higher priority advert from 10\.77\.0\.1 \(150 > 100\)/.test(b.out), 15_000),
    null,
    a2.out + b.out,
  );
  assert.equal(a2.state(), 'MASTER');
  assert.equal(b.state(), 'BACKUP');
  assert.notEqual(await waitFor(() => lan.holders(VIP).join() === '0', 5000), null, `holders ${lan.holders(VIP)}`);
});

test('SIGTERM: the master sends priority 0 and removes the VIP, the backup takes over within the skew time', async (t) => {
  if (!prerequisites(t, ...gates())) return;
  const lan = Topology.lan(2);
  t.after(() => lan.cleanup());
  const a = lan.vrrpd(0, 'a', vrrpConf({ priority: 200, version: 3, advertInt: 1 }));
  const b = lan.vrrpd(1, 'b', vrrpConf({ priority: 100, version: 3, advertInt: 1 }));
  assert.notEqual(await waitFor(() => a.state() === 'MASTER' && b.state() === 'BACKUP', 10_000), null);
  const t0 = performance.now();
  a.kill('SIGTERM');
  const took = await waitFor(() => /master 10\.77\.0\.1 left \(priority 0 advert\), skew time elapsed/.test(b.out), 5000);
  assert.notEqual(took, null, b.out);
  console.log(
    `# SIGTERM of the master (VRRPv3, advert_int 1): backup MASTER after ${took!.toFixed(0)} ms (skew ${((156 * 1000) / 256).toFixed(0)} ms, Master_Down_Interval ${(3000 + (156 * 1000) / 256).toFixed(0)} ms)`,
  );
  assert.equal(b.state(), 'MASTER');
  assert.equal(await a.waitExit(), true);
  assert.equal(a.exitCode, 0);
  await lan.expectHolders(VIP, [1]);
  assert.equal(b.instance()!.counters.priorityZeroReceived, 1);
  const final = a.status()!;
  assert.equal(final.instances[0].state, 'STOP');
  assert.ok(performance.now() - t0 < 60_000);
});

test('nopreempt: the higher priority node coming back stays backup', async (t) => {
  if (!prerequisites(t, ...gates())) return;
  const lan = Topology.lan(2);
  t.after(() => lan.cleanup());
  const b = lan.vrrpd(1, 'b', vrrpConf({ priority: 100, version: 3, advertInt: 0.5, nopreempt: true }));
  assert.notEqual(await waitFor(() => b.state() === 'MASTER', 10_000), null);
  const a = lan.vrrpd(0, 'a', vrrpConf({ priority: 150, version: 3, advertInt: 0.5, nopreempt: true }));
  assert.notEqual(await waitFor(() => a.state() === 'BACKUP', 10_000), null);
  await sleep(4000); // several Master_Down_Intervals
  assert.equal(a.state(), 'BACKUP');
  assert.equal(b.state(), 'MASTER');
  await lan.expectHolders(VIP, [1]);
  assert.equal(a.instance()!.masterAddress, '10.77.0.2');
});

test('a partition makes two masters; healing leaves exactly one, the higher priority', async (t) => {
  if (!prerequisites(t, ...gates())) return;
  const lan = Topology.lan(2);
  t.after(() => lan.cleanup());
  const a = lan.vrrpd(0, 'a', vrrpConf({ priority: 150, version: 3, advertInt: 0.2 }));
  const b = lan.vrrpd(1, 'b', vrrpConf({ priority: 100, version: 3, advertInt: 0.2 }));
  assert.notEqual(await waitFor(() => a.state() === 'MASTER' && b.state() === 'BACKUP', 10_000), null);
  lan.partition(0, true);
  assert.notEqual(await waitFor(() => b.state() === 'MASTER', 5000), null, 'b takes over while partitioned');
  assert.equal(a.state(), 'MASTER', 'a does not know');
  lan.partition(0, false);
  const healed = await waitFor(() => a.state() === 'MASTER' && b.state() === 'BACKUP', 10_000);
  assert.notEqual(healed, null, a.out + b.out);
  console.log(`# partition healed: one master again after ${healed!.toFixed(0)} ms`);
  await sleep(1000);
  assert.equal([a.state(), b.state()].filter((s) => s === 'MASTER').length, 1);
  await lan.expectHolders(VIP, [0]);
});

test('gratuitous ARP: a third host learns the new owner of the VIP without asking', async (t) => {
  if (!prerequisites(t, ...gates())) return;
  const lan = Topology.lan(3);
  t.after(() => lan.cleanup());
  const a = lan.vrrpd(0, 'a', vrrpConf({ priority: 150, version: 3, advertInt: 0.5 }));
  const b = lan.vrrpd(1, 'b', vrrpConf({ priority: 100, version: 3, advertInt: 0.5 }));
  assert.notEqual(await waitFor(() => a.state() === 'MASTER' && b.state() === 'BACKUP', 10_000), null);
  const client = lan.hosts[2].ns;
  const neigh = () => sh(['ip', '-n', client, 'neigh', 'show', VIP]);
  lan.udp(2, VIP);
  assert.notEqual(await waitFor(() => neigh().includes(`lladdr ${lan.mac(0)}`), 3000), null, neigh());
  await sleep(1500); // past the neighbour entry's locktime
  a.kill('SIGKILL');
  assert.notEqual(await waitFor(() => b.state() === 'MASTER', 5000), null);
  const learnt = await waitFor(() => neigh().includes(`lladdr ${lan.mac(1)}`), 3000);
  assert.notEqual(learnt, null, `neighbour entry: ${neigh()}`);
});

test('gratuitous ARP schedule: garp_master_repeat at takeover, again after garp_master_delay, then garp_master_refresh', async (t) => {
  if (!prerequisites(t, ...gates(), commandUnavailable('tcpdump'))) return;
  const lan = Topology.lan(2);
  t.after(() => lan.cleanup());
  const cap = spawn('ip', ['netns', 'exec', lan.hosts[1].ns, 'tcpdump', '-l', '-n', '-tt', '-i', 'eth0', 'arp'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  t.after(() => cap.kill('SIGKILL'));
  const seen: number[] = [];
  let buf = '';
  cap.stdout.on('data', (b: Buffer) => {
    buf += b.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) if (l.includes(`who-has ${VIP} (ff:ff:ff:ff:ff:ff) tell ${VIP}`)) seen.push(Number(l.split(' ')[0]));
  });
  await sleep(1000); // tcpdump is listening
  const extra = '  garp_master_repeat 3\n  garp_master_delay 2\n  garp_master_refresh 3\n  garp_master_refresh_repeat 2\n';
  const a = lan.vrrpd(0, 'a', vrrpConf({ priority: 150, version: 3, advertInt: 0.2, state: 'MASTER', extra }));
  assert.notEqual(await waitFor(() => a.state() === 'MASTER', 5000), null, a.out);
  assert.notEqual(await waitFor(() => seen.length >= 3 + 3 + 2, 10_000), null, `GARPs seen: ${seen.length}`);
  const t0 = seen[0];
  const rel = seen.map((s) => s - t0);
  const burst = (from: number, to: number) => rel.filter((r) => r >= from && r < to).length;
  assert.equal(burst(0, 0.5), 3, `takeover burst: ${rel}`);
  assert.equal(burst(1.5, 2.5), 3, `after garp_master_delay: ${rel}`);
  assert.equal(burst(2.5, 3.5), 2, `first refresh: ${rel}`);
});
