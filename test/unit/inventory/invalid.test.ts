// Invalid inventories: each fixture gives exactly the expected errors, at file:line:col: field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { loadInventory, InventoryError } from '../../../inventory/load.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const rel = (name: string) => relative(process.cwd(), join(fixtures, name));

// name -> expected lines, "@" standing for the fixture's path as given to loadInventory.
const cases: Record<string, string[]> = {
  'unknown-key.yaml': ['@:2:1: vip.interface: missing (required)', '@:4:3: vip.interfce: unknown key (did you mean "interface"?)'],
  'unknown-top-key.yaml': ['@:5:1: vrp: unknown key (did you mean "vrrp"?)'],
  'wrong-type.yaml': ['@:11:53: hosts.lb[1].priority: expected an integer from 1 to 254, got "high"'],
  'duplicate-name.yaml': ['@:14:15: hosts.web[1].name: duplicate host name "web01": already used by hosts.web[0] (line 13)'],
  'duplicate-address.yaml': ['@:16:30: hosts.db[0].address: duplicate address 10.213.0.21: already used by web01 (line 13)'],
  'vip-outside-subnet.yaml': [
    "@:3:12: vip.address: 10.214.0.100/24 is outside the subnet of load balancer lb01 (10.213.0.11, line 10): the VIP must be in the load balancers' subnet",
    "@:3:12: vip.address: 10.214.0.100/24 is outside the subnet of load balancer lb02 (10.213.0.12, line 11): the VIP must be in the load balancers' subnet",
  ],
  'vip-host-address.yaml': ['@:3:12: vip.address: 10.213.0.22 is also the address of web02 (line 14): the VIP must be an unused address'],
  'equal-priorities.yaml': [
    '@:11:53: hosts.lb[1].priority: same VRRP priority as lb01 (150): the two load balancers need different priorities',
  ],
  'duplicate-server-id.yaml': ['@:17:54: hosts.db[1].server_id: duplicate MySQL server id 1: already used by db01 (line 16)'],
  'duplicate-server-id-default.yaml': [
    '@:17:7: hosts.db[1]: its default MySQL server id 2 is already used by db01 (line 16): give it a unique server_id',
  ],
  'empty-web.yaml': ['@:12:8: hosts.web: expected at least 1 web host, got 0'],
  'three-lbs.yaml': ['@:12:7: hosts.lb[2]: expected exactly 2 load balancers, got 3'],
  'bad-cidr.yaml': [
    '@:19:35: roles.firewall.admin_cidrs[1]: expected an IPv4 CIDR like 10.0.0.0/24 (or a single address), got "10.213.0.0/33"',
    '@:19:50: roles.firewall.admin_cidrs[2]: expected an IPv4 CIDR like 10.0.0.0/24 (or a single address), got "300.1.1.0/24"',
  ],
  'fractional-advert-v2.yaml': [
    '@:7:15: vrrp.advert_int: expected whole seconds with VRRP version 2 (a fractional interval needs version: 3), got 0.5',
  ],
  'advert-v3-precision.yaml': [
    '@:7:15: vrrp.advert_int: expected a multiple of 0.01 seconds from 0.01 to 40.95 with VRRP version 3, got 0.125',
  ],
  'bad-host-ssh.yaml': [
    '@:11:71: hosts.lb[1].ssh.port: expected an integer from 1 to 65535, got 0',
    '@:11:74: hosts.lb[1].ssh.hostname: unknown key (did you mean "host"?)',
    '@:11:95: hosts.lb[1].ssh.become: expected true or false, got "yes"',
    '@:18:22: roles.mysql.app_user: expected a user other than root (the application user gets its own password), got "root"',
  ],
  'bad-syntax.yaml': ['@:15:3: YAML syntax error: Flow map in block collection must be sufficiently indented and end with a }'],
  'duplicate-key.yaml': ['@:2:1: key "cluster" is written twice in this mapping (YAML keys must be unique)'],
  'alias-bomb.yaml': ['@:3:11: aliases expanding into more than 100 copies: refused (a file that grows without bound when read)'],
  'bad-values.yaml': [
    '@:17:10: runtime: expected one of bundled, haproxy, got "nginx"',
    '@:20:14: roles.proxy.balance: expected one of roundrobin, leastconn, source, uri, first, got "random"',
    '@:21:11: roles.proxy.port: expected an integer from 1 to 65535, got "80"',
    '@:22:22: roles.apache.workers: expected "auto" or an integer from 1 to 100000, got "many"',
  ],
  'max-connections-low.yaml': [
    '@:20:22: roles.mysql.max_connections: 8 is below the 15 connections the cluster may open at once (2 web nodes x at least 2 PHP-FPM children, the floor of the pools sized from memory, x 1 connection + 1 for replication + 10 for the admins): MariaDB would refuse the rest with "Too many connections"; raise it, or set it to auto',
  ],
  'max-connections-below-pools.yaml': [
    '@:23:22: roles.mysql.max_connections: 100 is below the 131 connections the cluster may open at once (2 web nodes x 60 PHP-FPM children (roles.app.php.max_children, line 21) x 1 connection + 1 for replication + 10 for the admins): MariaDB would refuse the rest with "Too many connections"; raise it, or set it to auto',
  ],
  'children-above-workers.yaml': [
    '@:20:26: roles.app.php.max_children: 40 children need 55 Apache workers (40 PHP-FPM children + 2 per LB x 2 for the health checks + 1 for the operator + 10 for static files), above roles.apache.workers 50 (line 22): lower max_children or raise workers',
  ],
  'monitor-port-clash.yaml': [
    "@:20:5: roles.proxy: the tracker's port 8405 (roles.proxy.monitor_port, the proxy's answer to its VRRP tracker on 127.0.0.1) is also the stats port (roles.proxy.stats.port): give them different ports",
  ],
  'missing-fields.yaml': ['@:1:1: roles: missing (required)', '@:14:7: hosts.web[1].address: missing (required)'],
  'empty.yaml': ['@:1:1: the inventory is empty (expected a mapping with cluster, vip, hosts, roles...)'],
  // Schema and cluster errors together, in file order.
  'many-errors.yaml': [
    '@:1:10: cluster: expected a cluster name (lower-case letters, digits and inner dashes, at most 63), got "Web_Farm"',
    '@:6:14: vrrp.router_id: expected an integer from 1 to 255, got 300',
    '@:12:7: hosts.lb[2]: expected exactly 2 load balancers, got 3',
    '@:12:31: hosts.lb[2].address: duplicate address 10.213.0.11: already used by lb01 (line 10)',
    '@:14:44: hosts.web[0].priority: unknown key (allowed here: name, address, ssh)',
    '@:15:15: hosts.web[1].name: duplicate host name "web02": already used by hosts.lb[2] (line 12)',
  ],
};

