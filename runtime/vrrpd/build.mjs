// Builds the vrrpd native part (native/vrrpnet.c, a Node-API addon for raw IPv4 and AF_PACKET
// sockets) with the machine's C compiler straight against Node's own headers, no node-gyp:
//   dist/runtime/vrrpd-linux-x64.node     always, when building on x86_64 Linux
//   dist/runtime/vrrpd-linux-arm64.node   on x86_64 when aarch64-linux-gnu-gcc is installed, or natively on arm64
// Only Node-API (version 8) is used, so one binary loads in Node 18, 20 and later.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { arch, platform } from 'node:os';

const triplets = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function nodeHeaders() {
  const candidates = [
    process.env.HASETUP_NODE_INCLUDE,
    join(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ].filter(Boolean);
  return candidates.find((d) => existsSync(join(d, 'node_api.h')));
}

function newer(out, srcs) {
  if (!existsSync(out)) return false;
  const t = statSync(out).mtimeMs;
  return srcs.every((s) => statSync(s).mtimeMs <= t);
}

export default async function buildVrrpd({ root }) {
  if (platform() !== 'linux') {
    console.warn('vrrpd: the native part is Linux only; not built on', platform());
    return;
  }
  const include = nodeHeaders();
  // Without headers or a compiler the rest of the build still goes on (the controller does not need
  // the addon); hasetup-vrrpd then refuses to start and its tests fail, saying what is missing.
  if (!include) {
    console.warn('vrrpd: Node headers (node_api.h) not found: the native part is NOT built; set HASETUP_NODE_INCLUDE to their directory');
    return;
  }
  const src = join(root, 'runtime/vrrpd/native/vrrpnet.c');
  const outDir = join(root, 'dist/runtime');
  mkdirSync(outDir, { recursive: true });
  const here = arch();
  const targets = [];
  if ((here === 'x64' || here === 'arm64') && (have('gcc') || have('cc'))) targets.push({ arch: here, cc: have('gcc') ? 'gcc' : 'cc' });
  for (const a of Object.keys(triplets)) {
    if (a === here) continue;
    const cc = `${triplets[a]}-gcc`;
    if (have(cc)) targets.push({ arch: a, cc });
  }
  if (targets.length === 0) {
    console.warn(`vrrpd: no C compiler for linux ${here} (supported: x64, arm64): the native part is NOT built`);
    return;
  }
  for (const t of targets) {
    const out = join(outDir, `vrrpd-linux-${t.arch}.node`);
    if (newer(out, [src, new URL(import.meta.url).pathname])) continue;
    const args = ['-shared', '-fPIC', '-O2', '-std=gnu11', '-Wall', '-Wextra', '-fvisibility=hidden',
      '-DNODE_GYP_MODULE_NAME=vrrpnet', `-I${include}`, '-o', out, src, '-lpthread'];
    const r = spawnSync(t.cc, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`vrrpd: ${t.cc} failed for ${t.arch}:\n${r.stderr || r.error}`);
  }
}
