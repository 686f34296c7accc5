// The version, once: package.json's (bundled into dist/cli by esbuild, read from the checkout by tsx).
import pkg from '../package.json' with { type: 'json' };

export const VERSION: string = pkg.version;
