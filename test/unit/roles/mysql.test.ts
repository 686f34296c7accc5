// Role mysql: its SQL operations (the probe's answer in -> statements out), the 5.1-era option check
// and what the role renders and plans for a primary and a replica.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  account,
  appAccounts,
  database,
  dbPattern,
  legacyOptions,
  nativePasswordHash,
  noAnonymousUsers,
  noTestDatabase,
  optionNames,
  parseVertical,
  replicaOf,
  replicationAccounts,
  replicationRunning,
  rootSocketOnly,
  runningSettings,
  sqlIdent,
  sqlString,
  waitThreadsScript,
  RESTART_PREFLIGHT,
} from '../../../roles/mysql/sql.ts';
import mysql, { defaults } from '../../../roles/mysql/index.ts';
import { roleContext } from '../../../cli/engine/role.ts';
import { PlanError, type Operation, type Plan, type PlanContext } from '../../../cli/engine/ops.ts';
import type { Facts } from '../../../cli/engine/facts.ts';
import type { Host } from '../../../inventory/types.ts';
import { fixtureInventory } from '../../helpers/fixture-role.ts';
import type { Inventory } from '../../../inventory/types.ts';

const facts = { hostname: 'db01', container: true, memoryMb: 1024 } as unknown as Facts;
const ctx: PlanContext = { facts, earlierChange: false };
/** The web nodes' facts, which max_connections is sized from (factsFrom). */
const webFacts = (inv: Inventory) => new Map<string, Facts>(inv.hosts.filter((h) => h.group === 'web').map((h) => [h.name, facts]));
const ok = (rows: string[] = []) => ['ok', ...rows].join('\n');
const changed = (p: Plan) => {
  assert.equal(p.changed, true, 'expected a change');
  if (!p.changed) throw new Error('unreachable');
  return p;
};

/**
 * Runs an operation's probe with a stand-in `mariadb` on PATH that records its arguments and prints
 * `output` (exit code `code`): returns what the probe printed and the arguments the client got.
 */
