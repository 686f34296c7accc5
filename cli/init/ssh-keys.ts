// The private keys in ~/.ssh, offered by the wizard's key prompt: the usual names first (id_ed25519,
// id_ecdsa, id_rsa), then any other file that starts like a private key.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { homeRelative, looksLikePrivateKey } from './answers.ts';

export interface FoundKey {
  /** As the inventory names it: ~/.ssh/... */
  path: string;
  /** The comment of its .pub file (often user@host), when there is one. */
  comment?: string;
}

const USUAL = ['id_ed25519', 'id_ecdsa', 'id_rsa', 'id_ed25519_sk', 'id_ecdsa_sk', 'id_dsa'];
const NOT_KEYS = new Set(['known_hosts', 'known_hosts.old', 'authorized_keys', 'authorized_keys2', 'config', 'environment']);

export function findKeys(dir = join(homedir(), '.ssh')): FoundKey[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const rank = (n: string) => (USUAL.includes(n) ? USUAL.indexOf(n) : USUAL.length);
  return names
    .filter((n) => !n.endsWith('.pub') && !NOT_KEYS.has(n) && !n.startsWith('.'))
    .filter((n) => {
      try {
        return statSync(join(dir, n)).isFile() && looksLikePrivateKey(join(dir, n));
      } catch {
        return false;
      }
    })
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
    .map((n) => {
      const key: FoundKey = { path: homeRelative(join(dir, n)) };
      try {
        const comment = readFileSync(join(dir, `${n}.pub`), 'utf8')
          .trim()
          .split(/\s+/)
          .slice(2)
          .join(' ');
        if (comment) key.comment = comment;
      } catch {}
      return key;
    });
}
