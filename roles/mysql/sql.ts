// MariaDB operations of the mysql role. Each one reads the server's state with one query (as root
// over the unix socket: root has no password, see rootSocketOnly) and plans SQL only for what differs,
// so a second apply reports ok. Statements that change things are idempotent themselves too
// (IF EXISTS / IF NOT EXISTS): a replica replays the primary's binary log from its start, and must not
// stop on a statement for a state it already has.
//
// Accounts are created with the password's hash (IDENTIFIED BY PASSWORD '*...'), never the password:
// the statement goes into the binary log, which replicas and backups copy. The one statement that
// needs a password in clear (CHANGE MASTER TO, not logged) travels on the script's stdin, which the
// engine never prints; the `why` and `diff` of a plan name accounts and privileges only.
import { createHash } from 'node:crypto';
import { PlanError, shq, type Operation, type Plan, type PlanContext } from '../../cli/engine/api.ts';

/** The client as root over the unix socket. */
export const CLIENT = 'mariadb --protocol=socket --user=root';

// ---- quoting --------------------------------------------------------------------------------
export const sqlString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
export const sqlIdent = (s: string): string => '`' + s.replace(/`/g, '``') + '`';
export const account = (user: string, host: string): string => `${sqlString(user)}@${sqlString(host)}`;
/** A database name as a grant pattern: "_" and "%" are wildcards there, so they are escaped. */
export const dbPattern = (db: string): string => db.replace(/[_%\\]/g, (c) => `\\${c}`);

/** What mysql_native_password stores for a password: "*" and the upper-case hex of SHA1(SHA1(pw)). */
export function nativePasswordHash(password: string): string {
  const once = createHash('sha1').update(password, 'utf8').digest();
  return `*${createHash('sha1').update(once).digest('hex').toUpperCase()}`;
}

// ---- the generic operation -----------------------------------------------------------------

export type Rows = string[][];
export type Record_ = Record<string, string>;

export interface Change {
  /** Statements, run in order by the client; the first error stops them. */
  sql?: string[];
  /** A shell script instead of (or around) the client: it gets the statements on stdin. */
  script?: string;
  why: string;
}

export interface MariadbOpSpec<S> {
  kind?: string;
  subject: string;
  /** SQL printing the state (one or more statements). */
  query: string;
  /** 'rows': mariadb -N -B (a row a line, tab-separated); 'vertical': mariadb -E ("Name: value" lines). */
  format: 'rows' | 'vertical';
  decide(state: S, ctx: PlanContext): Change | null;
  /** Shown next to "ok". */
  note?(state: S): string | undefined;
  /** Local administration that must not enter the binary log (a replica's own transactions). */
  noBinlog?: boolean;
  /** sh run before the query (output discarded), e.g. a bounded wait for the state to settle. */
  settle?: string;
}

export function parseRows(out: string): Rows {
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split('\t'));
}

/**
 * `mariadb -E` output ("*** 1. row ***" then "   Name: value" lines) as one record: the first row of
 * each result set (a second row of one set ends the reading).
 */
export function parseVertical(out: string): Record_ {
  const rec: Record_ = {};
  for (const line of out.split('\n')) {
    const row = /^\*+ (\d+)\. row \*+$/.exec(line.trim());
    if (row) {
      if (row[1] !== '1') break;
      continue;
    }
    const m = /^\s*([A-Za-z_]+): ?(.*)$/.exec(line);
    if (m) rec[m[1]] = m[2];
  }
  return rec;
}

/** The probe: "ok" and the client's output, or "unavailable" and its error (server down, no client...). */
export function probeQuery(query: string, format: 'rows' | 'vertical'): string {
  const flags = format === 'rows' ? '-N -B' : '-E';
  return `if out=$(${CLIENT} ${flags} -e ${shq(query)} </dev/null 2>&1); then echo ok; printf '%s\\n' "$out"; else echo unavailable; printf '%s\\n' "$out" | tail -n 3; fi`;
}

