// End-to-end in the lab: the apache role on web01 and web02 (with common), applied by `hasetup apply`
// from the lab's controller namespace. The node pages reach the LBs on port 80; the access log names
// the client given in X-Forwarded-For only when an LB sent the request; server-status answers on the
// loopback only; MaxRequestWorkers follows the memory the host's cgroup allows; a second apply changes nothing; a
// hand-edited site is shown by --check --diff and restored by apply. (What the firewall refuses is
// the firewall role's test.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labConfig, repoRoot } from '../../../cli/lab/config.ts';
import { loadInventory } from '../../../inventory/load.ts';
import { webSizing } from '../../../roles/sizing.ts';
import { factsScript, parseFacts } from '../../../cli/engine/facts.ts';
import { validateInPlace } from '../../../roles/apache/index.ts';
import { ensureLab, labUnavailable, type Lab } from '../../helpers/lab.ts';
import { commandUnavailable, prerequisites } from '../../helpers/env.ts';

const TAGS = 'common,apache';
const HASETUP = join(repoRoot, 'bin', 'hasetup.js');
const WEB = { web01: '10.213.0.21', web02: '10.213.0.22' } as const;
const skip = labUnavailable() ?? commandUnavailable('curl');

let lab: Lab | undefined;
/** The lab's inventory with the web tier static (roles.app.php: false): this file tests Apache's own node page. */
let staticInventory = '';
before(async () => {
  // the inventory in the lab's own state folder: labs of other names may share the checkout
  if (skip) return;
  lab = await ensureLab({ inventory: join(labConfig().stateDir, 'inventory.yaml') });
  staticInventory = lab.inventory.replace(/\.yaml$/, '-static.yaml');
  const text = readFileSync(lab.inventory, 'utf8');
  const withStatic = text.replace(/^roles:\n/m, 'roles:\n  app:\n    php: false\n');
  assert.notEqual(withStatic, text, 'roles.app.php written into the inventory');
  writeFileSync(staticInventory, withStatic);
  copyFileSync(lab.inventory.replace(/\.yaml$/, '.secrets.yaml'), staticInventory.replace(/\.yaml$/, '.secrets.yaml'));
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

async function apply(args: string[]) {
  assert.ok(lab);
  const t0 = Date.now();
  const r = await lab.exec([process.execPath, HASETUP, 'apply', staticInventory, '--tags', TAGS, ...args]);
  return { ...r, ms: Date.now() - t0 };
}

async function applyJson(args: string[] = []) {
  const r = await apply([...args, '--json']);
  let hosts: Record<string, Recap>;
  try {
    hosts = (JSON.parse(r.stdout) as { hosts: Record<string, Recap> }).hosts;
  } catch {
    throw new Error(`apply printed no JSON (exit ${r.code}): ${r.stdout.slice(-2000)} ${r.stderr.slice(-2000)}`);
  }
  return { ...r, hosts };
}

async function ssh(host: string, cmd: string) {
  assert.ok(lab);
  const r = await lab.ssh(host, cmd);
  assert.equal(r.code, 0, `${host}: ${cmd}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

test('apply of common and apache: no failure, the web nodes changed (a fresh lab, or a running one whose node pages were removed)', async (t) => {
  if (!prerequisites(t, skip)) return;
  assert.ok(lab);
  // so that a lab that was already applied has something to change too
  for (const w of Object.keys(WEB)) await lab.ssh(w, 'rm -f /var/www/hasetup/index.html');
  const r = await applyJson();
  assert.equal(r.code, 0, r.stderr);
  for (const [h, rc] of Object.entries(r.hosts)) assert.equal(rc.failed + rc.unreachable, 0, `${h}: ${JSON.stringify(rc)}`);
  for (const w of Object.keys(WEB)) {
    assert.ok(r.hosts[w].changed > 0, `${w} changed`);
    assert.match(await ssh(w, 'cat /var/www/hasetup/index.html'), new RegExp(`served by ${w}`));
  }
  console.log(`# apply common+apache (${lab.broughtUp ? 'fresh lab' : 'lab already up'}): ${r.ms} ms`);
});

test('web01 and web02 each serve their node page and the health URL on port 80 to the LBs', async (t) => {
  if (!prerequisites(t, skip)) return;
  for (const lb of ['lb01', 'lb02'])
    for (const [name, addr] of Object.entries(WEB)) {
      const page = await ssh(lb, `curl -sS -i --max-time 5 http://${addr}/`);
      assert.match(page, /^HTTP\/1\.1 200 OK/);
      assert.match(page, new RegExp(`served by ${name} \\(${addr.replace(/\./g, '\\.')}\\)`));
      assert.match(page, new RegExp(`^X-Served-By: ${name}\\r?$`, 'm'));
      assert.match(page, /^Server: Apache\r?$/m, 'ServerTokens Prod');
      const health = await ssh(lb, `curl -sS --max-time 5 -w ' %{http_code}' http://${addr}/health`);
      assert.equal(health, 'ok\n 200');
    }
});

test('the access log names the X-Forwarded-For client only when an LB sent the request', async (t) => {
  if (!prerequisites(t, skip)) return;
  assert.ok(lab);
  const m = `e2e-${process.pid}-${Date.now()}`;
  const url = `http://${WEB.web02}/`;
  await ssh('lb01', `curl -sS -o /dev/null -A ${m}-lb -H 'X-Forwarded-For: 198.51.100.7' ${url}`);
  // a client's own forged header, then what the LB appended: only the LB's part counts
  await ssh('lb02', `curl -sS -o /dev/null -A ${m}-chain -H 'X-Forwarded-For: 203.0.113.66, 198.51.100.8' ${url}`);
  await ssh('web02', `curl -sS -o /dev/null -A ${m}-self -H 'X-Forwarded-For: 198.51.100.9' ${url}`);
  const ctl = await lab.exec([
    'curl',
    '-sS',
    '-o',
    '/dev/null',
    '--max-time',
    '5',
    '-A',
    `${m}-ctl`,
    '-H',
    'X-Forwarded-For: 198.51.100.10',
    url,
  ]);
  assert.equal(ctl.code, 0, ctl.stderr);
  const log = await ssh('web02', `grep -F ${m} /var/log/apache2/access.log`);
  const line = (tag: string) => {
    const l = log.split('\n').find((x) => x.includes(`"${m}-${tag}"`));
    assert.ok(l, `no log line for ${tag} in:\n${log}`);
    return l;
  };
  assert.match(line('lb'), /^198\.51\.100\.7 .* peer=10\.213\.0\.11$/);
  assert.match(line('chain'), /^198\.51\.100\.8 .* peer=10\.213\.0\.12$/);
  assert.match(line('self'), /^10\.213\.0\.22 .* peer=10\.213\.0\.22$/);
  assert.match(line('ctl'), /^10\.213\.0\.10 .* peer=10\.213\.0\.10$/);
});

test('server-status answers on the loopback only, whatever X-Forwarded-For says', async (t) => {
  if (!prerequisites(t, skip)) return;
  const code = (host: string, url: string, xff = '') =>
    ssh(host, `curl -s -o /dev/null -w '%{http_code}' ${xff ? `-H 'X-Forwarded-For: ${xff}' ` : ''}${url}`);
  assert.equal(await code('web01', 'http://127.0.0.1/server-status'), '200');
  assert.equal(await code('web01', `http://${WEB.web01}/server-status`), '403');
  assert.equal(await code('lb01', `http://${WEB.web01}/server-status`), '403');
  assert.equal(await code('lb01', `http://${WEB.web01}/server-status`, '127.0.0.1'), '403');
  const denied = await ssh('lb01', `curl -s http://${WEB.web01}/server-status`);
  assert.doesNotMatch(denied, /Apache\/2|Server at/, 'ServerSignature Off');
});

test("MaxRequestWorkers follows the formula for the memory the host's cgroup allows; Apache runs the event MPM", async (t) => {
  if (!prerequisites(t, skip)) return;
  assert.ok(lab);
  const inv = await loadInventory(staticInventory);
  for (const w of Object.keys(WEB)) {
    const mark = `e2e-${process.pid}`;
    const facts = parseFacts(await ssh(w, factsScript(mark)), mark);
    // the lab limits each web node (512 MiB by default): the facts read the cgroup's limit, not the machine's RAM
    assert.ok(facts.limits.memoryMb !== null && facts.memoryMb === facts.limits.memoryMb, JSON.stringify(facts.limits));
    const host = inv.hosts.find((h) => h.name === w);
    assert.ok(host);
    const want = webSizing(host, facts, inv).apache;
    const conf = await ssh(w, 'cat /etc/apache2/mods-available/mpm_event.conf');
    assert.match(conf, new RegExp(`^\\s*MaxRequestWorkers\\s+${want.maxRequestWorkers}$`, 'm'));
    assert.match(conf, new RegExp(`^\\s*ServerLimit\\s+${want.serverLimit}$`, 'm'));
    assert.match(await ssh(w, 'apache2ctl -V'), /Server MPM:\s+event/);
    console.log(`# ${w}: ${want.explain}`);
  }
});

test('the second apply changes nothing', async (t) => {
  if (!prerequisites(t, skip)) return;
  const r = await applyJson();
  assert.equal(r.code, 0, r.stderr);
  for (const [h, rc] of Object.entries(r.hosts)) assert.deepEqual([h, rc.changed, rc.failed], [h, 0, 0]);
  console.log(`# second apply common+apache (no change): ${r.ms} ms`);
});

test('drift: a hand-edited site is shown by --check --diff, left alone, then restored by apply', async (t) => {
  if (!prerequisites(t, skip)) return;
  const site = '/etc/apache2/sites-available/hasetup.conf';
  await ssh('web02', `sed -i 's/^\\tServerAlias .*/\\tServerAlias drifted.example/' ${site}`);
  const check = await apply(['--check', '--diff', '--limit', 'web02']);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /web02 \| apache \| site: would change/);
  assert.match(check.stdout, /^\s*-\tServerAlias drifted\.example$/m);
  assert.match(check.stdout, /^\s*\+\tServerAlias 10\.213\.0\.22$/m);
  assert.match(await ssh('web02', `cat ${site}`), /ServerAlias drifted\.example/, '--check changed nothing');
  const fix = await apply(['--limit', 'web02']);
  assert.equal(fix.code, 0, fix.stdout + fix.stderr);
  assert.match(fix.stdout, /web02 \| apache \| site: changed/);
  assert.match(fix.stdout, /web02 \| apache \| handler reload apache2: changed/);
  assert.doesNotMatch(await ssh('web02', `cat ${site}`), /drifted/);
  assert.match(await ssh('lb01', `curl -sS http://${WEB.web02}/`), /served by web02/);
  const again = await applyJson(['--limit', 'web02']);
  assert.equal(again.hosts.web02.changed, 0);
});

test('drift that breaks the configuration: apply still puts the right file back, checked in place', async (t) => {
  if (!prerequisites(t, skip)) return;
  assert.ok(lab);
  const site = '/etc/apache2/sites-available/hasetup.conf';
  await ssh('web01', `echo 'NoSuchDirective on' >> ${site}`);
  const broken = await lab.ssh('web01', 'apache2ctl -t 2>&1');
  assert.notEqual(broken.code, 0, 'the hand edit broke the configuration');
  const fix = await apply(['--limit', 'web01']);
  assert.equal(fix.code, 0, fix.stdout + fix.stderr);
  assert.match(fix.stdout, /web01 \| apache \| site: changed/);
  assert.match(await ssh('web01', 'apache2ctl -t 2>&1'), /Syntax OK/);
  assert.match(await ssh('lb01', `curl -sS http://${WEB.web01}/`), /served by web01/);
});

test('the role rejects a candidate file that would break the configuration', async (t) => {
  if (!prerequisites(t, skip)) return;
  assert.ok(lab);
  // the role's own check of a candidate, run by hand on the host with a broken candidate
  const r = await lab.ssh(
    'web02',
    `tmp=$(mktemp); sed 's/^\\tServerAlias .*/\\tServerAlias x\\n\\tNoSuchDirective on/' /etc/apache2/sites-available/hasetup.conf > "$tmp"; ` +
      `${validateInPlace('/etc/apache2/sites-available/hasetup.conf').replace('%s', '"$tmp"')}; rc=$?; rm -f "$tmp"; echo "rc=$rc"`,
  );
  assert.match(r.stdout, /rc=1$/m, r.stdout + r.stderr);
  assert.match(await ssh('web02', 'apache2ctl -t 2>&1'), /Syntax OK/);
  assert.doesNotMatch(await ssh('web02', 'cat /etc/apache2/sites-available/hasetup.conf'), /NoSuchDirective/);
});
