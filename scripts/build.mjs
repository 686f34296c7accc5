// Builds what runs outside the checkout's TypeScript:
//   dist/cli/hasetup.js           the controller CLI, with its chunks (node_modules stay external)
//   dist/runtime/hasetup-*.cjs    the LB runtime, each one self-contained (no node_modules on the LB)
// and, through each runtime part's own build hook (runtime/*/build.mjs), anything native it needs.
import { build } from 'esbuild';
import { chmodSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// the runtime programs print package.json's version (runtime/common/version.ts)
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;

// The failover report's browser script (cli/failover/chart/draw.ts), as report-chart.ts compiles it when
// loaded from the sources: the bundle carries it as a constant (no compiler needed where the bundle runs).
const { tsImport } = await import('tsx/esm/api');
const { CHART_SCRIPT } = await tsImport(pathToFileURL(join(root, 'cli/failover/report-chart.ts')).href, import.meta.url);

// Split into chunks: what a command needs (the engine, ssh, the inventory schema...) loads only
// when that command runs, so `hasetup --help` and `hasetup lab exec` start fast.
await build({
  entryPoints: { hasetup: join(root, 'cli/main.ts') },
  outdir: join(root, 'dist/cli'),
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node18',
  packages: 'external',
  sourcemap: 'linked',
  define: { __HASETUP_CHART_SCRIPT__: JSON.stringify(CHART_SCRIPT) },
  logLevel: 'warning',
});

// Each runtime part (runtime/<name>/main.ts) becomes one self-contained file (runtime/common/ has no main.ts: it is
// the small code both parts share, bundled into each).
const runtimeDir = join(root, 'runtime');
for (const name of readdirSync(runtimeDir, { withFileTypes: true })) {
  if (!name.isDirectory()) continue;
  const main = join(runtimeDir, name.name, 'main.ts');
  if (!existsSync(main)) continue;
  const hook = join(runtimeDir, name.name, 'build.mjs');
  const mod = existsSync(hook) ? await import(pathToFileURL(hook).href) : null;
  if (mod) await mod.default({ root });
  // a part's build hook may name the Node flags it runs with: they go into its #! line
  const flags = mod?.nodeFlags ?? [];
  await build({
    entryPoints: [main],
    outfile: join(root, 'dist/runtime', `hasetup-${name.name}.cjs`),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node18',
    minify: false,
    define: { __HASETUP_NODE_FLAGS__: JSON.stringify(flags), __HASETUP_VERSION__: JSON.stringify(version) },
    banner: { js: flags.length ? `#!/usr/bin/env -S node ${flags.join(' ')}` : '#!/usr/bin/env node' },
    logLevel: 'warning',
  });
  chmodSync(join(root, 'dist/runtime', `hasetup-${name.name}.cjs`), 0o755);
}
