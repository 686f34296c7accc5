// Files of the controller that hold secrets (the secrets file, the generated certificate): written
// mode 0600 through a temporary file in the same folder, so that a reader never sees half a file.
import { randomBytes } from 'node:crypto';
import { open, link, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

async function writeTemp(file: string, text: string): Promise<string> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return tmp;
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {}
}

/**
 * Creates file with text, mode 0600, atomically and without replacing a file that appeared in the
 * meantime (another hasetup creating it at the same time). Returns false when the file existed.
 */
export async function createAtomically(file: string, text: string): Promise<boolean> {
  const tmp = await writeTemp(file, text);
  try {
    await link(tmp, file);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP') throw e;
    // A file system without hard links: fall back to rename (replaces a concurrent creator's file).
    await rename(tmp, file);
    return true;
  } finally {
    await unlink(tmp).catch(() => {});
    await syncDir(dirname(file));
  }
}

export async function replaceAtomically(file: string, text: string): Promise<void> {
  const tmp = await writeTemp(file, text);
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dirname(file));
}
