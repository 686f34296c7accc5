// The stats page in a real browser: headless Chromium renders it and shows each server's state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { prerequisites, commandUnavailable } from '../../helpers/env.ts';
import { fakeBackend, freePort, get, parseCsv, startProxy, tmpDir, until, HTTP_DEFAULTS } from './helpers.ts';

function chromium(args: string[], timeout = 60000): Promise<string> {
  const profile = tmpDir();
  return new Promise((res, rej) => {
    const p = spawn(
      'chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeout);
    p.on('exit', (code) => {
      clearTimeout(t);
      rmSync(profile, { recursive: true, force: true });
      if (code === 0) res(out);
      else rej(new Error(`chromium exited ${code}: ${err.slice(-500)}`));
    });
  });
}

test('headless Chromium renders the stats page with every server state', async (t) => {
  if (!prerequisites(t, commandUnavailable('chromium'))) return;
  const up = await fakeBackend('up');
  const downPort = await freePort();
  const port = await freePort();
  const px = await startProxy(
    `${HTTP_DEFAULTS}listen webfarm
    bind 127.0.0.1:${port}
    stats enable
    stats uri /haproxy?stats
    server web01 127.0.0.1:${up.port} check inter 200
    server web02 127.0.0.1:${downPort} check inter 200
    server web03 127.0.0.1:${up.port} disabled
`,
    port,
  );
  t.after(async () => {
    await px.stop();
    await up.close();
  });
  await until(
    'web02 DOWN',
    async () => parseCsv((await get(port, '/haproxy?stats;csv')).body).find((r) => r.svname === 'web02')?.status === 'DOWN',
  );
  const dom = await chromium(['--dump-dom', `http://127.0.0.1:${port}/haproxy?stats`]);
  assert.match(dom, /<title>Statistics Report for hasetup-proxy<\/title>/);
  const state = (name: string) => new RegExp(`<tr class="srv" data-server="${name}" data-status="([^"]+)"`).exec(dom)?.[1];
  assert.equal(state('web01'), 'UP');
  assert.equal(state('web02'), 'DOWN');
  assert.equal(state('web03'), 'MAINT');
  assert.match(dom, /<tr class="fe" data-server="FRONTEND" data-status="OPEN"/);
  assert.match(dom, /<tr class="be" data-server="BACKEND" data-status="UP"/);
});
