// End-to-end in the lab with the replica (db02): the mysql role (with common and apache) applied by
// `hasetup apply` from the lab's controller namespace. db01 runs with the replication settings; the
// server is hardened; the app user connects from web01 and from no other address; a row written on
// db01 is read back on db02; the role's thread check fails when replication is broken and passes
// once it is repaired; a second apply changes nothing. (What the firewall refuses is the firewall
// role's test.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { labConfig, repoRoot } from '../../../cli/lab/config.ts';
import { loadInventory } from '../../../inventory/load.ts';
import type { Inventory } from '../../../inventory/types.ts';
import { ensureLab, labUnavailable, type Lab } from '../../helpers/lab.ts';
import { prerequisites } from '../../helpers/env.ts';

const TAGS = 'common,apache,mysql';
const HASETUP = join(repoRoot, 'bin', 'hasetup.js');
const DB01 = '10.213.0.31';
const skip = labUnavailable();

let lab: Lab | undefined;
let inv: Inventory | undefined;
before(async () => {
  if (skip) return;
  // the inventory in the lab's own state folder: labs of other names may share the checkout
  lab = await ensureLab({ replica: true, inventory: join(labConfig().stateDir, 'inventory.yaml') });
});
after(async () => {
  await lab?.release();
});

interface Recap {
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  skipped: number;
}
interface Result {
  host: string;
  role: string;
  task: string;
  status: string;
  message?: string;
}

async function apply(args: string[] = [], inventory?: string) {
  assert.ok(lab);
  const t0 = Date.now();
  const r = await lab.exec([process.execPath, HASETUP, 'apply', inventory ?? lab.inventory, '--tags', TAGS, '--json', ...args]);
  const ms = Date.now() - t0;
  try {
    const out = JSON.parse(r.stdout) as { hosts: Record<string, Recap>; results: Result[] };
    return { ...r, ms, hosts: out.hosts, results: out.results };
  } catch {
    throw new Error(`apply printed no JSON (exit ${r.code}): ${r.stdout.slice(-2000)} ${r.stderr.slice(-2000)}`);
  }
}

async function ssh(host: string, cmd: string): Promise<string> {
  assert.ok(lab);
  const r = await lab.ssh(host, cmd);
  assert.equal(r.code, 0, `${host}: ${cmd.slice(0, 200)}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function waitFor(cond: () => Promise<boolean>, seconds = 30): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  assert.fail(`condition not met within ${seconds} s`);
}

/** Root's client on a db host (unix socket), one value a line. */
const sql = (host: string, query: string) => ssh(host, `mariadb -N -B -e ${JSON.stringify(query)}`);

/** The app user's client on a host, over TCP to db01; the password in the environment, not argv. */
function asApp(query: string): string {
  assert.ok(inv);
  const pw = inv.secrets.mysqlAppPassword;
  return `MYSQL_PWD='${pw}' mariadb -h ${DB01} -u ${inv.roles.mysql.appUser} ${inv.roles.mysql.appDatabase} -N -B -e ${JSON.stringify(query)}`;
}

test('--check on the hosts as they are plans every task without failing, and changes nothing', async (t) => {
  if (!prerequisites(t, skip)) return;
  assert.ok(lab);
  const before = (await lab.ssh('db01', 'ls /etc/mysql/mariadb.conf.d/ 2>&1')).stdout;
  const r = await apply(['--check', '--diff']);
  assert.equal(r.code, 0, r.stderr + JSON.stringify(r.results.filter((x) => x.status === 'failed')));
  for (const [h, rc] of Object.entries(r.hosts)) assert.equal(rc.failed + rc.unreachable, 0, `${h}: ${JSON.stringify(rc)}`);
  assert.equal((await lab.ssh('db01', 'ls /etc/mysql/mariadb.conf.d/ 2>&1')).stdout, before);
});

test('apply of common, apache and mysql with a replica: no failure, the db hosts changed (a fresh lab, or a running one whose option files were removed)', async (t) => {
  if (!prerequisites(t, skip)) return;
  assert.ok(lab);
  // so that a lab that was already applied has something to change too (and MariaDB a reason to restart)
  for (const h of ['db01', 'db02']) await lab.ssh(h, 'rm -f /etc/mysql/mariadb.conf.d/60-hasetup.cnf');
  const r = await apply(['--diff']);
  assert.equal(r.code, 0, r.stderr + JSON.stringify(r.results.filter((x) => x.status === 'failed')));
  const secrets = Object.values(parse(readFileSync(lab.inventory.replace(/\.yaml$/, '.secrets.yaml'), 'utf8')) as Record<string, string>);
  assert.ok(secrets.length >= 5);
  for (const s of secrets) assert.ok(!(r.stdout + r.stderr).includes(s), 'a secret was printed');
  for (const [h, rc] of Object.entries(r.hosts)) assert.equal(rc.failed + rc.unreachable, 0, `${h}: ${JSON.stringify(rc)}`);
  assert.deepEqual(
    Object.keys(r.hosts)
      .filter((h) => !/^web0[3-9]$/.test(h))
      .sort(),
    ['db01', 'db02', 'lb01', 'lb02', 'web01', 'web02'],
  );
  for (const h of ['db01', 'db02']) assert.ok(r.hosts[h].changed > 0, `${h} changed`);
  inv = await loadInventory(lab.inventory);
  console.log(`# apply common+apache+mysql on 6 hosts (${lab.broughtUp ? 'fresh lab' : 'lab already up'}): ${r.ms} ms`);
});

