// Role apache: the MPM sizing formula, the a2enmod/a2ensite operation (probed links in -> commands
// out) and what the role renders for a web node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mpmSizing, SIZING } from '../../../roles/apache/sizing.ts';
import { apacheEnabled } from '../../../roles/apache/a2.ts';
import apache, { validateInPlace } from '../../../roles/apache/index.ts';
import { roleContext } from '../../../cli/engine/role.ts';
import { PlanError, type PlanContext } from '../../../cli/engine/ops.ts';
import type { Facts } from '../../../cli/engine/facts.ts';
import type { Host } from '../../../inventory/types.ts';
import { fixtureInventory } from '../../helpers/fixture-role.ts';

const facts = { hostname: 'web01', container: true, memoryMb: 1024 } as unknown as Facts;
const ctx: PlanContext = { facts, earlierChange: false };

// ---- sizing ---------------------------------------------------------------------------------

test('sizing: 1 GB -> (1024 - 256) / 32 = 24 children of 25 threads = 600 workers', () => {
  const s = mpmSizing(1024, 'auto', 4096);
  assert.equal(s.serverLimit, 24);
  assert.equal(s.threadsPerChild, 25);
  assert.equal(s.maxRequestWorkers, 600);
  assert.match(s.explain, /memory 1024 MB - reserve 256 MB = 768 MB \/ 32 MB per child = 24 children/);
});

test('sizing: the reserve grows to 25% of memory on bigger hosts', () => {
  // 8 GB: reserve 2048, (8192 - 2048) / 32 = 192 children, below the cap of ceil(8192 / 25) = 328
  const s = mpmSizing(8192, 'auto', 8192);
  assert.equal(s.serverLimit, 192);
  assert.equal(s.maxRequestWorkers, 4800);
});

test('sizing: never more workers than the LBs can send (proxy maxconn)', () => {
  const s = mpmSizing(24_000, 'auto', 4096);
  assert.equal(s.serverLimit, Math.ceil(4096 / 25));
  assert.equal(s.maxRequestWorkers, 164 * 25);
  assert.match(s.explain, /capped at ceil\(proxy maxconn 4096 \/ 25\) = 164/);
});

test('sizing: tiny hosts keep the floor of two children', () => {
  for (const mem of [0, 128, 256, 300]) {
    const s = mpmSizing(mem, 'auto', 4096);
    assert.equal(s.serverLimit, SIZING.minChildren, `memory ${mem}`);
    assert.equal(s.maxRequestWorkers, 50);
  }
  assert.match(mpmSizing(128, 'auto', 4096).explain, /raised to the floor of 2/);
});

test('sizing: more memory never means fewer workers', () => {
  let last = 0;
  for (let mem = 0; mem <= 65_536; mem += 97) {
    const w = mpmSizing(mem, 'auto', 1_000_000).maxRequestWorkers;
    assert.ok(w >= last, `memory ${mem}: ${w} < ${last}`);
    last = w;
  }
});

test('sizing: a number from the inventory wins, rounded up to whole children', () => {
  assert.deepEqual(
    (({ serverLimit, threadsPerChild, maxRequestWorkers }) => ({ serverLimit, threadsPerChild, maxRequestWorkers }))(
      mpmSizing(512, 150, 4096),
    ),
    { serverLimit: 6, threadsPerChild: 25, maxRequestWorkers: 150 },
  );
  const odd = mpmSizing(512, 160, 4096);
  assert.equal(odd.serverLimit, 7);
  assert.equal(odd.maxRequestWorkers, 175);
  assert.match(odd.explain, /rounded up to 7 children of 25 threads/);
  const small = mpmSizing(512, 10, 4096);
  assert.equal(small.threadsPerChild, 10);
  assert.equal(small.serverLimit, 1);
  assert.equal(small.maxRequestWorkers, 10);
  assert.ok(small.maxSpareThreads >= small.minSpareThreads + small.threadsPerChild);
  assert.throws(() => mpmSizing(512, 0, 4096), /positive integer/);
});

// ---- a2enmod & co ---------------------------------------------------------------------------

test('a2: everything as wanted -> ok', () => {
  const op = apacheEnabled({ kind: 'mod', enable: ['mpm_event', 'remoteip'], disable: ['mpm_prefork'] });
  assert.deepEqual(op.plan('mpm_event enabled\nremoteip enabled\nmpm_prefork disabled', ctx), { changed: false });
});