for (const [name, expected] of Object.entries(cases)) {
  test(`invalid inventory ${name}`, async () => {
    const file = rel(name);
    const err = await loadInventory(file, { createSecrets: false }).then(
      () => assert.fail(`${name} loaded without error`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof InventoryError, String(err));
    const lines = expected.map((l) => l.replace('@', file));
    assert.equal(err.message, lines.join('\n'));
    assert.equal(err.errors.length, lines.length);
    for (const e of err.errors) {
      assert.equal(e.file, file);
      assert.ok(e.line >= 1 && e.col >= 1);
    }
    // Validation fails before anything else: no secrets file was generated.
    assert.equal(existsSync(join(fixtures, name.replace(/\.yaml$/, '.secrets.yaml'))), false);
  });
}

test('the issue fields name the field path and position separately', async () => {
  const file = rel('wrong-type.yaml');
  const err = (await loadInventory(file).catch((e: unknown) => e)) as InventoryError;
  assert.deepEqual(err.errors, [
    { file, line: 11, col: 53, path: 'hosts.lb[1].priority', message: 'expected an integer from 1 to 254, got "high"' },
  ]);
});

test('a missing inventory file is one clear error', async () => {
  const err = (await loadInventory('no-such-inventory.yaml').catch((e: unknown) => e)) as InventoryError;
  assert.ok(err instanceof InventoryError);
  assert.equal(err.message, 'no-such-inventory.yaml: cannot read the inventory: no such file');
});

test('a file of megabytes is refused at once, without being read whole', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-big-'));
  try {
    const file = join(dir, 'inventory.yaml');
    writeFileSync(file, `cluster: x\n${'# padding\n'.repeat(300_000)}`);
    const t0 = Date.now();
    await assert.rejects(
      loadInventory(file),
      (e: Error) =>
        e instanceof InventoryError &&
        /^.*inventory\.yaml:1:1: the file is 2\.9 MB; a cluster's file is a few kilobytes, and files over 1 MB are refused$/.test(
          e.message,
        ),
    );
    assert.ok(Date.now() - t0 < 5000, 'refused before parsing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