test('SHOW VARIABLES on db01 and db02 shows the replication settings', async (t) => {
  if (!prerequisites(t, skip)) return;
  const vars = async (host: string) => {
    const out = await sql(host, 'SHOW GLOBAL VARIABLES');
    return new Map(
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t') as [string, string]),
    );
  };
  const v1 = await vars('db01');
  const want1: Record<string, string> = {
    server_id: '1',
    log_bin: 'ON',
    log_bin_basename: '/var/lib/mysql/mysql-bin',
    binlog_format: 'MIXED',
    sync_binlog: '1',
    innodb_flush_log_at_trx_commit: '1',
    relay_log: 'mysql-relay-bin',
    log_slave_updates: 'ON',
    bind_address: DB01,
    skip_name_resolve: 'ON',
    max_connections: '151', // auto: the web tier's pools + replication + admins, at least MariaDB's default
    read_only: 'OFF',
  };
  for (const [k, v] of Object.entries(want1)) assert.equal(v1.get(k), v, `db01 ${k}`);
  const v2 = await vars('db02');
  for (const [k, v] of Object.entries({ ...want1, server_id: '2', bind_address: '10.213.0.32', read_only: 'ON' }))
    assert.equal(v2.get(k), v, `db02 ${k}`);
});

test('hardened: no anonymous users, no test database, root by unix socket only', async (t) => {
  if (!prerequisites(t, skip)) return;
  for (const db of ['db01', 'db02']) {
    assert.equal(await sql(db, "SELECT COUNT(*) FROM mysql.user WHERE User = ''"), '0\n', db);
    assert.equal(await sql(db, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'test'"), '0\n', db);
    assert.equal(await sql(db, "SHOW CREATE USER 'root'@'localhost'"), 'CREATE USER `root`@`localhost` IDENTIFIED VIA unix_socket\n', db);
    // exactly the accounts the role manages, plus the two MariaDB keeps for itself
    assert.equal(
      await sql(db, "SELECT CONCAT(User, '@', Host) FROM mysql.user ORDER BY User, Host"),
      ['app@10.213.0.21', 'app@10.213.0.22', 'mariadb.sys@localhost', 'mysql@localhost', 'repl@10.213.0.32', 'root@localhost', ''].join(
        '\n',
      ),
      db,
    );
  }
  // root with a password, over TCP from the host itself: refused (unix socket only)
  assert.ok(lab);
  const r = await lab.ssh('db01', `MYSQL_PWD=guess mariadb -h ${DB01} -u root -e 'SELECT 1' 2>&1`);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout, /1130 - Host '10\.213\.0\.31' is not allowed to connect|ERROR 1130|Access denied for user 'root'/);
});

test('the app user connects from web01, and is not allowed from another address', async (t) => {
  if (!prerequisites(t, skip)) return;
  assert.ok(lab && inv);
  // the web nodes need no MySQL client for the role; the test brings one from the lab's repository
  await ssh(
    'web01',
    'command -v mariadb >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -q -y --no-install-recommends mariadb-client-core >/dev/null',
  );
  assert.equal(
    await ssh('web01', asApp('SELECT CURRENT_USER(), DATABASE()')),
    `${inv.roles.mysql.appUser}@10.213.0.21\t${inv.roles.mysql.appDatabase}\n`,
  );
  // db02 may reach db01's port (replication) but has no app account there
  const r = await lab.ssh('db02', `${asApp('SELECT 1')} 2>&1`);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout, /ERROR 1045 \(28000\): Access denied for user 'app'@'10\.213\.0\.32'/);
});

