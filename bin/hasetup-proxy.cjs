#!/usr/bin/env -S node --max-semi-space-size=32
// hasetup-proxy: the bundled load-balancing proxy (runtime/proxy), as built by `npm run build`. The #! line carries
// the Node flags of the bundle's own (runtime/proxy/build.mjs nodeFlags).
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const built = join(__dirname, '..', 'dist', 'runtime', 'hasetup-proxy.cjs');
if (!existsSync(built)) {
  console.error('hasetup-proxy: not built yet: run `npm ci` (or `npm run build`) in the hasetup checkout');
  process.exit(2);
}
require(built);
