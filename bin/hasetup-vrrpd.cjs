#!/usr/bin/env node
// hasetup-vrrpd: the bundled VRRP daemon (runtime/vrrpd), as built by `npm run build`.
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const built = join(__dirname, '..', 'dist', 'runtime', 'hasetup-vrrpd.cjs');
if (!existsSync(built)) {
  console.error('hasetup-vrrpd: not built yet: run `npm ci` (or `npm run build`) in the hasetup checkout');
  process.exit(2);
}
require(built);