test('a2: probe reads the links of each name', () => {
  const op = apacheEnabled({ kind: 'site', enable: ['hasetup'], disable: ['000-default'] });
  const p = op.probe();
  assert.match(p, /\/etc\/apache2\/sites-enabled\/hasetup\.conf/);
  assert.match(p, /\/etc\/apache2\/sites-available\/000-default\.conf/);
  assert.match(apacheEnabled({ kind: 'mod', enable: ['remoteip'] }).probe(), /mods-enabled\/remoteip\.load/);
});

test('a2: switching the MPM disables the old one before enabling the new one', () => {
  const op = apacheEnabled({ kind: 'mod', enable: ['mpm_event', 'remoteip'], disable: ['mpm_prefork', 'mpm_worker'] });
  const p = op.plan('mpm_event disabled\nremoteip enabled\nmpm_prefork enabled\nmpm_worker disabled', ctx);
  assert.ok(p.changed);
  if (!p.changed) return;
  assert.equal(p.script, 'a2dismod -q -f mpm_prefork && a2enmod -q mpm_event');
  assert.equal(p.why, 'disable mpm_prefork, enable mpm_event');
});

test('a2: sites and confs use a2ensite/a2dissite and a2enconf/a2disconf', () => {
  const s = apacheEnabled({ kind: 'site', enable: ['hasetup'], disable: ['000-default'] }).plan(
    'hasetup disabled\n000-default enabled',
    ctx,
  );
  assert.ok(s.changed && s.script === 'a2dissite -q 000-default && a2ensite -q hasetup');
  const c = apacheEnabled({ kind: 'conf', enable: ['hasetup'], disable: ['security'] }).plan('hasetup enabled\nsecurity enabled', ctx);
  assert.ok(c.changed && c.script === 'a2disconf -q security');
});

test('a2: a name that is not available fails, unless an earlier change (the package) brings it', () => {
  const op = apacheEnabled({ kind: 'mod', enable: ['remoteip'] });
  assert.throws(
    () => op.plan('remoteip missing', ctx),
    (e: Error) => e instanceof PlanError && /remoteip: not available/.test(e.message),
  );
  const p = op.plan('remoteip missing', { ...ctx, earlierChange: true });
  assert.ok(p.changed && p.script === 'a2enmod -q remoteip');
});

test('a2: names are plain words', () => {
  assert.throws(() => apacheEnabled({ kind: 'mod', enable: ['x; rm -rf /'] }), /not a plain name/);
});

// ---- the role -------------------------------------------------------------------------------

function cluster() {
  const h = (name: string, address: string, group: Host['group']): Host => ({
    name,
    address,
    group,
    ssh: { host: address, user: 'root', port: 22, become: false, connectTimeout: 5 },
  });
  const hosts = [
    h('lb01', '10.9.0.11', 'lb'),
    h('lb02', '10.9.0.12', 'lb'),
    h('web01', '10.9.0.21', 'web'),
    h('web02', '10.9.0.22', 'web'),
    { ...h('db01', '10.9.0.31', 'db'), serverId: 1, primary: true },
  ];
  return fixtureInventory([], { hosts });
}

test('role: applies to web nodes only', () => {
  const inv = cluster();
  assert.deepEqual(
    inv.hosts.filter((x) => apache.appliesTo(x, inv)).map((x) => x.name),
    ['web01', 'web02'],
  );
});

