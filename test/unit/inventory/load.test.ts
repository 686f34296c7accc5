// Valid inventories load with every default filled in; the examples load; rendered inventories
// round-trip through loadInventory.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, copyFileSync, writeFileSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadInventory, checkInventoryText } from '../../../inventory/load.ts';
import { renderInventoryYaml } from '../../../inventory/render.ts';
import type { InventoryFile } from '../../../inventory/schema.ts';
import { groupHosts } from '../../../inventory/types.ts';

const here = dirname(fileURLToPath(import.meta.url));
const examples = join(here, '..', '..', '..', 'inventory', 'examples');
const work = mkdtempSync(join(tmpdir(), 'hasetup-inv-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Writes text as inventory.yaml in a new folder of its own; returns its path. */
function write(text: string): string {
  const f = join(mkdtempSync(join(work, 'case-')), 'inventory.yaml');
  writeFileSync(f, text);
  return f;
}

test('the minimal fixture loads with every default filled in', async () => {
  const dir = mkdtempSync(join(work, 'min-'));
  const file = join(dir, 'inventory.yaml');
  copyFileSync(join(here, 'fixtures', 'valid-minimal.yaml'), file);
  const inv = await loadInventory(file);
  const ssh = (host: string) => ({
    user: 'root',
    port: 22,
    become: false,
    connectTimeout: 10,
    knownHosts: join(dir, '.hasetup', 'known_hosts'),
    host,
  });
  const { secrets, ...rest } = inv;
  assert.deepEqual(rest, {
    file,
    cluster: 'webfarm',
    vip: { address: '10.213.0.100', prefix: 24, interface: 'eth0' },
    vrrp: { routerId: 51, advertInt: 1, version: 3, unicast: false },
    runtime: 'bundled',
    hosts: [
      { name: 'lb01', address: '10.213.0.11', group: 'lb', ssh: ssh('10.213.0.11'), priority: 150 },
      { name: 'lb02', address: '10.213.0.12', group: 'lb', ssh: ssh('10.213.0.12'), priority: 100 },
      { name: 'web01', address: '10.213.0.21', group: 'web', ssh: ssh('10.213.0.21') },
      { name: 'web02', address: '10.213.0.22', group: 'web', ssh: ssh('10.213.0.22') },
      { name: 'db01', address: '10.213.0.31', group: 'db', ssh: ssh('10.213.0.31'), serverId: 1, primary: true },
    ],
    roles: {
      proxy: {
        balance: 'roundrobin',
        port: 80,
        maxconn: 4096,
        monitorPort: 8405,
        persistence: 'cookie',
        healthCheck: { path: '/health', inter: 500, fastinter: 250, timeout: 300, rise: 2, fall: 2 },
        timeouts: { connect: 5000, client: 50000, server: 50000, queue: 5000 },
        stats: { uri: '/haproxy?stats', port: 80, user: 'admin' },
      },
      apache: { workers: 'auto' },
      app: { php: { maxChildren: 'auto' }, keepReleases: 3 },
      mysql: { appDatabase: 'app', appUser: 'app', maxConnections: 'auto', binlogFormat: 'MIXED' },
      firewall: { adminCidrs: ['10.213.0.10/32'] },
    },
    failoverTest: {
      rate: 200,
      sloMs: 500,
      capacity: {
        stepSeconds: 4,
        refineSteps: 2,
        floodFactors: [2, 4],
        floodSeconds: 15,
        oneNode: true,
        singleBox: true,
        connections: 4096,
      },
      thresholds: {
        webFailedRequests: 0,
        lbHardTakeoverMs: 1000,
        lbGracefulTakeoverMs: 300,
        spikeErrors: 0,
        floodResets: 0,
        floodTimeouts: 0,
        flood502: 0,
        floodEarly503: 0,
        tooManyConnections: 0,
        floodServedRatio: 0.8,
        scaleRatio: 1.8,
      },
    },
  });
  assert.equal(secrets.file, join(dir, 'inventory.secrets.yaml'));
});

test('roles.app: PHP off; a site folder resolved next to the inventory; bad values located', async () => {
  const base = readFileSync(join(here, 'fixtures', 'valid-minimal.yaml'), 'utf8');
  const off = await loadInventory(write(base.replace(/^roles:\n/m, 'roles:\n  app: { php: false }\n')));
  assert.equal(off.roles.app.php, false);
  // cookie persistence by default with PHP (its sessions are files on a node), none without; either when asked
  assert.equal(off.roles.proxy.persistence, 'none');
  assert.equal((await loadInventory(write(base))).roles.proxy.persistence, 'cookie');
  const asked = base.replace(/^roles:\n/m, 'roles:\n  proxy: { persistence: none }\n');
  assert.equal((await loadInventory(write(asked))).roles.proxy.persistence, 'none');
  const wrong = checkInventoryText(base.replace(/^roles:\n/m, 'roles:\n  proxy: { persistence: sticky }\n'), 'inv.yaml');
  assert.equal(wrong.ok, false);
  const site = write(base.replace(/^roles:\n/m, 'roles:\n  app: { source: ./site, keep_releases: 5, php: { max_children: 12 } }\n'));
  const inv = await loadInventory(site);
  assert.deepEqual(inv.roles.app, { php: { maxChildren: 12 }, source: join(dirname(site), 'site'), keepReleases: 5 });
  const bad = checkInventoryText(base.replace(/^roles:\n/m, 'roles:\n  app: { php: yes, keep_releases: 1 }\n'), 'inv.yaml');
  assert.equal(bad.ok, false);
  const msgs = bad.ok ? [] : bad.errors.map((e) => `${e.path}: ${e.message}`);
  assert.ok(
    msgs.some((m) => /^roles\.app\.php: expected false or a mapping/.test(m)),
    msgs.join('\n'),
  );
  assert.ok(
    msgs.some((m) => /^roles\.app\.keep_releases: expected an integer from 2 to 100/.test(m)),
    msgs.join('\n'),
  );
});

test('per-host SSH settings, paths, priorities, server ids and other defaults', async () => {
  const file = write(`cluster: c1
vip: { address: 10.1.0.100/16, interface: ens3 }
vrrp: { version: 3, advert_int: 0.25, unicast: true, router_id: 7 }
runtime: haproxy
ssh: { user: deploy, private_key: keys/id, known_hosts: kh, connect_timeout: 3 }
hosts:
  lb:
    - { name: lb-a, address: 10.1.0.1 }
    - { name: lb-b, address: 10.1.9.2, priority: 200, ssh: { host: 127.0.0.1, port: 2222, user: root, private_key: ~/k2 } }
  web:
    - { name: w1, address: 10.2.0.1, ssh: { become: false } }
  db:
    - { name: d1, address: 10.3.0.1 }
    - { name: d2, address: 10.3.0.2 }
    - { name: d3, address: 10.3.0.3, server_id: 10 }
roles:
  proxy: { port: 8080, stats: { port: 8404 }, health_check: { path: /ok } }
  apache: { workers: 64 }
  mysql: { binlog_format: ROW }
  firewall: { admin_cidrs: [10.0.0.5, 192.0.2.0/24] }
`);
  const dir = dirname(file);
  const inv = await loadInventory(file);
  assert.deepEqual(inv.vip, { address: '10.1.0.100', prefix: 16, interface: 'ens3' });
  assert.deepEqual(inv.vrrp, { routerId: 7, advertInt: 0.25, version: 3, unicast: true });
  assert.equal(inv.runtime, 'haproxy');
  const [a, b] = groupHosts(inv, 'lb');
  assert.deepEqual(a.ssh, {
    user: 'deploy',
    port: 22,
    become: true,
    connectTimeout: 3,
    knownHosts: join(dir, 'kh'),
    host: '10.1.0.1',
    privateKey: join(dir, 'keys/id'),
  });
  assert.deepEqual(b.ssh, {
    user: 'root',
    port: 2222,
    become: false,
    connectTimeout: 3,
    knownHosts: join(dir, 'kh'),
    host: '127.0.0.1',
    privateKey: join(homedir(), 'k2'),
  });
  assert.equal(a.priority, 150);
  assert.equal(b.priority, 200);
  assert.equal(groupHosts(inv, 'web')[0].ssh.become, false);
  assert.deepEqual(
    groupHosts(inv, 'db').map((h) => [h.name, h.serverId, h.primary]),
    [
      ['d1', 1, true],
      ['d2', 2, false],
      ['d3', 10, false],
    ],
  );
  assert.deepEqual(
    inv.hosts.map((h) => h.name),
    ['lb-a', 'lb-b', 'w1', 'd1', 'd2', 'd3'],
  );
  assert.deepEqual(inv.roles.proxy.stats, { uri: '/haproxy?stats', port: 8404, user: 'admin' });
  assert.equal(inv.roles.proxy.port, 8080);
  assert.equal(inv.roles.proxy.healthCheck.path, '/ok');
  assert.equal(inv.roles.apache.workers, 64);
  assert.equal(inv.roles.mysql.binlogFormat, 'ROW');
  assert.deepEqual(inv.roles.firewall.adminCidrs, ['10.0.0.5/32', '192.0.2.0/24']);
});

test('the examples load', async () => {
  const names = readdirSync(examples).filter((f) => f.endsWith('.yaml') && !f.includes('.secrets.'));
  assert.ok(names.includes('seed.yaml') && names.includes('lab.yaml') && names.includes('lab-replica.yaml'), names.join(' '));
  for (const name of names) {
    const dir = mkdtempSync(join(work, 'ex-'));
    copyFileSync(join(examples, name), join(dir, name));
    const inv = await loadInventory(join(dir, name));
    assert.equal(groupHosts(inv, 'lb').length, 2, name);
  }
});

test('the lab example is the lab plan', async () => {
  const dir = mkdtempSync(join(work, 'lab-'));
  copyFileSync(join(examples, 'lab.yaml'), join(dir, 'lab.yaml'));
  const inv = await loadInventory(join(dir, 'lab.yaml'));
  assert.deepEqual(
    inv.hosts.map((h) => `${h.name}=${h.address}`),
    ['lb01=10.213.0.11', 'lb02=10.213.0.12', 'web01=10.213.0.21', 'web02=10.213.0.22', 'db01=10.213.0.31'],
  );
  assert.deepEqual(inv.vip, { address: '10.213.0.100', prefix: 24, interface: 'eth0' });
  assert.deepEqual(inv.roles.firewall.adminCidrs, ['10.213.0.10/32']);
});

test('the replica example has 3 web nodes, a primary and a replica', async () => {
  const dir = mkdtempSync(join(work, 'rep-'));
  copyFileSync(join(examples, 'lab-replica.yaml'), join(dir, 'lab-replica.yaml'));
  const inv = await loadInventory(join(dir, 'lab-replica.yaml'));
  assert.equal(groupHosts(inv, 'web').length, 3);
  assert.deepEqual(
    groupHosts(inv, 'db').map((h) => [h.name, h.serverId, h.primary]),
    [
      ['db01', 1, true],
      ['db02', 2, false],
    ],
  );
  assert.equal(inv.secrets.file, join(dir, 'lab-replica.secrets.yaml'));
});

test('a rendered inventory has comments and round-trips through loadInventory', async () => {
  const model: InventoryFile = {
    cluster: 'lab',
    vip: { address: '10.213.0.100/24', interface: 'eth0' },
    vrrp: { router_id: 51, advert_int: 1 },
    ssh: { user: 'root', private_key: './id_ed25519' },
    hosts: {
      lb: [
        { name: 'lb01', address: '10.213.0.11', ssh: { host: '127.0.0.1', port: 2201 } },
        { name: 'lb02', address: '10.213.0.12', priority: 90 },
      ],
      web: [{ name: 'web01', address: '10.213.0.21' }],
      db: [{ name: 'db01', address: '10.213.0.31' }],
    },
    roles: { proxy: { stats: { uri: '/haproxy?stats' } }, firewall: { admin_cidrs: ['10.213.0.10/32'] } },
  };
  const text = renderInventoryYaml(model);
  assert.match(text, /^# hasetup inventory/);
  assert.match(text, /^# lb: exactly 2 load balancers/m);
  assert.match(text, /^ {4}- \{ name: lb01, address: 10\.213\.0\.11, ssh: \{ host: 127\.0\.0\.1, port: 2201 \} \}$/m);
  const file = write(text);
  const inv = await loadInventory(file);
  assert.equal(inv.cluster, 'lab');
  assert.deepEqual(
    inv.hosts.map((h) => [h.name, h.address, h.ssh.host, h.ssh.port, h.priority]),
    [
      ['lb01', '10.213.0.11', '127.0.0.1', 2201, 150],
      ['lb02', '10.213.0.12', '10.213.0.12', 22, 90],
      ['web01', '10.213.0.21', '10.213.0.21', 22, undefined],
      ['db01', '10.213.0.31', '10.213.0.31', 22, undefined],
    ],
  );
  assert.equal(inv.hosts[0].ssh.privateKey, join(dirname(file), 'id_ed25519'));
  assert.equal(inv.roles.proxy.stats.uri, '/haproxy?stats');
});

test('checkInventoryText validates text without touching the disk', () => {
  const bad = checkInventoryText('cluster: x\n', 'new.yaml');
  assert.equal(bad.ok, false);
  if (!bad.ok)
    assert.deepEqual(
      bad.errors.map((e) => `${e.line}:${e.col} ${e.path}: ${e.message}`),
      ['1:1 vip: missing (required)', '1:1 hosts: missing (required)', '1:1 roles: missing (required)'],
    );
});

test('VRRP defaults: version 3 with a 0.2 s interval; version 2 alone defaults to 1 s', async () => {
  const base = readFileSync(join(here, 'fixtures', 'valid-minimal.yaml'), 'utf8').replace(/ {2}advert_int: 1\n/, '');
  const v3 = await loadInventory(write(base));
  assert.deepEqual(v3.vrrp, { routerId: 51, advertInt: 0.2, version: 3, unicast: false });
  const v2 = await loadInventory(write(base.replace('  router_id: 51\n', '  router_id: 51\n  version: 2\n')));
  assert.deepEqual(v2.vrrp, { routerId: 51, advertInt: 1, version: 2, unicast: false });
});
