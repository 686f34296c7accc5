// The command line as the runtime role uses it: `-c` before swapping a config in, `-f` repeated, privilege drop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, proxyBin, proxyNode, tmpDir, startProxy, freePort, fakeBackend, get, until, workerThreads } from './helpers.ts';
import { prerequisites, rootUnavailable } from '../../helpers/env.ts';

function run(args: string[]) {
  ensureBuilt();
  return spawnSync(proxyNode, [proxyBin, ...args], { encoding: 'utf8' });
}

test('-c: valid, invalid (every alert with file:line and keyword), missing file, several -f', (t) => {
  const dir = tmpDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.cfg');
  const bad = join(dir, 'bad.cfg');
  const part1 = join(dir, 'global.cfg');
  const part2 = join(dir, 'proxies.cfg');
  writeFileSync(good, 'defaults\n    mode http\nlisten x\n    bind 127.0.0.1:1\n    server s 127.0.0.1:2\n');
  writeFileSync(
    bad,
    'global\n    maxconn ten\nlisten x\n    bind 127.0.0.1:1\n    balance roundrobn\n    server s 127.0.0.1:2 check inter 1z\n',
  );
  writeFileSync(part1, 'global\n    maxconn 100\n');
  writeFileSync(
    part2,
    'defaults\n    mode http\nfrontend f\n    bind 127.0.0.1:1\n    default_backend b\nbackend b\n    server s 127.0.0.1:2\n',
  );

  const ok = run(['-c', '-f', good]);
  assert.equal(ok.status, 0);
  assert.equal(ok.stdout, 'Configuration file is valid\n');

  const ko = run(['-c', '-f', bad]);
  assert.equal(ko.status, 1);
  assert.equal(ko.stdout, '');
  const lines = ko.stderr.trim().split('\n');
  assert.match(lines[0], new RegExp(`^\\[ALERT\\] parsing \\[${bad.replace(/[.]/g, '\\.')}:2\\] : 'maxconn' : `));
  assert.match(lines[1], /:5\] : 'balance' : unsupported algorithm 'roundrobn'/);
  assert.match(lines[2], /:6\] : 'server' : invalid time value '1z'/);
  assert.match(lines[3], /Fatal errors found in configuration/);

  const split = run(['-c', '-f', part1, '-f', part2]);
  assert.equal(split.status, 0, split.stderr);

  const missing = run(['-c', '-f', join(dir, 'nope.cfg')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope\.cfg:0\] : '-f' : could not open configuration file/);

  const noUser = join(dir, 'user.cfg');
  writeFileSync(noUser, 'global\n    user no-such-user-hasetup\n' + readFileSync(good, 'utf8'));
  const u = run(['-c', '-f', noUser]);
  assert.equal(u.status, 1);
  assert.match(u.stderr, /cannot find user id for 'no-such-user-hasetup'/);

  assert.equal(run([]).status, 1);
  assert.equal(run(['-D', '-f', good]).status, 1);
});

test('user/group: the proxy (every thread of it) drops root once its listeners are open', async (t) => {
  if (!prerequisites(t, rootUnavailable())) return;
  const b = await fakeBackend('web');
  const port = await freePort();
  const px = await startProxy(
    `global\n    user nobody\n    group nogroup\n    nbthread 2\ndefaults\n    mode http\n    timeout client 5s\n    timeout server 5s\nlisten x\n    bind 127.0.0.1:${port}\n    server s 127.0.0.1:${b.port}\n`,
    port,
  );
  t.after(async () => {
    await px.stop();
    await b.close();
  });
  assert.equal((await get(port, '/')).status, 200);
  const nobody = Number(
    readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('nobody:'))!
      .split(':')[2],
  );
  const pid = px.proc.pid!;
  await until('two workers started', () => px.stderr().includes('started (2 worker threads)'));
  const uid = (task: string) => Number(/^Uid:\s+\d+\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8'))![1]);
  const tasks = readdirSync(`/proc/${pid}/task`);
  assert.ok(workerThreads(pid).length === 2);
  assert.deepEqual([...new Set(tasks.map(uid))], [nobody], 'every thread runs as nobody');
});