function runProbe(op: Operation, output: string, code = 0): { state: string; args: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-mysql-probe-'));
  try {
    writeFileSync(join(dir, 'out'), output);
    writeFileSync(join(dir, 'mariadb'), `#!/bin/sh\nprintf '%s\\n' "$@" > ${dir}/args\ncat ${dir}/out\nexit ${code}\n`, { mode: 0o755 });
    const r = spawnSync('sh', ['-c', op.probe()], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
    return { state: r.stdout.replace(/\n$/, ''), args: readFileSync(join(dir, 'args'), 'utf8').split('\n').slice(0, -1) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('quoting: strings, identifiers, accounts, grant patterns', () => {
  assert.equal(sqlString("it's \\ x"), "'it\\'s \\\\ x'");
  assert.equal(sqlIdent('a`b'), '`a``b`');
  assert.equal(account('app', '10.0.0.1'), "'app'@'10.0.0.1'");
  assert.equal(dbPattern('my_app'), 'my\\_app');
});

test('mysql_native_password hash: SHA1(SHA1(password)) in upper-case hex', () => {
  // the well-known value of PASSWORD('password') in MySQL/MariaDB
  assert.equal(nativePasswordHash('password'), '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19');
  const inner = createHash('sha1').update('x').digest();
  assert.equal(nativePasswordHash('x'), `*${createHash('sha1').update(inner).digest('hex').toUpperCase()}`);
});

test('probe: queries as root over the socket; its answer goes to the plan as is', () => {
  const { state, args } = runProbe(noAnonymousUsers(), '\tlocalhost\n');
  assert.deepEqual(args, ['--protocol=socket', '--user=root', '-N', '-B', '-e', "SELECT User, Host FROM mysql.user WHERE User = ''"]);
  assert.equal(state, 'ok\n\tlocalhost');
  assert.equal(changed(noAnonymousUsers().plan(state, ctx)).stdin, "DROP USER IF EXISTS ''@'localhost';\n");
  // an empty answer: ok
  assert.equal(noAnonymousUsers().plan(runProbe(noAnonymousUsers(), '').state, ctx).changed, false);
});

test('probe: a server that does not answer is reported with the client error', () => {
  const { state } = runProbe(
    database({ name: 'app' }),
    "ERROR 2002 (HY000): Can't connect to local server through socket '/run/mysqld/mysqld.sock' (2)\n",
    1,
  );
  assert.match(state, /^unavailable\nERROR 2002/);
  assert.throws(
    () => database({ name: 'app' }).plan(state, ctx),
    (e: Error) => e instanceof PlanError && /Can't connect to local server/.test(e.message),
  );
  assert.throws(
    () => noAnonymousUsers().plan("unavailable\nERROR 2002 (HY000): Can't connect to local server through socket", ctx),
    (e: Error) => e instanceof PlanError && /Can't connect/.test(e.message),
  );
});

test('server not installed yet in --check mode: depends on the earlier change; applying, the script reports it', () => {
  const p = changed(database({ name: 'app' }).plan('unavailable\nsh: 1: mariadb: not found', { ...ctx, earlierChange: true }));
  assert.match(p.why, /depends on an earlier change/);
  assert.match(p.script, /exit 1/);
  assert.match(p.script, /mariadb: not found/);
});

test('anonymous users: none -> ok; some -> DROP USER IF EXISTS each', () => {
  assert.deepEqual(noAnonymousUsers().plan(ok(), ctx), { changed: false, note: undefined });
  const p = changed(noAnonymousUsers().plan(ok(['\tlocalhost', '\tdb01']), ctx));
  assert.equal(p.stdin, "DROP USER IF EXISTS ''@'localhost';\nDROP USER IF EXISTS ''@'db01';\n");
  assert.equal(p.script, 'mariadb --protocol=socket --user=root --batch');
});

test('test database: schema and grants removed, idempotently', () => {
  assert.equal(noTestDatabase().plan(ok(), ctx).changed, false);
  const p = changed(noTestDatabase().plan(ok(['schema\ttest', 'grant\t@%']), ctx));
  assert.match(String(p.stdin), /^DROP DATABASE IF EXISTS `test`;$/m);
  assert.match(String(p.stdin), /^DELETE FROM mysql\.db WHERE Db = 'test' OR Db = 'test\\\\_%';$/m);
  assert.match(String(p.stdin), /^FLUSH PRIVILEGES;$/m);
});

test('root: unix_socket only, no root account for other hosts', () => {
  const good = 'CREATE USER `root`@`localhost` IDENTIFIED VIA unix_socket';
  assert.equal(rootSocketOnly().plan(ok([good]), ctx).changed, false);
  const p = changed(
    rootSocketOnly().plan(
      ok(["CREATE USER `root`@`localhost` IDENTIFIED VIA mysql_native_password USING 'invalid' OR unix_socket", 'host\t127.0.0.1']),
      ctx,
    ),
  );
  assert.equal(p.stdin, "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket;\nDROP USER IF EXISTS 'root'@'127.0.0.1';\n");
});

test('replica: local administration stays out of its binary log', () => {
  const p = changed(
    rootSocketOnly({ noBinlog: true }).plan(ok(['CREATE USER `root`@`localhost` IDENTIFIED VIA mysql_native_password']), ctx),
  );
  assert.match(String(p.stdin), /^SET SESSION sql_log_bin = 0;\nALTER USER/);
});

test('database: created when missing (IF NOT EXISTS), left alone when present', () => {
  assert.equal(database({ name: 'app' }).plan(ok(['app']), ctx).changed, false);
  const p = changed(database({ name: 'app' }).plan(ok(), ctx));
  assert.equal(p.stdin, 'CREATE DATABASE IF NOT EXISTS `app` CHARACTER SET utf8mb4;\n');
});

const PW = 'S3cret-pw';
const H = nativePasswordHash(PW);
const app = () => appAccounts({ user: 'app', database: 'app', hosts: ['10.0.0.21', '10.0.0.22'], password: PW });

test('app accounts: one per web address, created with the hash, never the password', () => {
  const op = app();
  assert.match(op.probe(), /FROM mysql\.user WHERE User = /);
  const p = changed(op.plan(ok(), ctx));
  const sql = String(p.stdin);
  assert.match(sql, new RegExp(`^CREATE USER IF NOT EXISTS 'app'@'10\\.0\\.0\\.21' IDENTIFIED BY PASSWORD '\\${H}';$`, 'm'));
  assert.match(
    sql,
    /^GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, CREATE TEMPORARY TABLES, LOCK TABLES ON `app`\.\* TO 'app'@'10\.0\.0\.22';$/m,
  );
  assert.ok(!sql.includes(PW), 'the password itself is not in the SQL');
  assert.ok(!p.why.includes(PW) && !(p.diff ?? '').includes(PW) && !p.why.includes(H));
  assert.equal(p.why, "create app@'10.0.0.21', create app@'10.0.0.22'");
});

test('app accounts: right hash and privileges -> ok', () => {
  const state = ok([
    `u\t10.0.0.21\tmysql_native_password\t${H}`,
    `u\t10.0.0.22\tmysql_native_password\t${H}`,
    'g\t10.0.0.21\tY',
    'g\t10.0.0.22\tY',
  ]);
  assert.equal(app().plan(state, ctx).changed, false);
});

test('app accounts: a changed password, a missing grant and a stray host are each fixed', () => {
  const state = ok([
    `u\t10.0.0.21\tmysql_native_password\t*0000`,
    `u\t10.0.0.22\tmysql_native_password\t${H}`,
    'u\t%\tmysql_native_password\t*1111',
    'g\t10.0.0.21\tY',
    'g\t10.0.0.22\tN',
  ]);
  const p = changed(app().plan(state, ctx));
  assert.equal(
    p.stdin,
    `ALTER USER 'app'@'10.0.0.21' IDENTIFIED BY PASSWORD '${H}';\n` +
      "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, CREATE TEMPORARY TABLES, LOCK TABLES ON `app`.* TO 'app'@'10.0.0.22';\n" +
      "DROP USER IF EXISTS 'app'@'%';\n",
  );
  assert.match(p.why, /set the password of app@'10\.0\.0\.21'.*grant .* to app@'10\.0\.0\.22'.*drop app@'%'/);
});

test('app accounts: a database name with "_" is escaped as a grant pattern', () => {
  const op = appAccounts({ user: 'app', database: 'my_app', hosts: ['10.0.0.21'], password: PW });
  assert.match(runProbe(op, '').args[5], /AND Db = 'my\\\\_app'$/);
  const p = changed(op.plan(ok(), ctx));
  assert.match(String(p.stdin), /ON `my\\_app`\.\* TO/);
});

test('replication accounts: REPLICATION SLAVE from the replicas only; none left without replicas', () => {
  const op = replicationAccounts({ user: 'repl', hosts: ['10.0.0.32'], password: PW });
  assert.match(op.probe(), /Repl_slave_priv/);
  const p = changed(op.plan(ok(), ctx));
  assert.match(String(p.stdin), /^GRANT REPLICATION SLAVE ON \*\.\* TO 'repl'@'10\.0\.0\.32';$/m);
  assert.equal(op.plan(ok([`u\t10.0.0.32\tmysql_native_password\t${H}`, 'g\t10.0.0.32\tY']), ctx).changed, false);
  const none = changed(
    replicationAccounts({ user: 'repl', hosts: [], password: PW }).plan(
      ok([`u\t10.0.0.32\tmysql_native_password\t${H}`, 'g\t10.0.0.32\tY']),
      ctx,
    ),
  );
  assert.equal(none.stdin, "DROP USER IF EXISTS 'repl'@'10.0.0.32';\n");
});

test('running settings: as configured -> ok; otherwise restart now, saying what differs', () => {
  const op = runningSettings({ server_id: '2', log_bin: 'ON', binlog_format: 'MIXED' });
  assert.match(runProbe(op, '').args[5], /VARIABLE_NAME IN \('SERVER_ID', 'LOG_BIN', 'BINLOG_FORMAT'\)$/);
  assert.equal(op.plan(ok(['SERVER_ID\t2', 'LOG_BIN\tON', 'BINLOG_FORMAT\tMIXED']), ctx).changed, false);
  const p = changed(op.plan(ok(['SERVER_ID\t1', 'LOG_BIN\tOFF', 'BINLOG_FORMAT\tMIXED']), ctx));
  assert.ok(p.script.startsWith(`${RESTART_PREFLIGHT}\nsystemctl restart mariadb`), 'checked before restarting');
  assert.equal(p.stdin, undefined);
  assert.equal(p.why, 'restart: the running server has server_id=1 (config: 2), log_bin=OFF (config: ON)');
});

const STATUS = (over: Record<string, string> = {}) => {
  const s: Record<string, string> = {
    Slave_IO_State: 'Waiting for master to send event',
    Master_Host: '10.0.0.31',
    Master_User: 'repl',
    Master_Port: '3306',
    Connect_Retry: '5',
    Slave_IO_Running: 'Yes',
    Slave_SQL_Running: 'Yes',
    Last_IO_Errno: '0',
    Last_IO_Error: '',
    Last_SQL_Errno: '0',
    Last_SQL_Error: '',
    Seconds_Behind_Master: '0',
    Using_Gtid: 'Slave_Pos',
    Gtid_IO_Pos: '0-1-8',
    ...over,
  };
  return ok([
    '*************************** 1. row ***************************',
    ...Object.entries(s).map(([k, v]) => `${k.padStart(30)}: ${v}`),
  ]);
};
const replica = () =>
  replicaOf({ primary: '10.0.0.31', port: 3306, user: 'repl', password: PW, connectRetry: 5, waitPrimarySec: 300, waitThreadsSec: 60 });

test('vertical output: parsed into a record (empty values kept), several result sets merged', () => {
  assert.deepEqual(parseVertical('*** 1. row ***\n  A: 1\n*** 1. row ***\n  B: 2\n*** 2. row ***\n  A: 3'), { A: '1', B: '2' });
  const r = parseVertical(STATUS().split('\n').slice(1).join('\n'));
  assert.equal(r.Slave_IO_Running, 'Yes');
  assert.equal(r.Last_IO_Error, '');
  assert.equal(r.Master_Host, '10.0.0.31');
  assert.deepEqual(parseVertical(''), {});
});

test('replica: configured and both threads running -> ok', () => {
  assert.match(replica().probe(), /-E -e 'SHOW SLAVE STATUS'/);
  assert.equal(replica().plan(STATUS(), ctx).changed, false);
});

test('replica: not configured -> wait for the primary, CHANGE MASTER by GTID, start, wait for the threads', () => {
  const p = changed(replica().plan(ok(), ctx));
  assert.equal(p.why, 'replicate from 10.0.0.31:3306 by GTID (slave_pos)');
  assert.equal(
    p.stdin,
    'STOP SLAVE;\n' +
      `CHANGE MASTER TO MASTER_HOST = '10.0.0.31', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = '${PW}', MASTER_CONNECT_RETRY = 5, MASTER_USE_GTID = slave_pos;\n` +
      'START SLAVE;\n',
  );
  // bounded wait for the primary's account (150 tries, 2 s apart), then the client reads the statements
  assert.match(p.script, /--host=10\.0\.0\.31 --port=3306 --connect-timeout=3/);
  assert.match(
    p.script,
    /if \[ \$i -ge 150 \]; then echo "the primary 10\.0\.0\.31:3306 did not accept the replication account within 300 s/,
  );
  assert.match(p.script, /^mariadb --protocol=socket --user=root --batch \|\| exit 1$/m);
  assert.ok(p.script.indexOf('--batch') < p.script.indexOf('SHOW SLAVE STATUS'), 'waits for the threads after starting them');
  assert.match(
    p.script,
    /target=\$\(mariadb --defaults-extra-file="\$cnf" --host=10\.0\.0\.31 .*SELECT @@gtid_binlog_pos/,
    "waits to have applied the primary's position",
  );
  assert.ok(!p.why.includes(PW) && !(p.diff ?? '').includes(PW));
});

test('replica: pointed elsewhere -> reconfigured, saying what differs', () => {
  const p = changed(replica().plan(STATUS({ Master_Host: '10.0.0.99', Using_Gtid: 'No' }), ctx));
  assert.equal(p.why, 'reconfigure: Master_Host 10.0.0.99 -> 10.0.0.31, Using_Gtid No -> Slave_Pos');
});

test('replica: stopped threads -> restarted, with the last error in the reason', () => {
  const p = changed(replica().plan(STATUS({ Slave_IO_Running: 'No', Last_IO_Error: 'error connecting to master' }), ctx));
  assert.equal(p.why, 'restart replication (IO No, SQL Yes: error connecting to master)');
});

test('replication check: both Yes -> ok with the position; otherwise the task fails with the errors', () => {
  const op = replicationRunning({ waitSec: 30 });
  const good = op.plan(STATUS(), ctx);
  assert.equal(good.changed, false);
  assert.match(good.changed ? '' : (good.note ?? ''), /Slave_IO_Running: Yes, Slave_SQL_Running: Yes, 0 s behind, GTID 0-1-8/);
  assert.throws(
    () => op.plan(STATUS({ Slave_SQL_Running: 'No', Last_SQL_Error: "Error 'Duplicate entry' on query" }), ctx),
    (e: Error) =>
      e instanceof PlanError &&
      e.message === "replication is not running: Slave_IO_Running: Yes, Slave_SQL_Running: No: Error 'Duplicate entry' on query",
  );
  assert.throws(() => op.plan(ok(), ctx), /replication is not running: not configured/);
});

test('replication check right after (re)configuring: waits, bounded, and fails with the errors', () => {
  const p = changed(replicationRunning({ waitSec: 30 }).plan(STATUS({ Slave_IO_Running: 'Connecting' }), { ...ctx, earlierChange: true }));
  assert.equal(p.script, waitThreadsScript(30));
  assert.match(p.script, /if \[ \$i -ge 30 \]; then/);
  assert.match(p.script, /MASTER_GTID_WAIT/);
  assert.match(p.script, /Last_IO_Error\|Last_SQL_Error/);
});

/**
 * Runs a script with a stand-in `mariadb`: SHOW SLAVE STATUS prints `status`, MASTER_GTID_WAIT
 * prints `wait` (0: reached, -1: timed out).
 */
function runWithStatus(script: string, status: string, wait = '0'): { code: number | null; stderr: string; ms: number } {
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-mysql-wait-'));
  try {
    writeFileSync(join(dir, 'out'), status);
    writeFileSync(join(dir, 'mariadb'), `#!/bin/sh\ncase "$*" in *MASTER_GTID_WAIT*) echo '${wait}' ;; *) cat ${dir}/out ;; esac\n`, {
      mode: 0o755,
    });
    const t0 = Date.now();
    const r = spawnSync('sh', ['-c', script], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    });
    return { code: r.status, stderr: r.stderr, ms: Date.now() - t0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const body = (s: string) => s.split('\n').slice(1).join('\n');

test('waiting for the threads: done when both run and the SQL thread has applied what was received', () => {
  const r = runWithStatus(waitThreadsScript(30), body(STATUS()));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
});

test('waiting for the threads: a thread stopped on an error fails at once, with the error', () => {
  const broken = runWithStatus(
    waitThreadsScript(30),
    body(
      STATUS({ Slave_SQL_Running: 'No', Last_SQL_Errno: '1062', Last_SQL_Error: "Error 'Duplicate entry '1' for key 'PRIMARY'' on query" }),
    ),
    '-1',
  );
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, /a replication thread stopped on an error:/);
  assert.match(broken.stderr, /Last_SQL_Error: Error 'Duplicate entry '1' for key 'PRIMARY'' on query/);
});

test('waiting for the threads: still catching up at the deadline is fine; not running is not', () => {
  const catchingUp = runWithStatus(waitThreadsScript(2), body(STATUS()), '-1');
  assert.equal(catchingUp.code, 0);
  assert.match(catchingUp.stderr, /both replication threads run, still catching up after 2 s/);
  const connecting = runWithStatus(waitThreadsScript(2), body(STATUS({ Slave_IO_Running: 'Connecting' })));
  assert.equal(connecting.code, 1);
  assert.match(
    connecting.stderr,
    /replication threads not both running after 2 s:\n\s*Master_Host: 10\.0\.0\.31\n\s*Slave_IO_Running: Connecting/,
  );
});

test('replication check: its probe lets running threads apply what they received first, then reads the status', () => {
  const op = replicationRunning({ waitSec: 30 });
  const { state, args } = runProbe(op, body(STATUS()));
  assert.deepEqual(args, ['--protocol=socket', '--user=root', '-E', '-e', 'SHOW SLAVE STATUS'], 'the last call reads the status');
  assert.match(op.probe(), /MASTER_GTID_WAIT\('\$p', 5\)/);
  assert.equal(op.plan(state, ctx).changed, false);
});

// ---- 5.1-era options ------------------------------------------------------------------------

test('option names: normalized, loose- ignored, innodb=OFF is skip-innodb', () => {
  assert.deepEqual(
    optionNames('--key_buffer=16M\n--table-cache=64\n--loose-skip-innodb\n--innodb=OFF\n--bind-address=1.2.3.4\nnot an option'),
    ['key-buffer', 'table-cache', 'skip-innodb', 'bind-address'],
  );
});

test('legacy options: removed ones fail with what to use; renamed ones are reported next to ok', () => {
  const op = legacyOptions();
  assert.match(op.probe(), /my_print_defaults --mysqld/);
  assert.deepEqual(op.plan('ok\n--bind-address=10.0.0.31\n--log_bin=mysql-bin', ctx), { changed: false, note: undefined });
  const renamed = op.plan('ok\n--table_cache=512\n--key_buffer=64M', ctx);
  assert.equal(renamed.changed, false);
  assert.match(renamed.changed ? '' : (renamed.note ?? ''), /table-cache -> table_open_cache; key-buffer -> key_buffer_size/);
  assert.throws(
    () => op.plan('ok\n--log-slow-queries=/var/log/mysql/slow.log\n--skip-innodb\n--master-host=10.0.0.1', ctx),
    (e: Error) =>
      e instanceof PlanError &&
      /log-slow-queries \(use slow_query_log/.test(e.message) &&
      /skip-innodb \(use nothing: InnoDB cannot be switched off/.test(e.message) &&
      /master-host \(use CHANGE MASTER TO/.test(e.message),
  );
  assert.throws(() => op.plan('unavailable', ctx), /my_print_defaults is missing/);
  assert.ok(op.plan('unavailable', { ...ctx, earlierChange: true }).changed);
});

test('before a restart: option files the server would not start with stop it, saying why', () => {
  const run = (mariadbd: string, defaults: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'hasetup-mysql-preflight-'));
    try {
      writeFileSync(join(dir, 'mariadbd'), `#!/bin/sh\n${mariadbd}\n`, { mode: 0o755 });
      writeFileSync(join(dir, 'my_print_defaults'), `#!/bin/sh\nprintf '%s\\n' ${defaults}\n`, { mode: 0o755 });
      return spawnSync('sh', ['-c', `${RESTART_PREFLIGHT}\necho passed`], {
        encoding: 'utf8',
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const good = run('exit 0', "'--log_bin=mysql-bin' '--server_id=1'");
  assert.equal(good.stdout, 'passed\n');
  const unknown = run(
    `echo "2026-01-01 0 [ERROR] mariadbd: unknown variable 'log-slow-queries=/x'" >&2; exit 7`,
    "'--log-slow-queries=/x'",
  );
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /not restarting MariaDB: its option files fail mariadbd --help: .*unknown variable 'log-slow-queries=\/x'/);
  const noInnodb = run('exit 0', "'--skip-innodb'");
  assert.equal(noInnodb.status, 1);
  assert.match(noInnodb.stderr, /switch InnoDB off/);
  assert.equal(run('exit 0', "'--innodb=OFF'").status, 1);
});

// ---- the role -------------------------------------------------------------------------------

function cluster(withReplica: boolean) {
  const h = (name: string, address: string, group: Host['group']): Host => ({
    name,
    address,
    group,
    ssh: { host: address, user: 'root', port: 22, become: false, connectTimeout: 5 },
  });
  const hosts: Host[] = [
    h('lb01', '10.9.0.11', 'lb'),
    h('web01', '10.9.0.21', 'web'),
    h('web02', '10.9.0.22', 'web'),
    { ...h('db01', '10.9.0.31', 'db'), serverId: 1, primary: true },
  ];
  if (withReplica) hosts.push({ ...h('db02', '10.9.0.32', 'db'), serverId: 2, primary: false });
  return fixtureInventory([], { hosts });
}

const subjects = (ops: { op: Operation }[]) => ops.map((t) => `${t.op.kind} ${t.op.subject}`);

test('role: the option file comes before the package, so the first start has log_bin and server_id', () => {
  const inv = cluster(false);
  const db01 = inv.hosts.find((x) => x.name === 'db01') as Host;
  const tasks = mysql.tasks(roleContext(mysql, db01, inv, facts, webFacts(inv)));
  const names = tasks.map((t) => t.name);
  assert.ok(names.indexOf('replication settings (60-hasetup.cnf)') < names.indexOf('mariadb-server package'));
  const cnf = tasks.find((t) => t.op.subject === defaults.configFile);
  assert.ok(cnf);
  assert.deepEqual(cnf.notify, ['restart mariadb']);
  const p = changed(cnf.op.plan('absent', ctx));
  const text = String(p.stdin);
  for (const line of [
    /^server_id\s+= 1$/m,
    /^bind_address\s+= 10\.9\.0\.31$/m,
    /^log_bin\s+= mysql-bin$/m,
    /^binlog_format\s+= MIXED$/m,
    /^sync_binlog\s+= 1$/m,
    /^innodb_flush_log_at_trx_commit\s+= 1$/m,
    /^relay_log\s+= mysql-relay-bin$/m,
    /^log_slave_updates\s+= ON$/m,
  ])
    assert.match(text, line);
  assert.doesNotMatch(text, /^read_only/m);
  // max_connections apart, without the restart: it follows the cluster's size, set live
  assert.doesNotMatch(text, /^max_connections/m);
  const conns = tasks.find((t) => t.op.subject === defaults.connectionsFile);
  assert.ok(conns);
  assert.equal(conns.notify, undefined);
  const connsText = String(changed(conns.op.plan('absent', ctx)).stdin);
  // auto: 9 + 9 children (1 GB web nodes) + 10 for the admins = 28, at least MariaDB's 151
  assert.match(connsText, /^max_connections = 151$/m);
  assert.match(connsText, /^# web01 9 \+ web02 9 PHP-FPM children x 1 connection/m);
  const live = tasks.find((t) => t.name === 'max_connections on the running server');
  assert.ok(live);
  assert.ok(names.indexOf('mariadb service') < names.indexOf('max_connections on the running server'));
  assert.equal(live.op.plan('ok\n151', ctx).changed, false);
  const set = changed(live.op.plan('ok\n200', ctx));
  assert.match(String(set.stdin), /^SET GLOBAL max_connections = 151;$/m);
  assert.doesNotMatch(set.script, /restart/);
  assert.match(p.script, /mariadbd --defaults-file="\$tmp" --help --verbose/);
});

test('role: the primary creates the app database, the app user per web node and the replication user per replica', () => {
  const inv = cluster(true);
  const db01 = inv.hosts.find((x) => x.name === 'db01') as Host;
  const tasks = mysql.tasks(roleContext(mysql, db01, inv, facts, webFacts(inv)));
  assert.deepEqual(
    subjects(tasks).filter((s) => s.startsWith('sql ') || s.startsWith('replication ')),
    [
      'sql no anonymous users',
      'sql no test database',
      'sql root by unix socket only',
      'sql database app',
      'sql app@{10.9.0.21,10.9.0.22}',
      'sql repl@{10.9.0.32}',
      // the web nodes run the demo application (PHP on, no site of the user's): its tables, on the primary only
      'sql demo tables in app',
    ],
  );
  const repl = changed((tasks.find((t) => t.op.subject === 'repl@{10.9.0.32}') as { op: Operation }).op.plan(ok(), ctx));
  assert.doesNotMatch(String(repl.stdin), /sql_log_bin/, 'the primary logs its changes: replicas replay them');
});

test('role: a replica replicates, checks its threads, then has the same accounts (out of its binlog)', () => {
  const inv = cluster(true);
  const db02 = inv.hosts.find((x) => x.name === 'db02') as Host;
  const tasks = mysql.tasks(roleContext(mysql, db02, inv, facts, webFacts(inv)));
  const s = subjects(tasks);
  const i = s.indexOf('replication from 10.9.0.31:3306');
  assert.ok(i > s.indexOf('sql root by unix socket only'));
  assert.equal(s[i + 1], 'replication both threads running');
  assert.deepEqual(s.slice(i + 2), ['sql database app', 'sql app@{10.9.0.21,10.9.0.22}', 'sql repl@{10.9.0.32}']);
  const cnf = changed((tasks.find((t) => t.op.subject === defaults.configFile) as { op: Operation }).op.plan('absent', ctx));
  assert.match(String(cnf.stdin), /^server_id\s+= 2$/m);
  assert.match(String(cnf.stdin), /^read_only\s+= ON$/m);
  const db = changed((tasks.find((t) => t.op.subject === 'database app') as { op: Operation }).op.plan(ok(), ctx));
  assert.match(String(db.stdin), /^SET SESSION sql_log_bin = 0;/);
});

test('role: restart handler skips a server that started after its option file changed', () => {
  const inv = cluster(false);
  const db01 = inv.hosts.find((x) => x.name === 'db01') as Host;
  const [h] = mysql.handlers?.(roleContext(mysql, db01, inv, facts, webFacts(inv))) ?? [];
  assert.equal(h.name, 'restart mariadb');
  assert.match(h.script, /ActiveEnterTimestamp/);
  assert.match(h.script, /-gt "\$\(stat -c %Y "\$f"\)" \]; then exit 0; fi\n/);
  assert.ok(h.script.includes(`${RESTART_PREFLIGHT}\nsystemctl restart mariadb`), 'checked before restarting');
});