/**
 * The plan of a task whose probe could not read MariaDB (`cause`: not installed, not answering). In
 * --check mode the server may not exist yet because an earlier task (the package) was only planned:
 * the task then depends on that change, and its script fails with `scriptError` if the server is
 * still missing when it runs. Without an earlier change (and when applying, the state was read again
 * after that task ran) the same answer is a real failure: `error`.
 */
export function serverMissing(ctx: PlanContext, o: { diff: string; cause: string; error: string; scriptError: string }): Plan {
  if (!ctx.earlierChange) throw new PlanError(o.error);
  return {
    changed: true,
    script: `echo ${shq(o.scriptError)} >&2; exit 1`,
    why: `depends on an earlier change (${o.cause})`,
    diff: `${o.diff}: depends on an earlier change\n`,
  };
}

export function mariadbOp<S extends Rows | Record_>(spec: MariadbOpSpec<S>): Operation {
  const kind = spec.kind ?? 'sql';
  return {
    kind,
    subject: spec.subject,
    probe: () => (spec.settle ? `{ ${spec.settle}\n} </dev/null >/dev/null 2>&1\n` : '') + probeQuery(spec.query, spec.format),
    plan(state, ctx) {
      const [head = '', ...rest] = state.split('\n');
      if (head.trim() !== 'ok') {
        const msg = rest.join(' ').replace(/\s+/g, ' ').trim() || 'no answer';
        return serverMissing(ctx, {
          diff: `${kind} ${spec.subject}`,
          cause: 'MariaDB cannot be queried yet',
          error: `MariaDB cannot be queried as root over its unix socket: ${msg}`,
          scriptError: `MariaDB cannot be queried as root over its socket: ${msg}`,
        });
      }
      const body = rest.join('\n');
      const parsed = (spec.format === 'rows' ? parseRows(body) : parseVertical(body)) as S;
      const c = spec.decide(parsed, ctx);
      if (!c) return { changed: false, note: spec.note?.(parsed) };
      const sql =
        c.sql && c.sql.length ? [...(spec.noBinlog ? ['SET SESSION sql_log_bin = 0;'] : []), ...c.sql].join('\n') + '\n' : undefined;
      return {
        changed: true,
        script: c.script ?? `${CLIENT} --batch`,
        stdin: sql,
        why: c.why,
        diff: `${kind} ${spec.subject}: ${c.why}\n`,
      };
    },
  };
}

// ---- hardening (what mysql_secure_installation did by hand) --------------------------------

export function noAnonymousUsers(o: { noBinlog?: boolean } = {}): Operation {
  return mariadbOp<Rows>({
    subject: 'no anonymous users',
    query: "SELECT User, Host FROM mysql.user WHERE User = ''",
    format: 'rows',
    noBinlog: o.noBinlog,
    decide(rows) {
      if (rows.length === 0) return null;
      return {
        sql: rows.map((r) => `DROP USER IF EXISTS ${account('', r[1] ?? '')};`),
        why: `drop ${rows.map((r) => `''@'${r[1]}'`).join(', ')}`,
      };
    },
  });
}

const TEST_DB_GRANTS = "Db = 'test' OR Db = 'test\\\\_%'";

export function noTestDatabase(o: { noBinlog?: boolean } = {}): Operation {
  return mariadbOp<Rows>({
    subject: 'no test database',
    query:
      "SELECT 'schema', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'test' " +
      `UNION ALL SELECT 'grant', CONCAT(User, '@', Host) FROM mysql.db WHERE ${TEST_DB_GRANTS}`,
    format: 'rows',
    noBinlog: o.noBinlog,
    decide(rows) {
      const schema = rows.some((r) => r[0] === 'schema');
      const grants = rows.filter((r) => r[0] === 'grant');
      if (!schema && grants.length === 0) return null;
      const sql: string[] = [];
      const why: string[] = [];
      if (schema) {
        sql.push('DROP DATABASE IF EXISTS `test`;');
        why.push('drop database test');
      }
      if (grants.length) {
        sql.push(`DELETE FROM mysql.db WHERE ${TEST_DB_GRANTS};`, 'FLUSH PRIVILEGES;');
        why.push(`remove the test databases' grants (${grants.map((g) => g[1]).join(', ')})`);
      }
      return { sql, why: why.join(', ') };
    },
  });
}

