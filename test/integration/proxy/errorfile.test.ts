// errorfile and option abortonclose against Debian's HAProxy 2.6, on the same config and requests: the errorfile's
// 503 (body and headers, Retry-After) when `timeout queue` expires, and a client that half-closes while its request
// waits in the queue: with abortonclose the request leaves the queue and never reaches the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { prerequisites, commandUnavailable } from '../../helpers/env.ts';
import {
  startHaproxy,
  ensureBuilt,
  fakeBackend,
  freePort,
  get,
  proxyBin,
  proxyNode,
  sleep,
  startProxy,
  tmpDir,
  until,
  type FakeBackend,
} from './helpers.ts';

const PAGE = '<html><body><h1>Busy</h1>Please try again in a few seconds.</body></html>\n';
const ERRORFILE = `HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nCache-Control: no-cache\r\nRetry-After: 5\r\nContent-Length: ${PAGE.length}\r\nConnection: close\r\n\r\n${PAGE}`;

function config(q: number, abort: number, slow: number, file: string): string {
  return `global
    nbthread 1
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    errorfile 503 ${file}

listen queued
    bind 127.0.0.1:${q}
    timeout queue 300ms
    server s1 127.0.0.1:${slow} maxconn 1

listen abort
    bind 127.0.0.1:${abort}
    option abortonclose
    timeout queue 3s
    server s1 127.0.0.1:${slow} maxconn 1
`;
}

/** A request sent whole, then the client's half of the connection closed; what came back before the close. */
function halfClosed(port: number, path: string): Promise<string> {
  return new Promise((res) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => s.end(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
    let text = '';
    s.setEncoding('latin1');
    s.on('data', (d) => (text += d));
    s.on('close', () => res(text));
    s.on('error', () => res(text));
    setTimeout(() => s.destroy(), 4000);
  });
}

async function scenario(q: number, abort: number, slow: FakeBackend) {
  const out: Record<string, unknown> = {};
  slow.requests.length = 0;
  // queue timeout: one request holds the only slot, the next waits 300 ms and gets the errorfile
  const first = get(q, '/hold');
  await until('the first request at the server', () => slow.requests.length === 1);
  const r = await get(q, '/queued');
  out.queued = { status: r.status, body: r.body, retryAfter: r.headers['retry-after'], type: r.headers['content-type'] };
  await first;
  // abortonclose: a half-closed request waiting in the queue is dropped and never reaches the server
  slow.requests.length = 0;
  const hold = get(abort, '/hold2');
  await until('the holding request at the server', () => slow.requests.length === 1);
  const gone = await Promise.race([halfClosed(abort, '/gave-up'), sleep(3500).then(() => 'still open')]);
  await hold;
  await sleep(200);
  out.abort = { answer: gone, reached: slow.requests.map((x) => x.url) };
  return out;
}

test('errorfile 503 on queue timeout and abortonclose answer as HAProxy 2.6 does', async (t) => {
  if (!prerequisites(t, commandUnavailable('haproxy'))) return;
  const slow = await fakeBackend('slow');
  slow.mode = { kind: 'delay', ms: 1000 };
  const dir = tmpDir();
  const file = join(dir, '503.http');
  writeFileSync(file, ERRORFILE);
  const qH = await freePort();
  const aH = await freePort();
  const qO = await freePort();
  const aO = await freePort();
  const cfgH = join(dir, 'h.cfg');
  writeFileSync(cfgH, config(qH, aH, slow.port, file));
  const hap = await startHaproxy(cfgH, qH);
  const ours = await startProxy(config(qO, aO, slow.port, file), qO).catch((e: unknown) => {
    hap.stop();
    throw e;
  });
  t.after(async () => {
    hap.stop();
    await ours.stop();
    await slow.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const h = await scenario(qH, aH, slow);
  const o = await scenario(qO, aO, slow);
  assert.deepEqual(h.queued, { status: 503, body: PAGE, retryAfter: '5', type: 'text/html' });
  assert.deepEqual((h.abort as { reached: string[] }).reached, ['/hold2']);
  assert.deepEqual(o, h);
});

test('errorfile is checked as haproxy -c checks it', (t) => {
  if (!prerequisites(t, commandUnavailable('haproxy'))) return;
  ensureBuilt();
  const dir = tmpDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.http');
  const badLength = join(dir, 'badlen.http');
  const notHttp = join(dir, 'nothttp.http');
  writeFileSync(good, ERRORFILE);
  writeFileSync(badLength, 'HTTP/1.1 503 Busy\r\nContent-Length: 99\r\n\r\nshort\n');
  writeFileSync(notHttp, 'this is not a response\n');
  const cfg = join(dir, 'c.cfg');
  const verdicts: string[] = [];
  for (const line of [
    `errorfile 503 ${good}`,
    `errorfile 404 ${good}`,
    `errorfile 999 ${good}`,
    `errorfile 418 ${good}`,
    `errorfile 503 ${join(dir, 'missing.http')}`,
    `errorfile 503 ${badLength}`,
    `errorfile 503 ${notHttp}`,
    `errorfile 503`,
    'option abortonclose',
  ]) {
    writeFileSync(
      cfg,
      `defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\nbackend b\n    ${line}\n    server s 127.0.0.1:1\nfrontend f\n    bind 127.0.0.1:18996\n    default_backend b\n    ${line}\n`,
    );
    const h = spawnSync('haproxy', ['-c', '-f', cfg], { encoding: 'utf8' });
    const o = spawnSync(proxyNode, [proxyBin, '-c', '-f', cfg], { encoding: 'utf8' });
    verdicts.push(`${line}: haproxy ${h.status === 0 ? 'valid' : 'refused'}, ours ${o.status === 0 ? 'valid' : 'refused'}`);
  }
  for (const v of verdicts) {
    const [, hv, ov] = /haproxy (\w+), ours (\w+)/.exec(v)!;
    assert.equal(ov, hv, v);
  }
});