test('a row the app writes on db01 is read back on db02; both replication threads run', async (t) => {
  if (!prerequisites(t, skip)) return;
  const marker = `e2e-${process.pid}-${Date.now()}`;
  const table = `e2e_repl_${process.pid}`;
  await ssh(
    'web01',
    asApp(`CREATE TABLE IF NOT EXISTS ${table} (id INT PRIMARY KEY, v VARCHAR(64)); REPLACE INTO ${table} VALUES (1, '${marker}')`),
  );
  let seen = '';
  for (let i = 0; i < 30 && seen !== marker; i++) {
    if (i) await new Promise((r) => setTimeout(r, 1000));
    seen = (await lab!.ssh('db02', `mariadb -N -B -e "SELECT v FROM app.${table} WHERE id = 1"`)).stdout.trim();
  }
  assert.equal(seen, marker, 'the row reached db02 within 30 s');
  const st = await ssh('db02', "mariadb -E -e 'SHOW SLAVE STATUS'");
  assert.match(st, /^\s*Slave_IO_Running: Yes$/m);
  assert.match(st, /^\s*Slave_SQL_Running: Yes$/m);
  assert.match(st, /^\s*Using_Gtid: Slave_Pos$/m);
  assert.match(st, new RegExp(`^\\s*Master_Host: ${DB01.replace(/\./g, '\\.')}$`, 'm'));
  await ssh('web01', asApp(`DROP TABLE ${table}`));
});

test('the second apply changes nothing', async (t) => {
  if (!prerequisites(t, skip)) return;
  const r = await apply();
  assert.equal(r.code, 0, r.stderr);
  for (const [h, rc] of Object.entries(r.hosts))
    assert.deepEqual([h, rc.changed, rc.failed], [h, 0, 0], JSON.stringify(r.results.filter((x) => x.status !== 'ok')));
  const check = r.results.find((x) => x.host === 'db02' && x.task === 'replication threads running');
  assert.equal(check?.status, 'ok');
  console.log(`# second apply common+apache+mysql on 6 hosts (no change): ${r.ms} ms`);
});

