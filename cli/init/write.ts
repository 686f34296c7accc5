// Writing what the wizard decided: the secrets file first (generated with mode 0600, or an existing
// one kept: its passwords are the cluster's), then inventory.yaml, atomically. If the inventory
// cannot be written, a secrets file made for it is removed again.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { checkInventoryText } from '../../inventory/load.ts';
import { formatIssue } from '../../inventory/errors.ts';
import { InventoryError } from '../../inventory/errors.ts';
import { loadSecrets, secretsPathFor } from '../../inventory/secrets.ts';
import { UserError } from '../errors.ts';

export interface Written {
  inventory: string;
  secrets: string;
  /** False when an existing secrets file was kept. */
  secretsCreated: boolean;
}

async function writeAtomically(file: string, text: string, mode: number): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Writes the inventory text (which must pass the loader's checks) and its secrets file. `shown` is
 * the inventory's name in messages.
 */
export async function writeInventory(file: string, text: string, shown: string): Promise<Written> {
  const check = checkInventoryText(text, shown);
  if (!check.ok)
    throw new Error(`the wizard built an inventory the loader refuses (nothing was written):\n${check.errors.map(formatIssue).join('\n')}`);
  await mkdir(dirname(file), { recursive: true });
  const secrets = secretsPathFor(file);
  const secretsCreated = !existsSync(secrets);
  try {
    await loadSecrets(file, { create: true, displayName: secretsPathFor(shown) });
  } catch (e) {
    if (e instanceof InventoryError)
      throw new UserError(`nothing was written: the secrets file next to the inventory is not usable:\n${e.message}`);
    throw e;
  }
  try {
    await writeAtomically(file, text, 0o644);
  } catch (e) {
    if (secretsCreated) await unlink(secrets).catch(() => {});
    throw new UserError(`cannot write ${shown}: ${(e as Error).message}`);
  }
  return { inventory: file, secrets, secretsCreated };
}