/**
 * root only through the unix socket of this host: root@localhost identified via unix_socket alone
 * (MariaDB 10.4+'s default is "unix_socket OR mysql_native_password USING 'invalid'"), no root
 * account for any other host.
 */
export function rootSocketOnly(o: { noBinlog?: boolean } = {}): Operation {
  return mariadbOp<Rows>({
    subject: 'root by unix socket only',
    query: "SELECT 'host', Host FROM mysql.user WHERE User = 'root' AND Host <> 'localhost'; SHOW CREATE USER 'root'@'localhost'",
    format: 'rows',
    noBinlog: o.noBinlog,
    decide(rows) {
      const create = rows.find((r) => r[0].startsWith('CREATE USER'))?.[0] ?? '';
      const others = rows.filter((r) => r[0] === 'host').map((r) => r[1] ?? '');
      const sql: string[] = [];
      const why: string[] = [];
      if (!/IDENTIFIED VIA unix_socket\s*$/.test(create)) {
        sql.push(`ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket;`);
        why.push('root@localhost identified via unix_socket only');
      }
      for (const h of others) {
        sql.push(`DROP USER IF EXISTS ${account('root', h)};`);
        why.push(`drop root@'${h}'`);
      }
      return sql.length ? { sql, why: why.join(', ') } : null;
    },
  });
}

// ---- databases and accounts ----------------------------------------------------------------

export function database(o: { name: string; noBinlog?: boolean }): Operation {
  return mariadbOp<Rows>({
    subject: `database ${o.name}`,
    query: `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${sqlString(o.name)}`,
    format: 'rows',
    noBinlog: o.noBinlog,
    decide(rows) {
      if (rows.length) return null;
      return { sql: [`CREATE DATABASE IF NOT EXISTS ${sqlIdent(o.name)} CHARACTER SET utf8mb4;`], why: `create database ${o.name}` };
    },
  });
}

export interface AccountsSpec {
  user: string;
  /** Exactly these hosts (addresses): missing accounts are created, others of this user dropped. */
  hosts: string[];
  password: string;
  /** The privilege clause, e.g. "REPLICATION SLAVE ON *.*". */
  grant: string;
  /** Where to read whether an account holds the privilege: SELECT Host, <flag> FROM <from>, flag 'Y' when it does. */
  grantCheck: { flag: string; from: string };
  noBinlog?: boolean;
}

/** One account per host for a user: password (compared by its hash), privilege, nothing more. */
export function accounts(spec: AccountsSpec): Operation {
  const hash = nativePasswordHash(spec.password);
  return mariadbOp<Rows>({
    subject: `${spec.user}@{${spec.hosts.join(',')}}`,
    query:
      `SELECT 'u', Host, plugin, authentication_string FROM mysql.user WHERE User = ${sqlString(spec.user)}; ` +
      `SELECT 'g', Host, ${spec.grantCheck.flag} FROM ${spec.grantCheck.from}`,
    format: 'rows',
    noBinlog: spec.noBinlog,
    decide(rows) {
      const users = new Map(rows.filter((r) => r[0] === 'u').map((r) => [r[1], { plugin: r[2] ?? '', auth: r[3] ?? '' }]));
      const granted = new Map(rows.filter((r) => r[0] === 'g').map((r) => [r[1], r[2]]));
      const sql: string[] = [];
      const why: string[] = [];
      for (const h of spec.hosts) {
        const acct = account(spec.user, h);
        const u = users.get(h);
        if (!u) {
          sql.push(`CREATE USER IF NOT EXISTS ${acct} IDENTIFIED BY PASSWORD ${sqlString(hash)};`, `GRANT ${spec.grant} TO ${acct};`);
          why.push(`create ${spec.user}@'${h}'`);
          continue;
        }
        if (u.plugin !== 'mysql_native_password' || u.auth !== hash) {
          sql.push(`ALTER USER ${acct} IDENTIFIED BY PASSWORD ${sqlString(hash)};`);
          why.push(`set the password of ${spec.user}@'${h}'`);
        }
        if (granted.get(h) !== 'Y') {
          sql.push(`GRANT ${spec.grant} TO ${acct};`);
          why.push(`grant ${spec.grant} to ${spec.user}@'${h}'`);
        }
      }
      for (const h of users.keys()) {
        if (spec.hosts.includes(h)) continue;
        sql.push(`DROP USER IF EXISTS ${account(spec.user, h)};`);
        why.push(`drop ${spec.user}@'${h}'`);
      }
      return sql.length ? { sql, why: why.join(', ') } : null;
    },
  });
}

