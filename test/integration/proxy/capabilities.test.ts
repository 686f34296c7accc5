// The proxy as the LBs run it: a non-root user with CAP_NET_BIND_SERVICE only (setpriv, in a network namespace of
// this test's own): it binds ports 80 and 443 (HTTPS), serves through two worker threads, and a reload adds a
// privileged port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prerequisites, rootUnavailable, commandUnavailable } from '../../helpers/env.ts';
import { ensureBuilt, makeCert, proxyBin, proxyNode, tmpDir, until } from './helpers.ts';

const ns = `hsrtpxcap${process.pid}`;
const inNs = (args: string[]) => spawnSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });

/** One request from inside the namespace: status code, or the error. */
function fetchIn(url: string): string {
  const js = `const m=require(${JSON.stringify(url.startsWith('https') ? 'https' : 'http')});m.get(${JSON.stringify(url)},{rejectUnauthorized:false},(r)=>{r.resume();r.on('end',()=>console.log(r.statusCode))}).on('error',(e)=>console.log(e.code||e.message))`;
  return inNs([proxyNode, '-e', js]).stdout.trim();
}

test('non-root with only CAP_NET_BIND_SERVICE: ports 80 and 443, two workers, a reload that adds port 81', async (t) => {
  if (!prerequisites(t, rootUnavailable(), commandUnavailable('setpriv', 'openssl'))) return;
  ensureBuilt();
  const dir = tmpDir();
  chmodSync(dir, 0o755);
  spawnSync('ip', ['netns', 'add', ns]);
  t.after(() => {
    for (const pid of spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean))
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {}
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  });
  assert.equal(spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']).status, 0);
  const pem = join(dir, 'site.pem');
  makeCert(pem, 'lb.test', ['lb.test']);
  chmodSync(pem, 0o644); // (the role gives it to the proxy's user with mode 0600)
  const backend = spawn(
    'ip',
    ['netns', 'exec', ns, proxyNode, '-e', "require('http').createServer((q,r)=>r.end('ok')).listen(8080,'127.0.0.1')"],
    { stdio: 'ignore' },
  );
  t.after(() => void backend.kill('SIGKILL'));
  const cfg = (extra: string) =>
    `global\n    nbthread 2\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\nfrontend web\n    bind 127.0.0.1:80\n    bind 127.0.0.1:443 ssl crt ${pem} alpn http/1.1\n${extra}    default_backend app\nbackend app\n    server s1 127.0.0.1:8080\n`;
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, cfg(''));
  const caps = [
    '--inh-caps',
    '-all,+net_bind_service',
    '--ambient-caps',
    '-all,+net_bind_service',
    '--bounding-set',
    '-all,+net_bind_service',
  ];
  const px = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      'setpriv',
      '--reuid',
      'nobody',
      '--regid',
      'nogroup',
      '--clear-groups',
      ...caps,
      '--',
      proxyNode,
      proxyBin,
      '-f',
      file,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  px.stderr!.on('data', (d) => (err += d));
  t.after(() => void px.kill('SIGKILL'));
  await until(`the proxy started (${err})`, () => err.includes('started (2 worker threads)'));
  await until('the backend', () => fetchIn('http://127.0.0.1:8080/') === '200');
  assert.equal(fetchIn('http://127.0.0.1:80/'), '200');
  assert.equal(fetchIn('https://127.0.0.1:443/'), '200');
  const pid = Number(
    inNs(['sh', '-c', `pgrep -u nobody -f ${JSON.stringify(proxyBin)}`])
      .stdout.trim()
      .split('\n')[0],
  );
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  assert.match(status, /^Uid:\s+65534\s+65534/m, 'runs as nobody');
  assert.match(status, /^CapEff:\s+0000000000000400$/m, 'with CAP_NET_BIND_SERVICE and nothing else');
  // a reload that binds another privileged port
  writeFileSync(file, cfg('    bind 127.0.0.1:81\n'));
  process.kill(pid, 'SIGHUP');
  await until(`reloaded (${err})`, () => err.includes('configuration reloaded'));
  assert.equal(fetchIn('http://127.0.0.1:81/'), '200');
  assert.doesNotMatch(err, /\[ALERT\]/);
});
