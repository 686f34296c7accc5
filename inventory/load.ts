// loadInventory: reads inventory.yaml, validates it (schema, then cluster-level checks, every error
// located at file:line:col: field), fills every default and loads (or generates) its secrets file.
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { InventoryError, MAX_YAML_BYTES, YamlSource, type InventoryIssue } from './errors.ts';
import { inventorySchema, locateZodIssues, type ParsedInventoryFile } from './schema.ts';
import { clusterChecks, DEFAULT_LB_PRIORITIES, DEFAULT_VRRP } from './checks.ts';
import { isIPv4, parseCidr } from './net.ts';
import { loadSecrets, secretsPathFor } from './secrets.ts';
import { generatedTlsPathFor, loadTls } from './tls.ts';
import { camelKeys } from './camel.ts';
import type { Group, Host, Inventory, TlsOptions } from './types.ts';

export { InventoryError } from './errors.ts';
export type { InventoryIssue } from './errors.ts';

export interface LoadOptions {
  /** Generate the secrets file (or its missing keys) when absent. Default true. */
  createSecrets?: boolean;
}

/** "~" and "~/x" expanded to the home folder, other relative paths resolved against baseDir. */
export function expandPath(p: string, baseDir: string): string {
  if (p === '~') return homedir();
  if (p.startsWith('~/')) return join(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/**
 * Validates the text of an inventory file: YAML syntax, schema and cluster-level checks. Returns
 * the parsed file (static defaults applied) or every issue, located in `file` (the name shown).
 */
export function checkInventoryText(
  text: string,
  file: string,
): { ok: true; data: ParsedInventoryFile; src: YamlSource } | { ok: false; errors: InventoryIssue[] } {
  const src = new YamlSource(file, text);
  if (src.syntaxIssues.length) return { ok: false, errors: src.syntaxIssues };
  if (src.data === null || src.data === undefined)
    return {
      ok: false,
      errors: [
        { file, line: 1, col: 1, path: '', message: 'the inventory is empty (expected a mapping with cluster, vip, hosts, roles...)' },
      ],
    };
  const r = inventorySchema.safeParse(src.data);
  const errors = [...(r.success ? [] : locateZodIssues(src, inventorySchema, r.error)), ...clusterChecks(src)];
  if (errors.length || !r.success) return { ok: false, errors: new InventoryError(errors).errors };
  return { ok: true, data: r.data, src };
}

/**
 * Builds the Inventory shape from a validated file: the file's settings with camelCase keys
 * (inventory/camel.ts), and what loading computes: per-host SSH settings over the file's defaults,
 * paths resolved, defaults that depend on other fields, the certificate and the secrets.
 */
export function buildInventory(f: ParsedInventoryFile, absFile: string, secrets: Inventory['secrets'], tls?: TlsOptions): Inventory {
  const base = dirname(absFile);
  const { ssh: defaults, hosts: groups, vip, vrrp, roles, ...settings } = camelKeys(f);
  const hosts: Host[] = [];
  for (const group of ['lb', 'web', 'db'] as const)
    groups[group].forEach((h: (typeof groups)[Group][number], index: number) => {
      const { ssh: own = {}, ...fields } = h;
      const { host: target = h.address, ...o } = own;
      const user = o.user ?? defaults.user;
      const become = o.become ?? defaults.become ?? user !== 'root';
      const ssh: Host['ssh'] = { ...defaults, ...o, become, knownHosts: expandPath(defaults.knownHosts, base), host: target };
      if (ssh.privateKey !== undefined) ssh.privateKey = expandPath(ssh.privateKey, base);
      const host: Host = { ...fields, group, ssh };
      if (group === 'lb') host.priority ??= DEFAULT_LB_PRIORITIES[index];
      if (group === 'db') {
        host.serverId ??= index + 1;
        host.primary = index === 0;
      }
      hosts.push(host);
    });

  const address = parseCidr(vip.address)!;
  const { tls: _tlsFields, ...proxy } = roles.proxy;
  return {
    ...settings,
    file: absFile,
    vip: { ...vip, address: address.address, prefix: address.prefix },
    vrrp: { ...vrrp, advertInt: vrrp.advertInt ?? DEFAULT_VRRP.advertInt[vrrp.version] },
    hosts,
    roles: {
      ...roles,
      proxy: {
        ...proxy,
        stats: { ...proxy.stats, port: proxy.stats.port ?? proxy.port },
        persistence: proxy.persistence ?? (roles.app.php === false ? 'none' : 'cookie'),
        ...(tls ? { tls } : {}),
      },
      app: { ...roles.app, ...(roles.app.source !== undefined ? { source: expandPath(roles.app.source, base) } : {}) },
      firewall: { ...roles.firewall, adminCidrs: roles.firewall.adminCidrs.map((c) => (isIPv4(c) ? `${c}/32` : c)) },
    },
    secrets,
  };
}

/**
 * Loads and validates an inventory file and its secrets. Throws InventoryError (with every issue,
 * each at file:line:col: field) when the inventory or its secrets file is invalid.
 */
export async function loadInventory(file: string, opts: LoadOptions = {}): Promise<Inventory> {
  const abs = resolve(file);
  let text: string;
  try {
    // a huge file (or a device) is refused before it is read
    const st = await stat(abs);
    if (st.isFile() && st.size > MAX_YAML_BYTES)
      throw new InventoryError([
        {
          file,
          line: 1,
          col: 1,
          path: '',
          message: `the file is ${(st.size / 1048576).toFixed(1)} MB; a cluster's file is a few kilobytes, and files over ${MAX_YAML_BYTES / 1048576} MB are refused`,
        },
      ]);
    text = await readFile(abs, 'utf8');
  } catch (e) {
    if (e instanceof InventoryError) throw e;
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a folder, not a file' : err.message;
    throw new InventoryError([{ file, line: 0, col: 0, path: '', message: `cannot read the inventory: ${why}` }]);
  }
  const r = checkInventoryText(text, file);
  if (!r.ok) throw new InventoryError(r.errors);
  // Errors name the secrets file the way the caller named the inventory (relative or absolute).
  const create = opts.createSecrets ?? true;
  const secrets = await loadSecrets(abs, { create, displayName: secretsPathFor(file) });
  const t = r.data.roles.proxy.tls;
  const tls = t
    ? await loadTls(t, {
        src: r.src,
        inventoryFile: abs,
        displayGenerated: generatedTlsPathFor(file),
        cluster: r.data.cluster,
        vip: parseCidr(r.data.vip.address)!.address,
        create,
        expand: (p) => expandPath(p, dirname(abs)),
      })
    : undefined;
  return buildInventory(r.data, abs, secrets, tls);
}