/** The replication account: REPLICATION SLAVE, from the replicas' addresses only. */
export function replicationAccounts(o: { user: string; hosts: string[]; password: string; noBinlog?: boolean }): Operation {
  return accounts({
    ...o,
    grant: 'REPLICATION SLAVE ON *.*',
    grantCheck: { flag: 'Repl_slave_priv', from: `mysql.user WHERE User = ${sqlString(o.user)}` },
  });
}

/** What the application may do in its database (everything but granting and server-wide rights). */
export const APP_PRIVILEGES = [
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'CREATE',
  'DROP',
  'INDEX',
  'ALTER',
  'CREATE TEMPORARY TABLES',
  'LOCK TABLES',
];
const APP_PRIV_COLUMNS = [
  'Select_priv',
  'Insert_priv',
  'Update_priv',
  'Delete_priv',
  'Create_priv',
  'Drop_priv',
  'Index_priv',
  'Alter_priv',
  'Create_tmp_table_priv',
  'Lock_tables_priv',
];

export function appAccounts(o: { user: string; database: string; hosts: string[]; password: string; noBinlog?: boolean }): Operation {
  const pattern = dbPattern(o.database);
  return accounts({
    user: o.user,
    hosts: o.hosts,
    password: o.password,
    noBinlog: o.noBinlog,
    grant: `${APP_PRIVILEGES.join(', ')} ON ${sqlIdent(pattern)}.*`,
    grantCheck: {
      flag: `IF(${APP_PRIV_COLUMNS.map((c) => `${c} = 'Y'`).join(' AND ')}, 'Y', 'N')`,
      from: `mysql.db WHERE User = ${sqlString(o.user)} AND Db = ${sqlString(pattern)}`,
    },
  });
}

// ---- the running server --------------------------------------------------------------------

/**
 * sh run before any restart of MariaDB: the server would not come back with option files it cannot
 * read (an unknown or removed option fails `mariadbd --help`) or that switch InnoDB off (which
 * `--help` lets pass, the server then refuses to start): then it stays up on its old settings and the
 * step fails, saying why.
 */
export const RESTART_PREFLIGHT = [
  'if ! out=$(mariadbd --help --verbose 2>&1 >/dev/null); then',
  `  echo "not restarting MariaDB: its option files fail mariadbd --help: $(printf '%s\\n' "$out" | grep ERROR | head -n 3)" >&2`,
  '  exit 1',
  'fi',
  "if my_print_defaults --mysqld | grep -Eiq '^--(skip[-_]innodb|disable[-_]innodb|innodb=(off|0))$'; then",
  '  echo "not restarting MariaDB: its option files switch InnoDB off (skip-innodb), which MariaDB 10.11 cannot run without" >&2',
  '  exit 1',
  'fi',
].join('\n');

/**
 * The running server has the settings replication depends on (server_id, log_bin...). They come
 * from the configuration file, read at start: a server that runs since before the file said so
 * (MariaDB installed before this role ran) is restarted now, before any SQL step writes what a
 * replica must later replay. Other settings wait for the role's restart handler.
 */
