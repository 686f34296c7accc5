// Operations in pyinfra's style: probed state + facts in, commands and ok/changed out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { file, directory, packages, service, sysctl, user, group, command, PlanError, type PlanContext } from '../../../cli/engine/ops.ts';
import type { Facts } from '../../../cli/engine/facts.ts';

const facts = { hostname: 'web01', container: false } as unknown as Facts;
const ctx: PlanContext = { facts, earlierChange: false };
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test('file: same content, owner and mode -> ok, no command', () => {
  const op = file({ path: '/etc/motd', content: 'hello\n' });
  assert.deepEqual(op.plan(`root root 644\n${sha('hello\n')}`, ctx), { changed: false });
});

test('file: absent -> written through a temp file in the same folder, then renamed', () => {
  const op = file({ path: '/etc/motd', content: 'hello\n', mode: '0640', owner: 'root', group: 'adm' });
  const p = op.plan('absent', ctx);
  assert.equal(p.changed, true);
  if (!p.changed) return;
  assert.match(p.script, /mktemp \/etc\/motd\.hasetup\.XXXXXX/);
  assert.match(p.script, /chown root:adm "\$tmp"/);
  assert.match(p.script, /chmod 640 "\$tmp"/);
  assert.match(p.script, /mv -f "\$tmp" \/etc\/motd/);
  assert.equal(p.stdin, 'hello\n');
  assert.match(p.diff ?? '', /^\+hello$/m);
  assert.equal(p.why, 'file absent');
});

test('file: different content -> unified diff against the old content', () => {
  const op = file({ path: '/etc/app.conf', content: 'a=1\nb=3\n' });
  const old = Buffer.from('a=1\nb=2\n').toString('base64');
  const p = op.plan(`root root 644\n${sha('a=1\nb=2\n')}\n${old}`, ctx);
  assert.ok(p.changed);
  if (!p.changed) return;
  assert.match(p.diff ?? '', /^-b=2$/m);
  assert.match(p.diff ?? '', /^\+b=3$/m);
  assert.equal(p.why, 'content differs');
});

test('file: only the mode differs -> chmod in place, no transfer', () => {
  const op = file({ path: '/etc/app.conf', content: 'x\n', mode: '0600' });
  const p = op.plan(`root root 644\n${sha('x\n')}`, ctx);
  assert.ok(p.changed);
  if (!p.changed) return;
  assert.equal(p.script, 'chown root:root /etc/app.conf && chmod 600 /etc/app.conf');
  assert.equal(p.stdin, undefined);
});

test('file: validate command runs on the temp file before the rename', () => {
  const op = file({ path: '/etc/haproxy/haproxy.cfg', content: 'global\n', validate: 'haproxy -c -f %s' });
  const p = op.plan('absent', ctx);
  assert.ok(p.changed);
  if (!p.changed) return;
  const v = p.script.indexOf('haproxy -c -f "$tmp"');
  assert.ok(v > 0 && v < p.script.indexOf('mv -f'));
});

test('file: sensitive content never shows in the diff', () => {
  const op = file({ path: '/etc/secret', content: 'password=hunter22\n', sensitive: true });
  const p = op.plan('absent', ctx);
  assert.ok(p.changed);
  if (!p.changed) return;
  assert.doesNotMatch(p.diff ?? '', /hunter22/);
});

test('directory: absent -> mkdir, chown, chmod; right -> ok; a file in the way -> error', () => {
  const op = directory({ path: '/srv/x', mode: '0750' });
  const p = op.plan('absent', ctx);
  assert.ok(p.changed && p.script === 'mkdir -p /srv/x && chown root:root /srv/x && chmod 750 /srv/x');
  assert.deepEqual(op.plan('root root 750', ctx), { changed: false });
  assert.throws(() => op.plan('notdir', ctx), PlanError);
});

test('packages: installed ones are left alone, missing ones installed non-interactively', () => {
  const op = packages(['apache2', 'curl']);
  assert.deepEqual(op.plan('apache2 ii \ncurl ii \n', ctx), { changed: false });
  const p = op.plan('apache2 ii \ncurl un \n', ctx);
  assert.ok(p.changed);
  if (!p.changed) return;
  assert.match(p.script, /DEBIAN_FRONTEND=noninteractive/);
  assert.match(p.script, /DPkg::Lock::Timeout=300/);
  assert.match(p.script, /install --no-install-recommends curl/);
  assert.doesNotMatch(p.script, /install --no-install-recommends apache2/);
  assert.equal(p.why, 'install curl');
});

test('service: enabled and active -> ok; stopped and disabled -> enable and start', () => {
  const op = service({ name: 'apache2', enabled: true, started: true });
  assert.deepEqual(op.plan('enabled\n\nactive\n\nloaded', ctx), { changed: false });
  const p = op.plan('disabled\n\ninactive\n\nloaded', ctx);
  assert.ok(p.changed);
  if (!p.changed) return;
  assert.match(p.script, /^systemctl enable -q apache2\.service && systemctl start apache2\.service/);
});

test('service: a unit that does not exist fails, unless an earlier change (check mode) would create it', () => {
  const op = service({ name: 'apache2', started: true });
  assert.throws(() => op.plan('\n\ninactive\n\nnot-found', ctx), /unit apache2.service not found/);
  const p = op.plan('\n\ninactive\n\nnot-found', { facts, earlierChange: true });
  assert.ok(p.changed && /depends on an earlier change/.test(p.why));
});

test('sysctl: live value and persisted file both checked', () => {
  const op = sysctl({ key: 'net.ipv4.ip_nonlocal_bind', value: 1 });
  assert.match(op.probe(), /\/proc\/sys\/net\/ipv4\/ip_nonlocal_bind/);
  assert.deepEqual(op.plan('1\n\nnet.ipv4.ip_nonlocal_bind = 1', ctx), { changed: false });
  const p = op.plan('0\n\nabsent', ctx);
  assert.ok(p.changed);
  if (!p.changed) return;
  assert.match(p.script, /> \/etc\/sysctl\.d\/60-hasetup-net\.ipv4\.ip_nonlocal_bind\.conf && sysctl -q -w net\.ipv4\.ip_nonlocal_bind=1/);
  const persistedOnly = op.plan('1\n\nabsent', ctx);
  assert.ok(persistedOnly.changed && persistedOnly.why === 'persist');
});

test('user and group: created when absent, ok when present', () => {
  assert.deepEqual(group({ name: 'haproxy', system: true }).plan('present', ctx), { changed: false });
  const g = group({ name: 'haproxy', system: true }).plan('absent', ctx);
  assert.ok(g.changed && g.script === 'groupadd --system haproxy');
  const u = user({ name: 'haproxy', group: 'haproxy', system: true });
  const p = u.plan('absent', ctx);
  assert.ok(
    p.changed && p.script === 'useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin --gid haproxy --no-create-home haproxy',
  );
  assert.deepEqual(u.plan('haproxy:x:999:999::/nonexistent:/usr/sbin/nologin', ctx), { changed: false });
});

test('command: needs a guard; runs only when the guard says so', () => {
  assert.throws(() => command({ script: 'make world' }), /needs a creates or unless guard/);
  const op = command({ script: 'touch /x', creates: '/x' });
  assert.deepEqual(op.plan('created\nfail', ctx), { changed: false });
  const p = op.plan('missing\nfail', ctx);
  assert.ok(p.changed && p.script === 'touch /x');
  const u = command({ script: 'hostname web01', unless: '[ "$(hostname)" = web01 ]' });
  assert.deepEqual(u.plan('missing\npass', ctx), { changed: false });
});
