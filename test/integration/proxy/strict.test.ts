// Strict as HAProxy 2.6: each proxy keyword in each kind of section (defaults, frontend, backend, listen), and the
// global ones, judged by `haproxy -c` and by ours on the same file: valid, valid with a warning (the keyword ignored
// in a section without the capability it needs), or refused, and the same words for the warnings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prerequisites, commandUnavailable } from '../../helpers/env.ts';
import { ensureBuilt, proxyBin, proxyNode, tmpDir } from './helpers.ts';

const LINES = [
  'mode http',
  'log global',
  'no log',
  'maxconn 100',
  'fullconn 100',
  'retries 3',
  'retry-on conn-failure empty-response',
  'option redispatch',
  'option httplog',
  'option tcplog',
  'option dontlognull',
  'option httpclose',
  'option forceclose',
  'option http-server-close',
  'option http-keep-alive',
  'option forwardfor',
  'option abortonclose',
  'errorfile 503 /etc/hostname',
  'option httpchk GET /',
  'http-check expect status 200',
  'timeout connect 5s',
  'timeout client 5s',
  'timeout server 5s',
  'timeout queue 5s',
  'timeout http-request 5s',
  'timeout http-keep-alive 5s',
  'timeout check 5s',
  'timeout tunnel 5s',
  'balance roundrobin',
  'server s1 127.0.0.1:8080',
  'server s1 127.0.0.1:8080 cookie s1',
  'cookie SRV insert indirect nocache httponly secure',
  'cookie SRV prefix',
  'cookie SRV rewrite indirect',
  'cookie SRV insert preserve postonly domain .example.org',
  'default-server inter 2s',
  'stats enable',
  'stats uri /s',
  'stats auth a:b',
  'stats refresh 5s',
  'stats realm R',
  'stats hide-version',
  'description x',
  'default_backend bk',
  'use_backend bk if { path /x }',
  'acl a1 path /x',
  'http-request use-service prometheus-exporter',
  'monitor-uri /m',
  'bind 127.0.0.1:18999',
];
const GLOBAL = ['maxconn 100', 'nbthread 2', 'nbproc 2', 'pidfile /tmp/x.pid', 'log-tag foo', 'node n1', 'stats timeout 10s'];
const SECTIONS = ['defaults', 'frontend', 'backend', 'listen'] as const;

function config(sec: string, line: string): string {
  let s = 'global\n    nbthread 1\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n';
  if (sec === 'global')
    return (
      s.replace('    nbthread 1\n', `    ${line}\n`) +
      'frontend fx\n    bind 127.0.0.1:18998\n    default_backend bk\nbackend bk\n    server b1 127.0.0.1:8081\n'
    );
  if (sec === 'defaults') s += `    ${line}\nfrontend fx\n    bind 127.0.0.1:18998\n    default_backend bk\n`;
  else {
    s += `${sec} px\n`;
    if (sec !== 'backend' && !line.startsWith('bind')) s += '    bind 127.0.0.1:18997\n';
    s += `    ${line}\n`;
    if (sec === 'frontend' && !/^(default|use)_backend/.test(line)) s += '    default_backend bk\n';
    if (sec === 'backend') s += 'frontend fx\n    bind 127.0.0.1:18998\n    default_backend bk\n';
  }
  return s + 'backend bk\n    server b1 127.0.0.1:8081\n';
}

/** valid | warning: <text> | refused, from a -c run (the pid and HAProxy's "config :" prefix left out). */
function verdict(status: number | null, out: string): string {
  if (status === 1) return 'refused';
  const w = out.split('\n').filter((l) => l.includes('[WARNING]') && !/log format ignored|has no 'timeout/.test(l));
  if (w.length === 0) return 'valid';
  return (
    'warning: ' +
    w.map((l) => l.replace(/^\[WARNING\]\s+(\(\d+\) : config : )?/, '').replace(/'[^']*' : (?=(backend|proxy) ')/, '')).join(' | ')
  );
}

test('each keyword in each section: -c judges it as haproxy -c does', (t) => {
  if (!prerequisites(t, commandUnavailable('haproxy'))) return;
  ensureBuilt();
  const dir = tmpDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.cfg');
  const differ: string[] = [];
  let warned = 0;
  const cases: [string, string][] = [
    ...LINES.flatMap((l) => SECTIONS.map((s): [string, string] => [s, l])),
    ...GLOBAL.map((l): [string, string] => ['global', l]),
  ];
  for (const [sec, line] of cases) {
    writeFileSync(file, config(sec, line));
    const h = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
    const o = spawnSync(proxyNode, [proxyBin, '-c', '-f', file], { encoding: 'utf8' });
    const hv = verdict(h.status, h.stdout + h.stderr);
    const ov = verdict(o.status, o.stdout + o.stderr);
    if (hv.startsWith('warning')) warned++;
    if (hv !== ov) differ.push(`${sec}: '${line}'\n   haproxy: ${hv}\n   ours:    ${ov}`);
  }
  assert.ok(warned >= 10, `HAProxy warned about ${warned} misplaced keywords`);
  assert.deepEqual(differ, []);
});