export function runningSettings(want: Record<string, string>): Operation {
  const names = Object.keys(want).map((k) => k.toUpperCase());
  return mariadbOp<Rows>({
    kind: 'mariadb',
    subject: `running with ${Object.entries(want)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    query: `SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME IN (${names.map(sqlString).join(', ')})`,
    format: 'rows',
    decide(rows) {
      const have = new Map(rows.map((r) => [r[0].toLowerCase(), r[1] ?? '']));
      const off = Object.entries(want).filter(([k, v]) => (have.get(k.toLowerCase()) ?? '').toUpperCase() !== v.toUpperCase());
      if (off.length === 0) return null;
      return {
        script: `${RESTART_PREFLIGHT}\nsystemctl restart mariadb || { systemctl status --no-pager -n 20 mariadb; exit 1; }`,
        why: `restart: the running server has ${off.map(([k, v]) => `${k}=${have.get(k.toLowerCase()) ?? '?'} (config: ${v})`).join(', ')}`,
      };
    },
  });
}

/**
 * A dynamic setting the running server takes without a restart (SET GLOBAL), for the settings that
 * follow the size of the cluster (max_connections): a web node or a replica added must not restart
 * the primary under load. The option file keeps the value for the next start.
 */
export function liveSetting(name: string, value: number): Operation {
  return mariadbOp<Rows>({
    kind: 'mariadb',
    subject: `running with ${name}=${value}`,
    query: `SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = ${sqlString(name.toUpperCase())}`,
    format: 'rows',
    decide(rows) {
      const have = rows[0]?.[0] ?? '?';
      if (have === String(value)) return null;
      return { sql: [`SET GLOBAL ${name} = ${value};`], why: `${name} ${have} -> ${value}, set on the running server (no restart)` };
    },
  });
}

// ---- replication ---------------------------------------------------------------------------

export interface ReplicaSpec {
  /** The primary's address and port. */
  primary: string;
  port: number;
  user: string;
  password: string;
  /** Seconds between the IO thread's reconnection attempts (MASTER_CONNECT_RETRY). */
  connectRetry: number;
  /** How long to wait for the primary to accept the replication account (it is set up in parallel). */
  waitPrimarySec: number;
  /** How long to wait for both replication threads to run. */
  waitThreadsSec: number;
}

/** A value for an option file: quoted, with \ and " escaped. */
const cnfValue = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** sh: prints the GTID position the IO thread has received (digits, "-" and "," only). */
const IO_POS = `${CLIENT} -E -e 'SHOW SLAVE STATUS' </dev/null 2>/dev/null | sed -n 's/^ *Gtid_IO_Pos: //p' | tr -cd '0-9,-'`;

/**
 * sh: waits (bounded) until both replication threads run and the SQL thread has applied everything
 * up to $target (a GTID position; when empty, what the IO thread has received so far), checked with
 * MASTER_GTID_WAIT, one second at a time. A thread that runs for a moment after START SLAVE and then
 * stops on an event is caught that way. Fails at once, with the errors, when a thread stopped on an
 * error (waiting will not mend it); at the deadline, succeeds if both threads still run (a replica
 * still catching up) and fails otherwise.
 */
export function waitThreadsScript(seconds: number): string {
  const status = `st=$(${CLIENT} -E -e 'SHOW SLAVE STATUS' </dev/null 2>&1)`;
  const field = (v: string, name: string) => `${v}=$(printf '%s\\n' "$st" | sed -n 's/^ *${name}: //p')`;
  const report = `printf '%s\\n' "$st" | grep -E '^ *(Slave_IO_Running|Slave_SQL_Running|Last_IO_Error|Last_SQL_Error|Master_Host):' >&2`;
  return [
    'i=0',
    'while :; do',
    `  t=$(printf '%s' "\${target:-$(${IO_POS})}" | tr -cd '0-9,-')`,
    `  w=$(${CLIENT} -N -e "SELECT MASTER_GTID_WAIT('$t', 1)" </dev/null 2>/dev/null)`,
    `  ${status}`,
    `  ${field('io', 'Slave_IO_Running')}`,
    `  ${field('sq', 'Slave_SQL_Running')}`,
    `  e=$(printf '%s\\n' "$st" | sed -n 's/^ *Last_\\(IO\\|SQL\\)_Errno: //p' | grep -vx 0 | head -n 1)`,
    '  [ "$io" = Yes ] && [ "$sq" = Yes ] && [ "$w" = 0 ] && break',
    '  i=$((i + 1))',
    '  if [ -n "$e" ] && { [ "$io" = No ] || [ "$sq" = No ]; }; then',
    '    echo "a replication thread stopped on an error:" >&2',
    `    ${report}`,
    '    exit 1',
    '  fi',
    `  if [ $i -ge ${seconds} ]; then`,
    `    if [ "$io" = Yes ] && [ "$sq" = Yes ]; then echo "both replication threads run, still catching up after ${seconds} s" >&2; break; fi`,
    `    echo "replication threads not both running after ${seconds} s:" >&2`,
    `    ${report}`,
    '    exit 1',
    '  fi',
    '  [ "$w" = 0 ] && sleep 1',
    'done',
  ].join('\n');
}

/**
 * The replica replicates from the primary, by GTID (MASTER_USE_GTID=slave_pos). A new replica has an
 * empty gtid_slave_pos, so it asks the primary for everything from the start of its binary log: the
 * primary logs from its very first start (the role writes log_bin before installing MariaDB), so
 * that seeds the replica with no dump. The primary's role runs at the same time on its own host and
 * creates the replication account: the replica waits (bounded) until that account can log in.
 */
export function replicaOf(spec: ReplicaSpec): Operation {
  const want = {
    Master_Host: spec.primary,
    Master_Port: String(spec.port),
    Master_User: spec.user,
    Using_Gtid: 'Slave_Pos',
    Connect_Retry: String(spec.connectRetry),
  };
  const tries = Math.max(1, Math.ceil(spec.waitPrimarySec / 2));
  return mariadbOp<Record_>({
    kind: 'replication',
    subject: `from ${spec.primary}:${spec.port}`,
    query: 'SHOW SLAVE STATUS',
    format: 'vertical',
    decide(s) {
      const wrong = Object.entries(want).filter(([k, v]) => s[k] !== v);
      const running = s.Slave_IO_Running === 'Yes' && s.Slave_SQL_Running === 'Yes';
      if (wrong.length === 0 && running) return null;
      const why =
        Object.keys(s).length === 0
          ? `replicate from ${spec.primary}:${spec.port} by GTID (slave_pos)`
          : wrong.length
            ? `reconfigure: ${wrong.map(([k, v]) => `${k} ${s[k] ?? '(none)'} -> ${v}`).join(', ')}`
            : `restart replication (IO ${s.Slave_IO_Running}, SQL ${s.Slave_SQL_Running}${s.Last_IO_Error ? `: ${s.Last_IO_Error}` : ''}${s.Last_SQL_Error ? `: ${s.Last_SQL_Error}` : ''})`;
      const script = [
        'cnf=$(mktemp)',
        'trap \'rm -f "$cnf"\' EXIT',
        `cat > "$cnf" <<'HASETUP_CNF'`,
        '[client]',
        `user=${cnfValue(spec.user)}`,
        `password=${cnfValue(spec.password)}`,
        'HASETUP_CNF',
        'i=0',
        `until err=$(mariadb --defaults-extra-file="$cnf" --host=${shq(spec.primary)} --port=${spec.port} --connect-timeout=3 -N -e 'SELECT 1' </dev/null 2>&1 >/dev/null); do`,
        '  i=$((i + 1))',
        `  if [ $i -ge ${tries} ]; then echo "the primary ${spec.primary}:${spec.port} did not accept the replication account within ${spec.waitPrimarySec} s: $err" >&2; exit 1; fi`,
        '  sleep 2',
        'done',
        `${CLIENT} --batch || exit 1`,
        // where the primary is now: the replica has caught up (and not stopped on the way) past it
        `target=$(mariadb --defaults-extra-file="$cnf" --host=${shq(spec.primary)} --port=${spec.port} --connect-timeout=3 -N -e 'SELECT @@gtid_binlog_pos' </dev/null 2>/dev/null)`,
        waitThreadsScript(spec.waitThreadsSec),
      ].join('\n');
      return {
        script,
        sql: [
          'STOP SLAVE;',
          `CHANGE MASTER TO MASTER_HOST = ${sqlString(spec.primary)}, MASTER_PORT = ${spec.port}, MASTER_USER = ${sqlString(spec.user)}, ` +
            `MASTER_PASSWORD = ${sqlString(spec.password)}, MASTER_CONNECT_RETRY = ${spec.connectRetry}, MASTER_USE_GTID = slave_pos;`,
          'START SLAVE;',
        ],
        why,
      };
    },
  });
}

/** Both replication threads run (Slave_IO_Running and Slave_SQL_Running: Yes), or the task fails. */
export function replicationRunning(o: { waitSec: number }): Operation {
  return mariadbOp<Record_>({
    kind: 'replication',
    subject: 'both threads running',
    query: 'SHOW SLAVE STATUS',
    format: 'vertical',
    // running threads that have not applied all they received yet: wait (at most 5 s) until they have
    // or one stops, so a thread that is about to stop on an event is not reported as running
    settle: `if ${CLIENT} -E -e 'SHOW SLAVE STATUS' | grep -Eq '^ *Slave_SQL_Running: Yes$'; then p=$(${IO_POS}); ${CLIENT} -N -e "SELECT MASTER_GTID_WAIT('$p', 5)"; fi`,
    note: (s) =>
      `Slave_IO_Running: Yes, Slave_SQL_Running: Yes, ${s.Seconds_Behind_Master ?? '?'} s behind, GTID ${s.Gtid_IO_Pos || '(none yet)'}`,
    decide(s, ctx) {
      if (s.Slave_IO_Running === 'Yes' && s.Slave_SQL_Running === 'Yes') return null;
      const state =
        Object.keys(s).length === 0
          ? 'not configured'
          : `Slave_IO_Running: ${s.Slave_IO_Running}, Slave_SQL_Running: ${s.Slave_SQL_Running}`;
      const errors = [s.Last_IO_Error, s.Last_SQL_Error].filter(Boolean).join('; ');
      // Just (re)configured in this run (or only planned, in --check mode): wait for the threads.
      if (ctx.earlierChange) return { script: waitThreadsScript(o.waitSec), why: `wait for the replication threads (${state})` };
      throw new PlanError(`replication is not running: ${state}${errors ? `: ${errors}` : ''}`);
    },
  });
}

// ---- configuration written for MySQL 5.1 ---------------------------------------------------

/**
 * 5.1-era server options and what MariaDB 10.11 makes of them. 'removed': the server refuses to
 * start with it (unknown variable, or InnoDB switched off); 'renamed': still accepted, with a
 * deprecation note.
 */
export const LEGACY_OPTIONS: Record<string, { status: 'removed' | 'renamed'; use: string }> = {
  'log-slow-queries': {
    status: 'removed',
    use: 'slow_query_log = 1 and slow_query_log_file (log_slow_query / log_slow_query_file in 10.11)',
  },
  log: { status: 'removed', use: 'general_log = 1 and general_log_file ("log" is now an ambiguous prefix)' },
  'log-update': { status: 'removed', use: 'log_bin' },
  'log-long-format': { status: 'removed', use: 'nothing (always long now)' },
  'master-host': { status: 'removed', use: 'CHANGE MASTER TO (the role configures replicas itself)' },
  'master-user': { status: 'removed', use: 'CHANGE MASTER TO (the role configures replicas itself)' },
  'master-password': { status: 'removed', use: 'CHANGE MASTER TO (the role configures replicas itself)' },
  'master-port': { status: 'removed', use: 'CHANGE MASTER TO (the role configures replicas itself)' },
  'master-connect-retry': { status: 'removed', use: 'CHANGE MASTER TO ... MASTER_CONNECT_RETRY' },
  'default-character-set': { status: 'removed', use: 'character_set_server' },
  'default-table-type': { status: 'removed', use: 'default_storage_engine' },
  'skip-locking': { status: 'removed', use: 'skip_external_locking' },
  'safe-show-database': { status: 'removed', use: 'nothing (SHOW DATABASES privilege)' },
  'set-variable': { status: 'removed', use: 'the variable itself (name = value)' },
  'innodb-additional-mem-pool-size': { status: 'removed', use: 'nothing (InnoDB uses the system allocator)' },
  'innodb-file-io-threads': { status: 'removed', use: 'innodb_read_io_threads and innodb_write_io_threads' },
  'log-bin-trust-routine-creators': { status: 'removed', use: 'log_bin_trust_function_creators' },
  'skip-innodb': {
    status: 'removed',
    use: 'nothing: InnoDB cannot be switched off (the server aborts with "Unknown/unsupported storage engine: InnoDB"; mysql.gtid_slave_pos needs it too)',
  },
  'table-cache': { status: 'renamed', use: 'table_open_cache' },
  'key-buffer': { status: 'renamed', use: 'key_buffer_size (a prefix, accepted with a warning)' },
  'myisam-recover': { status: 'renamed', use: 'myisam_recover_options (a prefix, accepted with a warning)' },
  'thread-concurrency': { status: 'renamed', use: 'nothing (ignored with a warning)' },
  'skip-bdb': { status: 'renamed', use: 'nothing (ignored with a warning)' },
};

/** Normalized option names from `my_print_defaults --mysqld` lines ("--key_buffer=8M" -> "key-buffer"). */
export function optionNames(out: string): string[] {
  const names: string[] = [];
  for (const raw of out.split('\n')) {
    const m = /^--([^=\s]+)(?:=(.*))?$/.exec(raw.trim());
    if (!m) continue;
    let name = m[1].replace(/_/g, '-');
    if (name.startsWith('loose-')) continue; // loose options never stop the server
    if (name === 'innodb' && /^(off|0)$/i.test(m[2] ?? '')) name = 'skip-innodb';
    if (name === 'disable-innodb') name = 'skip-innodb';
    names.push(name);
  }
  return names;
}

/**
 * No 5.1-era option left in the server's option files (/etc/mysql/my.cnf and what it includes):
 * a removed one fails the task with what to use instead; a renamed one is reported next to "ok".
 */
export function legacyOptions(): Operation {
  return {
    kind: 'mariadb',
    subject: 'no 5.1-era options in the option files',
    probe: () => `if command -v my_print_defaults >/dev/null 2>&1; then echo ok; my_print_defaults --mysqld; else echo unavailable; fi`,
    plan(state, ctx) {
      const [head = '', ...rest] = state.split('\n');
      if (head.trim() !== 'ok') {
        const error = 'my_print_defaults is missing: is mariadb-server installed?';
        return serverMissing(ctx, { diff: 'mariadb option check', cause: 'MariaDB not installed yet', error, scriptError: error });
      }
      const found = [...new Set(optionNames(rest.join('\n')))].filter((n) => n in LEGACY_OPTIONS);
      const removed = found.filter((n) => LEGACY_OPTIONS[n].status === 'removed');
      if (removed.length)
        throw new PlanError(
          `option files set 5.1-era options MariaDB 10.11 refuses: ${removed.map((n) => `${n} (use ${LEGACY_OPTIONS[n].use})`).join('; ')}`,
        );
      const renamed = found.filter((n) => LEGACY_OPTIONS[n].status === 'renamed');
      return {
        changed: false,
        note: renamed.length ? `deprecated: ${renamed.map((n) => `${n} -> ${LEGACY_OPTIONS[n].use}`).join('; ')}` : undefined,
      };
    },
  };
}
