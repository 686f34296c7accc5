// Builds a runtime part's Node-API addon (one C file) with the machine's C compiler straight against
// Node's own headers, no node-gyp:
//   dist/runtime/<name>-linux-x64.node     always, when building on x86_64 Linux
//   dist/runtime/<name>-linux-arm64.node   on x86_64 when aarch64-linux-gnu-gcc is installed, or natively on arm64
// Only Node-API (version 8) is used, so one binary loads in Node 18, 20 and later.
// Without headers or a compiler the rest of the build still goes on (the controller does not need the
// addons); what each runtime part does without its addon is said in its README.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { arch, platform } from 'node:os';
import { fileURLToPath } from 'node:url';

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

/**
 * @param {{ root: string, name: string, src: string, libs?: string[], hook?: string }} o
 *   name: the file prefix (vrrpd -> vrrpd-linux-x64.node); src: the C file, relative to root;
 *   hook: the calling build.mjs (a change to it rebuilds too)
 */
export async function buildAddon({ root, name, src, libs = [], hook }) {
  if (platform() !== 'linux') {
    console.warn(`${name}: the native part is Linux only; not built on`, platform());
    return;
  }
  const include = nodeHeaders();
  if (!include) {
    console.warn(`${name}: Node headers (node_api.h) not found: the native part is NOT built; set HASETUP_NODE_INCLUDE to their directory`);
    return;
  }
  const file = join(root, src);
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
    console.warn(`${name}: no C compiler for linux ${here} (supported: x64, arm64): the native part is NOT built`);
    return;
  }
  // the addon's C file, the headers the addons share (runtime/common/*.h), this script and the part's hook
  const common = join(root, 'runtime', 'common');
  const headers = existsSync(common)
    ? readdirSync(common)
        .filter((f) => f.endsWith('.h'))
        .map((f) => join(common, f))
    : [];
  const deps = [file, ...headers, fileURLToPath(import.meta.url), ...(hook ? [hook] : [])];
  for (const t of targets) {
    const out = join(outDir, `${name}-linux-${t.arch}.node`);
    if (newer(out, deps)) continue;
    const args = [
      '-shared',
      '-fPIC',
      '-O2',
      '-std=gnu11',
      '-Wall',
      '-Wextra',
      '-fvisibility=hidden',
      `-DNODE_GYP_MODULE_NAME=${name}`,
      `-I${include}`,
      '-o',
      out,
      file,
      ...libs,
    ];
    const r = spawnSync(t.cc, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${name}: ${t.cc} failed for ${t.arch}:\n${r.stderr || r.error}`);
  }
}
