// The checkout's root folder, found upwards from the calling module: the same answer from the
// TypeScript sources (tests) and from the bundle and its chunks in dist/cli/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function findRepoRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'roles'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the hasetup checkout above ${from}`);
    dir = up;
  }
}
