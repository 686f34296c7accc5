// The secrets file: generated once (mode 0600, atomically), stable afterwards, validated with
// located errors that never show a secret, refused when group or others may read it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, copyFileSync, writeFileSync, readFileSync, statSync, chmodSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadInventory, InventoryError } from '../../../inventory/load.ts';
import { secretValues, secretsPathFor, generateSecret, SECRET_KEYS } from '../../../inventory/secrets.ts';

const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'hasetup-sec-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A copy of the minimal valid inventory in a new folder; returns its path. */
function inventory(): string {
  const f = join(mkdtempSync(join(work, 'case-')), 'inventory.yaml');
  copyFileSync(join(here, 'fixtures', 'valid-minimal.yaml'), f);
  return f;
}
const URL_SAFE = /^[A-Za-z0-9_-]+$/;

test('secrets are generated on first load: mode 0600, URL-safe, vrrp_auth_pass of 8 characters', async () => {
  const file = inventory();
  const old = process.umask(0); // the mode must not depend on the umask
  let inv;
  try {
    inv = await loadInventory(file);
  } finally {
    process.umask(old);
  }
  const sf = join(dirname(file), 'inventory.secrets.yaml');
  assert.equal(inv.secrets.file, sf);
  assert.equal(statSync(sf).mode & 0o777, 0o600);
  const s = inv.secrets;
  for (const v of [s.mysqlRootPassword, s.mysqlAppPassword, s.mysqlReplicationPassword, s.statsPassword]) {
    assert.match(v, URL_SAFE);
    assert.equal(v.length, 24);
  }
  assert.match(s.vrrpAuthPass, URL_SAFE);
  assert.equal(s.vrrpAuthPass.length, 8);
  assert.equal(new Set(secretValues(inv)).size, 5, 'five distinct secrets');
  const text = readFileSync(sf, 'utf8');
  for (const k of SECRET_KEYS) assert.match(text, new RegExp(`^${k}: `, 'm'));
  // No temporary file is left behind.
  assert.deepEqual(readdirSync(dirname(file)).sort(), ['inventory.secrets.yaml', 'inventory.yaml']);
});

test('a second load reads the same secrets and does not rewrite the file', async () => {
  const file = inventory();
  const a = await loadInventory(file);
  const sf = a.secrets.file;
  const before = statSync(sf);
  const text = readFileSync(sf, 'utf8');
  const b = await loadInventory(file);
  assert.deepEqual(b.secrets, a.secrets);
  const now = statSync(sf);
  assert.equal(now.ino, before.ino);
  assert.equal(now.mtimeMs, before.mtimeMs);
  assert.equal(readFileSync(sf, 'utf8'), text);
});

test('concurrent first loads agree on one secrets file', async () => {
  const file = inventory();
  const all = await Promise.all(Array.from({ length: 8 }, () => loadInventory(file)));
  for (const inv of all) assert.deepEqual(inv.secrets, all[0].secrets);
  assert.deepEqual(readdirSync(dirname(file)).sort(), ['inventory.secrets.yaml', 'inventory.yaml']);
});

test('createSecrets: false refuses to generate a missing file', async () => {
  const file = inventory();
  const shown = secretsPathFor(file);
  const err = await loadInventory(file, { createSecrets: false }).catch((e: unknown) => e);
  assert.ok(err instanceof InventoryError);
  assert.equal(err.message, `${shown}: missing (the secrets file is generated when hasetup is allowed to create it)`);
  assert.deepEqual(readdirSync(dirname(file)), ['inventory.yaml']);
});

test('a secrets file readable by others is refused, not loosened or rewritten', async () => {
  const file = inventory();
  const { secrets } = await loadInventory(file);
  chmodSync(secrets.file, 0o644);
  const shown = secrets.file;
  const err = await loadInventory(file).catch((e: unknown) => e);
  assert.ok(err instanceof InventoryError);
  assert.equal(
    err.message,
    `${shown}: mode 0644 is too open for a file of passwords (group or others may read it): run chmod 600 ${shown}`,
  );
  assert.equal(statSync(secrets.file).mode & 0o777, 0o644);
  chmodSync(secrets.file, 0o600);
  assert.deepEqual((await loadInventory(file)).secrets, secrets);
});

