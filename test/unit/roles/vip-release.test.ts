// A dead VRRP daemon takes its VIP with it, for both engines: hasetup-vrrpd's unit and keepalived's
// drop-in remove the inventory's VIP (and nothing else) after every end of the daemon, without ever
// failing the unit, and render the same on every apply.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import runtime from '../../../roles/runtime/index.ts';
import { vipRelease, KEEPALIVED_DROPIN } from '../../../roles/lb.ts';
import { roleContext } from '../../../cli/engine/role.ts';
import type { PlanContext } from '../../../cli/engine/ops.ts';
import type { Facts } from '../../../cli/engine/facts.ts';
import type { Inventory } from '../../../inventory/types.ts';
import { seedCluster } from '../../helpers/fixture-role.ts';

const facts = { hostname: 'lb01', arch: 'x86_64', memoryMb: 1024, container: true, records: {} } as unknown as Facts;
const ctx: PlanContext = { facts, earlierChange: false };

const cluster = (over: Partial<Inventory> = {}): Inventory => seedCluster(over, 'ens18');

function task(inv: Inventory, name: string) {
  const t = runtime.tasks(roleContext(runtime, inv.hosts[0], inv, facts)).find((x) => x.name === name);
  assert.ok(t, `task ${name}`);
  return t;
}

/** What a file task writes, and that planning it again over what it wrote changes nothing. */
function rendered(inv: Inventory, name: string): string {
  const t = task(inv, name);
  const p = t.op.plan('absent', ctx);
  assert.ok(p.changed && p.stdin !== undefined);
  const text = p.stdin.toString();
  const again = task(inv, name).op.plan('absent', ctx);
  assert.ok(again.changed && again.stdin?.toString() === text, `${name} renders the same twice`);
  const sha = createHash('sha256').update(text).digest('hex');
  assert.equal(t.op.plan(`root root 644\n${sha}`, ctx).changed, false, `${name} unchanged on the next apply`);
  return text;
}

const directives = (unit: string, key: string) =>
  unit
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));

test("the release command: the inventory's VIP, with its prefix, from its interface, and nothing else", () => {
  assert.equal(vipRelease(cluster()), '/sbin/ip -4 addr del 10.0.0.100/24 dev ens18');
  const other = cluster();
  other.vip = { address: '192.168.7.9', prefix: 32, interface: 'eth1' };
  assert.equal(vipRelease(other), '/sbin/ip -4 addr del 192.168.7.9/32 dev eth1');
});

test('hasetup-vrrpd.service: the VIP removed after every end of the daemon (ExecStopPost, never failing the unit), restarted on a failure', () => {
  const inv = cluster();
  const unit = rendered(inv, 'unit hasetup-vrrpd');
  assert.deepEqual(directives(unit, 'ExecStopPost'), ['-/sbin/ip -4 addr del 10.0.0.100/24 dev ens18']);
  // the graceful path (priority 0, the daemon removes the VIP itself) comes first: SIGTERM, then the release
  assert.deepEqual(directives(unit, 'KillSignal'), ['SIGTERM']);
  assert.deepEqual(directives(unit, 'Restart'), ['on-failure']);
  // the release runs as the daemon's user: it holds CAP_NET_ADMIN and may use netlink
  assert.match(directives(unit, 'AmbientCapabilities')[0], /\bCAP_NET_ADMIN\b/);
  assert.match(directives(unit, 'RestrictAddressFamilies')[0], /\bAF_NETLINK\b/);
  assert.deepEqual(task(inv, 'unit hasetup-vrrpd').notify, ['reload systemd', 'restart the runtime']);
  // no other address is ever named
  assert.deepEqual(unit.match(/\d+\.\d+\.\d+\.\d+/g), ['10.0.0.100']);
});

test("keepalived.service's drop-in: the same release after every end, and before a start; installed with a daemon-reload", () => {
  const inv = cluster({ runtime: 'haproxy' });
  const dropin = rendered(inv, 'keepalived drop-in (VIP released when it dies)');
  const release = `-${vipRelease(inv)}`;
  assert.deepEqual(directives(dropin, 'ExecStopPost'), [release]);
  assert.deepEqual(directives(dropin, 'ExecStartPre'), [release]);
  assert.deepEqual(directives(dropin, 'Restart'), ['on-failure']);
  assert.match(dropin, /^\[Service\]$/m);
  assert.deepEqual(dropin.match(/\d+\.\d+\.\d+\.\d+/g), ['10.0.0.100', '10.0.0.100']);
  const t = task(inv, 'keepalived drop-in (VIP released when it dies)');
  assert.equal(t.op.subject, KEEPALIVED_DROPIN);
  assert.deepEqual(t.notify, ['reload systemd']);
  // its folder first
  const names = runtime.tasks(roleContext(runtime, inv.hosts[0], inv, facts)).map((x) => x.name);
  assert.ok(names.indexOf('keepalived.service.d') < names.indexOf('keepalived drop-in (VIP released when it dies)'));
  // the handler that reloads systemd exists for both engines
  for (const engine of [inv, cluster()])
    assert.ok(runtime.handlers!(roleContext(runtime, engine.hosts[0], engine, facts)).some((h) => h.name === 'reload systemd'));
});

test('the bundled engine removes the drop-in with keepalived; the haproxy engine removes the bundled units', () => {
  const bundled = task(cluster(), 'no haproxy or keepalived').op.plan('path /etc/systemd/system/keepalived.service.d', ctx);
  assert.ok(bundled.changed);
  assert.match(bundled.script ?? '', /^rm -rf -- '?\/etc\/systemd\/system\/keepalived\.service\.d'?$/m);
  const haproxy = task(cluster({ runtime: 'haproxy' }), 'no bundled runtime').op.plan('running hasetup-vrrpd', ctx);
  assert.ok(haproxy.changed);
  assert.match(haproxy.script ?? '', /^rm -rf -- '?\/etc\/systemd\/system\/hasetup-vrrpd\.service'?$/m);
});
