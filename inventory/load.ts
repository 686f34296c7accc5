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
import type { Group, Host, Inventory, SshSettings, TlsOptions } from './types.ts';

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

/** Builds the Inventory shape (every default filled in) from a validated file. */
export function buildInventory(f: ParsedInventoryFile, absFile: string, secrets: Inventory['secrets'], tls?: TlsOptions): Inventory {
  const base = dirname(absFile);
  const g = f.ssh;
  const hosts: Host[] = [];
  const add = (group: Group, h: ParsedInventoryFile['hosts']['lb'][number] | ParsedInventoryFile['hosts']['db'][number], index: number) => {
    const o = h.ssh ?? {};
    const user = o.user ?? g.user;
    const key = o.private_key ?? g.private_key;
    const ssh: SshSettings & { host: string } = {
      user,
      port: o.port ?? g.port,
      become: o.become ?? g.become ?? user !== 'root',
      connectTimeout: o.connect_timeout ?? g.connect_timeout,
      knownHosts: expandPath(g.known_hosts, base),
      host: o.host ?? h.address,
    };
    if (key !== undefined) ssh.privateKey = expandPath(key, base);
    const host: Host = { name: h.name, address: h.address, group, ssh };
    if (group === 'lb') host.priority = ('priority' in h ? h.priority : undefined) ?? DEFAULT_LB_PRIORITIES[index];
    if (group === 'db') {
      host.serverId = ('server_id' in h ? h.server_id : undefined) ?? index + 1;
      host.primary = index === 0;
    }
    hosts.push(host);
  };
  f.hosts.lb.forEach((h, i) => add('lb', h, i));
  f.hosts.web.forEach((h, i) => add('web', h, i));
  f.hosts.db.forEach((h, i) => add('db', h, i));

  const vip = parseCidr(f.vip.address)!;
  const p = f.roles.proxy;
  const m = f.roles.mysql;
  return {
    file: absFile,
    cluster: f.cluster,
    vip: { address: vip.address, prefix: vip.prefix, interface: f.vip.interface },
    vrrp: {
      routerId: f.vrrp.router_id,
      advertInt: f.vrrp.advert_int ?? DEFAULT_VRRP.advertInt[f.vrrp.version],
      version: f.vrrp.version,
      unicast: f.vrrp.unicast,
    },
    runtime: f.runtime,
    hosts,
    roles: {
      proxy: {
        balance: p.balance,
        port: p.port,
        maxconn: p.maxconn,
        healthCheck: { ...p.health_check },
        timeouts: { ...p.timeouts },
        stats: { uri: p.stats.uri, port: p.stats.port ?? p.port, user: p.stats.user },
        ...(tls ? { tls } : {}),
      },
      apache: { workers: f.roles.apache.workers },
      mysql: { appDatabase: m.app_database, appUser: m.app_user, maxConnections: m.max_connections, binlogFormat: m.binlog_format },
      firewall: { adminCidrs: f.roles.firewall.admin_cidrs.map((c) => (isIPv4(c) ? `${c}/32` : c)) },
    },
    failoverTest: {
      rate: f.failover_test.rate,
      thresholds: {
        webFailedRequests: f.failover_test.thresholds.web_failed_requests,
        webDetectionMs: f.failover_test.thresholds.web_detection_ms,
        lbHardTakeoverMs: f.failover_test.thresholds.lb_hard_takeover_ms,
        lbGracefulTakeoverMs: f.failover_test.thresholds.lb_graceful_takeover_ms,
        spikeErrors: f.failover_test.thresholds.spike_errors,
      },
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