test('replication: stopped threads are restarted; a broken replica fails the apply until repaired', async (t) => {
  if (!prerequisites(t, skip)) return;
  const mysqlOnly = ['--tags', 'mysql', '--limit', 'db01,db02'];
  // stopped by hand: the role starts it again
  await sql('db02', 'STOP SLAVE');
  const restarted = await apply(mysqlOnly);
  assert.equal(restarted.code, 0, JSON.stringify(restarted.results.filter((x) => x.status !== 'ok')));
  const step = restarted.results.find((x) => x.host === 'db02' && x.task === 'replicate from db01');
  assert.equal(step?.status, 'changed');
  assert.match(step?.message ?? '', /restart replication \(IO No, SQL No/);

  // a row the replica already has (written there, outside its binlog): the primary's INSERT of the
  // same key stops the SQL thread (MariaDB replays DDL idempotently, but not rows)
  const table = `e2e_conflict_${process.pid}`;
  await sql('db01', `CREATE TABLE app.${table} (id INT PRIMARY KEY)`);
  await waitFor(async () => (await sql('db02', `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = '${table}'`)) === '1\n');
  await sql('db02', `SET SESSION sql_log_bin = 0; INSERT INTO app.${table} VALUES (1)`);
  await sql('db01', `INSERT INTO app.${table} VALUES (1)`);
  await waitFor(async () => /^\s*Slave_SQL_Running: No$/m.test(await ssh('db02', "mariadb -E -e 'SHOW SLAVE STATUS'")));
  const broken = await apply(mysqlOnly);
  assert.notEqual(broken.code, 0);
  const failed = broken.results.filter((x) => x.host === 'db02' && x.status === 'failed');
  assert.equal(failed.length, 1, JSON.stringify(broken.results.filter((x) => x.status !== 'ok')));
  assert.match(failed[0].message ?? '', /Slave_SQL_Running: No/);
  assert.match(failed[0].message ?? '', /Duplicate entry '1' for key 'PRIMARY'/);

  // repaired by hand (the replica drops its own row): the next apply finds replication running again
  await sql('db02', `SET SESSION sql_log_bin = 0; DELETE FROM app.${table}`);
  const repaired = await apply(mysqlOnly);
  assert.equal(repaired.code, 0, JSON.stringify(repaired.results.filter((x) => x.status !== 'ok')));
  assert.equal(repaired.results.find((x) => x.host === 'db02' && x.task === 'replication threads running')?.status, 'ok');
  assert.equal(await sql('db02', `SELECT COUNT(*) FROM app.${table}`), '1\n', "the primary's row replayed");
  await sql('db01', `DROP TABLE app.${table}`);
  const st = await ssh('db02', "mariadb -E -e 'SHOW SLAVE STATUS'");
  assert.match(st, /^\s*Slave_SQL_Running: Yes$/m);
});

test('max_connections changed: set on the running server, no restart; binlog_format changed: the option file and a restart', async (t) => {
  if (!prerequisites(t, skip)) return;
  assert.ok(lab);
  // the same inventory with other settings, and the same secrets (named after the inventory)
  const dir = dirname(lab.inventory);
  const variant = (name: string, mysql: Record<string, unknown>): string => {
    const file = join(dir, `e2e-${name}-${process.pid}.yaml`);
    const doc = parse(readFileSync(lab!.inventory, 'utf8')) as { roles: Record<string, Record<string, unknown>> };
    doc.roles.mysql = { ...(doc.roles.mysql ?? {}), ...mysql };
    writeFileSync(file, stringify(doc));
    const secrets = file.replace(/\.yaml$/, '.secrets.yaml');
    copyFileSync(lab!.inventory.replace(/\.yaml$/, '.secrets.yaml'), secrets);
    chmodSync(secrets, 0o600);
    t.after(() => {
      rmSync(file, { force: true });
      rmSync(secrets, { force: true });
    });
    return file;
  };
  const pid = async () => (await ssh('db01', 'systemctl show -p MainPID --value mariadb')).trim();
  const changedTasks = (r: Awaited<ReturnType<typeof apply>>) => r.results.filter((x) => x.status === 'changed').map((x) => x.task);
  const before = await pid();
  const more = await apply(['--tags', 'mysql', '--limit', 'db01'], variant('maxconn', { max_connections: 321 }));
  assert.equal(more.code, 0, JSON.stringify(more.results.filter((x) => x.status !== 'ok')));
  assert.deepEqual(changedTasks(more), ['max_connections (61-hasetup-connections.cnf)', 'max_connections on the running server']);
  assert.equal(await sql('db01', 'SELECT @@max_connections'), '321\n');
  assert.equal(await pid(), before, 'not restarted');
  const row = await apply(['--tags', 'mysql', '--limit', 'db01'], variant('row', { binlog_format: 'ROW' }));
  assert.equal(row.code, 0, JSON.stringify(row.results.filter((x) => x.status !== 'ok')));
  // the running server is restarted on its new binlog_format (the replication settings' check, or
  // the handler), and max_connections goes back to auto from the option file
  assert.ok(changedTasks(row).includes('replication settings (60-hasetup.cnf)'), JSON.stringify(changedTasks(row)));
  assert.equal(await sql('db01', 'SELECT @@max_connections'), '151\n');
  assert.equal(await sql('db01', 'SELECT @@binlog_format'), 'ROW\n');
  assert.notEqual(await pid(), before, 'restarted');
  // back to the inventory's values; the replica reconnects by itself after its primary's restart
  const back = await apply(['--tags', 'mysql', '--limit', 'db01']);
  assert.equal(back.code, 0);
  assert.equal(await sql('db01', 'SELECT @@max_connections'), '151\n');
  await waitFor(async () => /^\s*Slave_IO_Running: Yes$/m.test(await ssh('db02', "mariadb -E -e 'SHOW SLAVE STATUS'")));
  const again = await apply();
  for (const [h, rc] of Object.entries(again.hosts))
    assert.deepEqual([h, rc.changed, rc.failed], [h, 0, 0], JSON.stringify(again.results.filter((x) => x.status !== 'ok')));
});

test('a 5.1-era option in an option file: the role fails naming it, and MariaDB keeps running until it is gone', async (t) => {
  if (!prerequisites(t, skip)) return;
  const legacy = '/etc/mysql/mariadb.conf.d/70-e2e-legacy.cnf';
  const pid = async () => (await ssh('db02', 'systemctl show -p MainPID --value mariadb')).trim();
  // an old my.cnf line, and a drifted setting whose repair asks for a restart
  await ssh(
    'db02',
    `printf '[mysqld]\\nlog-slow-queries = /var/log/mysql/slow.log\\n' > ${legacy}; sed -i 's/^sync_binlog .*/sync_binlog = 0/' /etc/mysql/mariadb.conf.d/60-hasetup.cnf`,
  );
  t.after(() => lab?.ssh('db02', `rm -f ${legacy}`));
  const before = await pid();
  const r = await apply(['--tags', 'mysql', '--limit', 'db02']);
  assert.notEqual(r.code, 0);
  const failed = r.results.filter((x) => x.status === 'failed');
  assert.deepEqual(
    failed.map((x) => x.task),
    ['no 5.1-era options', 'restart mariadb'],
  );
  assert.match(failed[0].message ?? '', /log-slow-queries \(use slow_query_log = 1 and slow_query_log_file/);
  assert.match(
    failed[1].message ?? '',
    /not restarting MariaDB: its option files fail mariadbd --help: .*unknown variable 'log-slow-queries/,
  );
  assert.equal(await pid(), before, 'not restarted');
  assert.equal((await ssh('db02', 'systemctl is-active mariadb')).trim(), 'active');
  // the option removed: the restart left pending on the host happens, and all is well again
  await ssh('db02', `rm -f ${legacy}`);
  const fixed = await apply(['--tags', 'mysql', '--limit', 'db02']);
  assert.equal(fixed.code, 0, JSON.stringify(fixed.results.filter((x) => x.status !== 'ok')));
  assert.equal(fixed.results.find((x) => x.task === 'restart mariadb')?.status, 'changed');
  assert.notEqual(await pid(), before);
  assert.equal(await sql('db02', 'SELECT @@sync_binlog'), '1\n');
  await waitFor(async () => /^\s*Slave_SQL_Running: Yes$/m.test(await ssh('db02', "mariadb -E -e 'SHOW SLAVE STATUS'")));
});
