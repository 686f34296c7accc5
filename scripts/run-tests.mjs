// Runs the test files of the given levels (unit, integration, e2e) with node's test runner, one
// file at a time (integration and end-to-end tests share namespaces, ports and the lab).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const levels = process.argv.slice(2);
if (levels.length === 0) levels.push('unit', 'integration', 'e2e');

function walk(dir) {
  const out = [];
  let entries;
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (e.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const only = process.env.TEST_ONLY; // substring filter on file paths, for development
const files = levels.flatMap((l) => walk(join(root, 'test', l))).filter((f) => !only || f.includes(only));
if (files.length === 0) {
  console.error(`no test files for ${levels.join(', ')}`);
  process.exit(1);
}
console.log(`running ${files.length} test files: ${files.map((f) => relative(root, f)).join(' ')}`);
// A test file whose tests are over ends even when a failed test left a socket or a server open (Node 20.14 and later):
// a proxy that did not start must fail its test, not hang the run.
const [major, minor] = process.versions.node.split('.').map(Number);
const forceExit = major >= 22 || (major === 20 && minor >= 14) ? ['--test-force-exit'] : [];
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...forceExit, ...files],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
process.exit(r.status ?? 1);
