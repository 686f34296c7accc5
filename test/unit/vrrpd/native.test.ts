// The prebuilt Node-API addon next to the bundle: it loads in this Node and exports what the daemon
// uses; the arm64 build exists (and is an aarch64 ELF) when the cross compiler is installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { prerequisites, commandUnavailable } from '../../helpers/env.ts';

const dist = join(process.cwd(), 'dist/runtime');

function elfMachine(file: string): number {
  const b = readFileSync(file);
  assert.equal(b.subarray(0, 4).toString('latin1'), '\x7fELF');
  return b.readUInt16LE(18);
}

test('the addon for this machine loads and exports the raw socket, netlink and frame functions', (t) => {
  if (process.platform !== 'linux' || !['x64', 'arm64'].includes(arch())) {
    t.skip('the addon is built for Linux x64 and arm64 only');
    return;
  }
  const file = join(dist, `vrrpd-linux-${arch()}.node`);
  assert.ok(existsSync(file), `${file} is built by npm run build`);
  const m = { exports: {} as Record<string, unknown> };
  process.dlopen(m, file);
  for (const f of ['open', 'send', 'close', 'sendFrame', 'addrAdd', 'addrDel']) assert.equal(typeof m.exports[f], 'function', f);
  assert.equal(elfMachine(file), arch() === 'x64' ? 62 : 183);
  // bad arguments are JavaScript errors, not crashes
  assert.throws(() => (m.exports.open as (...a: unknown[]) => unknown)('no-such-if0', false, () => {}), /no-such-if0/);
  assert.throws(() => (m.exports.send as (...a: unknown[]) => unknown)({}, Buffer.alloc(1), '1.2.3.4'), /bad handle/);
});

test('arm64 addon built with the cross compiler when it is installed', (t) => {
  if (arch() !== 'arm64' && !prerequisites(t, commandUnavailable('aarch64-linux-gnu-gcc'))) return;
  const file = join(dist, 'vrrpd-linux-arm64.node');
  assert.ok(existsSync(file));
  assert.equal(elfMachine(file), 183); // EM_AARCH64
});