test('invalid secrets give located errors that never show the values', async () => {
  const file = inventory();
  const sf = secretsPathFor(file);
  const shown = sf;
  writeFileSync(
    sf,
    [
      '# my own secrets',
      'mysql_root_password: Secret0123456789',
      'mysql_app_password: "short"',
      'mysql_replication_password: 12345678901234',
      'vrrp_auth_pass: toolong123',
      'stats_password: has spaces in it!',
      'root_password: Leaked0123456789',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const err = await loadInventory(file).catch((e: unknown) => e);
  assert.ok(err instanceof InventoryError);
  assert.equal(
    err.message,
    [
      `${shown}:3:21: mysql_app_password: expected 12 to 128 characters from A-Z a-z 0-9 . _ ~ -, got a string of 5 characters`,
      `${shown}:4:29: mysql_replication_password: expected 12 to 128 characters from A-Z a-z 0-9 . _ ~ -, got a number`,
      `${shown}:5:17: vrrp_auth_pass: expected exactly 8 characters from A-Z a-z 0-9 . _ ~ - (VRRP carries 8), got a string of 10 characters`,
      `${shown}:6:17: stats_password: expected 12 to 128 characters from A-Z a-z 0-9 . _ ~ -, got a string of 17 characters`,
      `${shown}:7:1: root_password: unknown key (did you mean "mysql_root_password"?)`,
    ].join('\n'),
  );
  for (const v of ['Secret0123456789', 'short', '12345678901234', 'toolong123', 'has spaces', 'Leaked0123456789'])
    assert.ok(!err.message.includes(v), v);
});

test('missing keys are generated and added, keeping the values and comments already there', async () => {
  const file = inventory();
  const sf = secretsPathFor(file);
  writeFileSync(sf, '# chosen by me\nmysql_root_password: Mine.0123456789\nvrrp_auth_pass: abcd-123\n', { mode: 0o600 });
  const inv = await loadInventory(file);
  assert.equal(inv.secrets.mysqlRootPassword, 'Mine.0123456789');
  assert.equal(inv.secrets.vrrpAuthPass, 'abcd-123');
  assert.match(inv.secrets.statsPassword, /^[A-Za-z0-9]{24}$/);
  const text = readFileSync(sf, 'utf8');
  assert.match(text, /^# chosen by me$/m);
  assert.match(text, new RegExp(`^stats_password: ${inv.secrets.statsPassword}$`, 'm'));
  assert.equal(statSync(sf).mode & 0o777, 0o600);
  assert.deepEqual((await loadInventory(file)).secrets, inv.secrets);
  // Without createSecrets, a missing key is an error at the file's position.
  const file2 = inventory();
  writeFileSync(secretsPathFor(file2), 'mysql_root_password: Mine.0123456789\n', { mode: 0o600 });
  const err = await loadInventory(file2, { createSecrets: false }).catch((e: unknown) => e);
  assert.ok(err instanceof InventoryError);
  assert.deepEqual(
    err.errors.map((e) => `${e.line}:${e.col} ${e.path}: ${e.message}`),
    [
      '1:1 mysql_app_password: missing (required)',
      '1:1 mysql_replication_password: missing (required)',
      '1:1 vrrp_auth_pass: missing (required)',
      '1:1 stats_password: missing (required)',
    ],
  );
});

test('an empty secrets file is filled in', async () => {
  const file = inventory();
  writeFileSync(secretsPathFor(file), '', { mode: 0o600 });
  const inv = await loadInventory(file);
  assert.equal(inv.secrets.vrrpAuthPass.length, 8);
  assert.deepEqual((await loadInventory(file)).secrets, inv.secrets);
});

test('secretsPathFor and generateSecret', () => {
  assert.equal(secretsPathFor('/a/b/inventory.yaml'), '/a/b/inventory.secrets.yaml');
  assert.equal(secretsPathFor('/a/b/prod.yml'), '/a/b/prod.secrets.yaml');
  assert.equal(secretsPathFor('/a/b/inv'), '/a/b/inv.secrets.yaml');
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const s = generateSecret(8);
    assert.match(s, /^[A-Za-z0-9]{8}$/);
    seen.add(s);
  }
  assert.equal(seen.size, 200);
});

test('a YAML syntax error in the secrets file does not quote the file', async () => {
  const file = inventory();
  const sf = secretsPathFor(file);
  writeFileSync(sf, 'mysql_root_password: "Abc\\qdefghijklmn"\n', { mode: 0o600 });
  const err = await loadInventory(file).catch((e: unknown) => e);
  assert.ok(err instanceof InventoryError);
  assert.equal(err.message, `${sf}:1:26: YAML syntax error (BAD_DQ_ESCAPE)`);
  assert.ok(!err.message.includes('Abc'));
});

test('a secrets path that is not a regular file is one clear error', async () => {
  const file = inventory();
  const sf = secretsPathFor(file);
  mkdirSync(sf);
  const err = await loadInventory(file).catch((e: unknown) => e);
  assert.ok(err instanceof InventoryError);
  assert.equal(err.message, `${sf}: not a regular file`);
});