test('role: renders the site, the server settings and the MPM for the host', () => {
  const inv = cluster();
  const web01 = inv.hosts.find((x) => x.name === 'web01') as Host;
  const tasks = apache.tasks(roleContext(apache, web01, inv, facts));
  const content = (path: string) => {
    const t = tasks.find((x) => x.op.subject === path);
    assert.ok(t, `no task for ${path}`);
    const p = t.op.plan('absent', ctx);
    assert.ok(p.changed);
    return { text: String(p.changed ? p.stdin : ''), script: p.changed ? p.script : '', notify: t.notify ?? [] };
  };
  const conf = content('/etc/apache2/conf-available/hasetup.conf');
  assert.match(conf.text, /^ServerTokens Prod$/m);
  assert.match(conf.text, /^ServerSignature Off$/m);
  assert.match(conf.text, /^RemoteIPHeader X-Forwarded-For$/m);
  // the LBs, and only them, may name the client
  assert.deepEqual(conf.text.match(/^RemoteIPInternalProxy .*$/gm), [
    'RemoteIPInternalProxy 10.9.0.11',
    'RemoteIPInternalProxy 10.9.0.12',
    'RemoteIPInternalProxy 10.0.0.100',
  ]);
  assert.match(conf.text, /^ServerName web01$/m);
  assert.match(conf.text, /^LogFormat "%a /m);
  const v = conf.script.indexOf('cp "$tmp" "$d/conf-available/hasetup.conf" && APACHE_CONFDIR="$d" apache2ctl -t');
  assert.ok(v > 0 && v < conf.script.indexOf('mv -f'), 'validated with apache2ctl, the candidate in place, before the rename');
  assert.deepEqual(conf.notify, ['reload apache2']);

  const site = content('/etc/apache2/sites-available/hasetup.conf');
  assert.match(site.text, /Alias "\/health" "\/var\/www\/hasetup\/health\.txt"/);
  assert.match(site.text, /Header always set X-Served-By "web01"/);
  assert.match(site.text, /<Location "\/server-status">[\s\S]*CONN_REMOTE_ADDR\} -ipmatch '127\.0\.0\.0\/8'[\s\S]*<\/Location>/);
  assert.match(site.text, /CustomLog \$\{APACHE_LOG_DIR\}\/access\.log hasetup env=!hasetup_health/);

  assert.match(content('/var/www/hasetup/index.html').text, /served by web01 \(10\.9\.0\.21\)/);
  const mpm = content('/etc/apache2/mods-available/mpm_event.conf');
  // with PHP: the pool's 9 children (1 GB) + 15 of headroom, in whole children of 25 (roles/sizing.ts)
  assert.match(mpm.text, /MaxRequestWorkers\s+50$/m);
  assert.match(mpm.text, /ServerLimit\s+2$/m);
  assert.match(mpm.text, /^# MaxRequestWorkers 50: the pool's 9 \+ 4 for the LBs' health checks/m);
  assert.deepEqual(mpm.notify, ['restart apache2']);
  assert.ok(tasks.some((t) => t.name === 'event MPM: MaxRequestWorkers 50'));
});

test('role: handlers check the whole configuration before any reload or restart', () => {
  const inv = cluster();
  const web01 = inv.hosts.find((x) => x.name === 'web01') as Host;
  const hs = apache.handlers?.(roleContext(apache, web01, inv, facts)) ?? [];
  assert.deepEqual(
    hs.map((h) => h.name),
    ['restart apache2', 'reload apache2'],
  );
  for (const h of hs) assert.match(h.script, /^apache2ctl configtest && systemctl /);
});

test('validation: the whole configuration, in a copy with the candidate in place', () => {
  assert.throws(() => validateInPlace('/etc/other.conf'), /not under \/etc\/apache2/);
  const cmd = validateInPlace('/etc/apache2/sites-available/hasetup.conf');
  assert.equal(
    cmd,
    'd=$(mktemp -d) && { cp -a /etc/apache2/. "$d"/ && cp %s "$d/sites-available/hasetup.conf" && APACHE_CONFDIR="$d" apache2ctl -t; rc=$?; rm -rf "$d"; [ $rc -eq 0 ]; }',
  );
  // run it with a stand-in apache2ctl that reports which site file it saw, over a fake /etc/apache2
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-apache-validate-'));
  try {
    const root = join(dir, 'etc-apache2');
    mkdirSync(join(root, 'sites-available'), { recursive: true });
    writeFileSync(join(root, 'sites-available', 'hasetup.conf'), 'old, broken by hand\n');
    writeFileSync(join(dir, 'candidate'), 'good\n');
    writeFileSync(
      join(dir, 'apache2ctl'),
      `#!/bin/sh\ncp "$APACHE_CONFDIR/sites-available/hasetup.conf" ${dir}/seen\necho "$APACHE_CONFDIR" > ${dir}/confdir\ngrep -q good "$APACHE_CONFDIR/sites-available/hasetup.conf"\n`,
      { mode: 0o755 },
    );
    const run = (candidate: string) =>
      spawnSync('sh', ['-c', cmd.replace('/etc/apache2/.', `${root}/.`).replace('%s', candidate)], {
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
      }).status;
    assert.equal(run(join(dir, 'candidate')), 0);
    assert.equal(readFileSync(join(dir, 'seen'), 'utf8'), 'good\n', 'apache2ctl saw the candidate in place of the live file');
    assert.equal(
      readFileSync(join(root, 'sites-available', 'hasetup.conf'), 'utf8'),
      'old, broken by hand\n',
      'the live file is untouched',
    );
    assert.ok(!existsSync(readFileSync(join(dir, 'confdir'), 'utf8').trim()), 'the copy is removed');
    writeFileSync(join(dir, 'bad'), 'bad\n');
    assert.notEqual(run(join(dir, 'bad')), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('role: a health path Apache cannot serve as a plain file is refused with the reason', () => {
  const inv = cluster();
  inv.roles.proxy.healthCheck.path = '/health"x';
  const web01 = inv.hosts.find((x) => x.name === 'web01') as Host;
  assert.throws(() => apache.tasks(roleContext(apache, web01, inv, facts)), /plain path such as \/health/);
});
