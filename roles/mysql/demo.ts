// The demo application's tables (roles/app/demo), made on the primary when the web nodes run PHP and
// the inventory names no site of its own: 100 rows the page reads by primary key, and the page-view
// counter it writes, spread over 64 slots so that concurrent views never queue on one row's lock.
// The probe reads which tables exist and how many rows each holds; the change creates what is
// missing with statements a replica may replay (IF NOT EXISTS, INSERT IGNORE).
import { shq, type Operation } from '../../cli/engine/api.ts';
import { CLIENT, serverMissing, sqlIdent, sqlString } from './sql.ts';

export const DEMO_ITEMS = 100;
export const DEMO_SLOTS = 64;

export function demoTables(o: { database: string }): Operation {
  const db = sqlIdent(o.database);
  const list = `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${sqlString(o.database)} AND TABLE_NAME IN ('demo_items', 'demo_page_views')`;
  const probe = [
    `if out=$(${CLIENT} -N -B -e ${shq(list)} </dev/null 2>&1); then`,
    '  echo ok',
    '  for t in $out; do',
    `    ${CLIENT} -N -B -e "SELECT '$t', COUNT(*) FROM ${db.replace(/`/g, '\\`')}.$t" </dev/null`,
    '  done',
    'else echo unavailable; printf "%s\\n" "$out" | tail -n 3; fi',
  ].join('\n');
  return {
    kind: 'sql',
    subject: `demo tables in ${o.database}`,
    probe: () => probe,
    plan(state, ctx) {
      const [head = '', ...rest] = state.split('\n');
      if (head.trim() !== 'ok') {
        return serverMissing(ctx, {
          diff: 'sql demo tables',
          cause: 'MariaDB cannot be queried yet',
          error: `MariaDB cannot be queried as root over its unix socket: ${rest.join(' ').trim() || 'no answer'}`,
          scriptError: 'MariaDB cannot be queried as root over its socket',
        });
      }
      const rows = new Map(
        rest
          .map((l) => l.split('\t'))
          .filter((f) => f.length === 2)
          .map(([t, n]) => [t, Number(n)]),
      );
      const sql: string[] = [];
      const why: string[] = [];
      if ((rows.get('demo_items') ?? -1) < DEMO_ITEMS) {
        if (!rows.has('demo_items')) why.push('create demo_items');
        why.push(`${DEMO_ITEMS} rows in demo_items`);
        const values = Array.from({ length: DEMO_ITEMS }, (_, i) => `(${i + 1}, 'item ${i + 1}')`).join(', ');
        sql.push(
          `CREATE TABLE IF NOT EXISTS ${db}.demo_items (id INT UNSIGNED NOT NULL PRIMARY KEY, title VARCHAR(80) NOT NULL) ENGINE=InnoDB;`,
          `INSERT IGNORE INTO ${db}.demo_items (id, title) VALUES ${values};`,
        );
      }
      if ((rows.get('demo_page_views') ?? -1) < DEMO_SLOTS) {
        if (!rows.has('demo_page_views')) why.push('create demo_page_views');
        why.push(`${DEMO_SLOTS} counter slots`);
        const slots = Array.from({ length: DEMO_SLOTS }, (_, i) => `(${i})`).join(', ');
        sql.push(
          `CREATE TABLE IF NOT EXISTS ${db}.demo_page_views (slot TINYINT UNSIGNED NOT NULL PRIMARY KEY, views BIGINT UNSIGNED NOT NULL DEFAULT 0) ENGINE=InnoDB;`,
          `INSERT IGNORE INTO ${db}.demo_page_views (slot) VALUES ${slots};`,
        );
      }
      if (sql.length === 0)
        return { changed: false, note: `${rows.get('demo_items')} items, ${rows.get('demo_page_views')} counter slots` };
      return {
        changed: true,
        script: `${CLIENT} --batch`,
        stdin: sql.join('\n') + '\n',
        why: why.join(', '),
        diff: `sql demo tables: ${why.join(', ')}\n`,
      };
    },
  };
}
