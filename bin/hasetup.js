#!/usr/bin/env node
// The hasetup command: runs the CLI built by `npm run build` (npm ci builds it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = fileURLToPath(new URL('../dist/cli/hasetup.js', import.meta.url));
if (!existsSync(built)) {
  console.error('hasetup: not built yet: run `npm ci` (or `npm run build`) in the hasetup checkout');
  process.exit(2);
}
await import(built);
