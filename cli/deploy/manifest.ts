// A site folder as a deploy sees it: every regular file under it (sub-folders included, `.git` and
// other version-control folders left out) with its SHA-256, and the site's content hash, which names
// its releases. A symbolic link, a device or a file name a release cannot carry is refused, naming
// the file, before any host is contacted.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface ManifestFile {
  /** Relative to the site's folder, with "/" between folders. */
  path: string;
  sha256: string;
  size: number;
}

export interface Manifest {
  root: string;
  files: ManifestFile[];
  /** SHA-256 of the list of paths and their checksums. */
  hash: string;
}

const SKIP = new Set(['.git', '.svn', '.hg']);
/** What a release may hold: no control characters, no backslash (sha256sum -c would read it as an escape). */
const safeName = (n: string): boolean => ![...n].some((c) => c.charCodeAt(0) < 0x20 || c === '\x7f' || c === '\\');

export class SiteError extends Error {}

export async function readManifest(root: string): Promise<Manifest> {
  const st = await stat(root).catch(() => null);
  if (!st?.isDirectory()) throw new SiteError(`the site ${root} is not a folder`);
  const files: ManifestFile[] = [];
  async function walk(rel: string): Promise<void> {
    const entries = await readdir(join(root, rel), { withFileTypes: true });
    for (const e of entries) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (!safeName(e.name)) throw new SiteError(`${join(root, path)}: a file name with control characters or a backslash`);
      if (e.isDirectory()) {
        if (!SKIP.has(e.name)) await walk(path);
      } else if (e.isFile()) {
        const content = await readFile(join(root, path));
        files.push({ path, sha256: createHash('sha256').update(content).digest('hex'), size: content.length });
      } else if (e.isSymbolicLink()) {
        throw new SiteError(`${join(root, path)}: a symbolic link (a release holds regular files only: copy what it points to)`);
      } else throw new SiteError(`${join(root, path)}: not a regular file`);
    }
  }
  await walk('');
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (files.length === 0) throw new SiteError(`the site ${root} holds no file`);
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.path}\0${f.sha256}\n`);
  return { root, files, hash: h.digest('hex') };
}

/** What a node's release differs in from the site: the files to send and the files to remove. */
export function difference(site: Manifest, node: Map<string, string>): { send: ManifestFile[]; remove: string[] } {
  const send = site.files.filter((f) => node.get(f.path) !== f.sha256);
  const have = new Set(site.files.map((f) => f.path));
  const remove = [...node.keys()].filter((p) => !have.has(p)).sort();
  return { send, remove };
}
