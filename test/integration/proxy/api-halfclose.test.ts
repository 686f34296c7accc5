// The runtime API as scripts use it: `echo 'show stat' | socat - UNIX-CONNECT:...` sends the command and
// shuts its side of the socket at once; the answer must still come (HAProxy gives it), with one
// worker and with several (where `show stat` gathers the workers' counters first).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { fakeBackend, freePort, parseCsv, startProxy, tmpDir } from './helpers.ts';

/** Sends one command and half-closes at once, as `echo cmd | socat` does; resolves with all that came back. */
function halfClosed(path: string, cmd: string): Promise<string> {
  return new Promise((res, rej) => {
    const s = net.connect(path);
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d) => (out += d));
    s.on('end', () => res(out));
    s.on('error', rej);
    s.on('connect', () => s.end(cmd + '\n'));
  });
}

for (const workers of [1, 2])
  test(`show stat and show info answer a client that shut its side after the command (${workers} worker${workers > 1 ? 's' : ''})`, async (t) => {
    const b = await fakeBackend('b1');
    const port = await freePort();
    const sock = join(tmpDir(), 'admin.sock');
    const cfg = `global
    nbthread ${workers}
    stats socket ${sock} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen app
    bind 127.0.0.1:${port}
    server b1 127.0.0.1:${b.port}
`;
    const px = await startProxy(cfg, port);
    t.after(async () => {
      await px.stop();
      await b.close();
    });
    const rows = parseCsv(await halfClosed(sock, 'show stat'));
    assert.deepEqual(
      rows.map((r) => `${r.pxname}/${r.svname}`),
      ['app/FRONTEND', 'app/b1', 'app/BACKEND'],
    );
    assert.match(await halfClosed(sock, 'show info'), /^Name: hasetup-proxy$/m);
  });
