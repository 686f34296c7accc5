// The zod schema of inventory.yaml (snake_case keys, as written) and of its secrets file, and the
// translation of zod's issues into located errors (file:line:col: field: message).
//
// Adding a setting: its field here (type, error text, default) and its line in inventory/README.md.
// The loaded Inventory gets it with its key in camelCase (roles.php.max_children ->
// inv.roles.php.maxChildren), typed from this schema (types.ts). Only a default computed from other
// fields, a path to resolve or a secret needs a line in load.ts (or secrets.ts), and a cross-field
// rule one in checks.ts.
import { z } from 'zod';
import { isIPv4, parseCidr } from './net.ts';
import { describeValue, type InventoryIssue, type PathSegment, type YamlSource } from './errors.ts';

const intIn = (min: number, max: number, unit = '') => {
  const error = `expected an integer from ${min} to ${max}${unit}`;
  return z.int({ error }).min(min, { error }).max(max, { error });
};
const numberIn = (min: number, max: number) => {
  const error = `expected a number from ${min} to ${max}`;
  return z.number({ error }).min(min, { error }).max(max, { error });
};
const bool = () => z.boolean({ error: 'expected true or false' });
const matching = (re: RegExp, error: string) => z.string({ error }).regex(re, { error });
const mapping = <T extends z.core.$ZodLooseShape>(shape: T) => z.strictObject(shape, { error: 'expected a mapping' });
const listOf = <T extends z.ZodType>(item: T, what: string) => z.array(item, { error: `expected a list of ${what}` });
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `expected one of ${values.join(', ')}` });

const HOSTNAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4_ERROR = 'expected an IPv4 address like 10.0.0.1 (no /prefix)';
const ipv4 = () => z.string({ error: IPV4_ERROR }).refine(isIPv4, { error: IPV4_ERROR });
const CIDR_ERROR = 'expected an IPv4 CIDR like 10.0.0.0/24 (or a single address)';
export const cidrString = () => z.string({ error: CIDR_ERROR }).refine((s) => parseCidr(s) !== null || isIPv4(s), { error: CIDR_ERROR });
const VIP_ERROR = 'expected an IPv4 address with its prefix length, like 10.0.0.100/24';
const vipAddress = () =>
  z.string({ error: VIP_ERROR }).refine(
    (s) => {
      const c = parseCidr(s);
      return c !== null && c.prefix >= 1;
    },
    { error: VIP_ERROR },
  );
const pathString = () => matching(/^\S(.*\S)?$/, 'expected a file path');
const clusterName = () => matching(HOSTNAME_RE, 'expected a cluster name (lower-case letters, digits and inner dashes, at most 63)');
const interfaceName = () => matching(/^[A-Za-z0-9_.-]{1,15}$/, 'expected an interface name (1 to 15 letters, digits, ".", "_" or "-")');
const sshHost = () => matching(/^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$/, 'expected a host name or address');
const DNS_ERROR = 'expected a DNS name like www.example.org (letters, digits, inner dashes, dots; "*." first for a wildcard)';
const dnsName = () =>
  matching(/^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/, DNS_ERROR).refine(
    (n) => n.length <= 253,
    { error: DNS_ERROR },
  );
const RUNTIMES = ['bundled', 'haproxy'] as const;
const adminCidrs = () => listOf(cidrString(), 'CIDRs').min(1, { error: 'expected at least one CIDR (the addresses allowed to SSH)' });
const urlPath = (def: string) => matching(/^\/[^\s]*$/, 'expected a URL path starting with /').default(def);

const sshFields = {
  user: matching(/^[a-z_][a-z0-9_.-]{0,31}$/, 'expected a user name'),
  port: intIn(1, 65535),
  private_key: pathString(),
  become: bool(),
  connect_timeout: intIn(1, 600, ' seconds'),
};

export const sshDefaultsSchema = mapping({
  user: sshFields.user.default('root'),
  port: sshFields.port.default(22),
  private_key: sshFields.private_key.optional(),
  become: sshFields.become.optional(),
  connect_timeout: sshFields.connect_timeout.default(10),
  known_hosts: pathString().default('.hasetup/known_hosts'),
});

export const hostSshSchema = mapping({
  host: sshHost(),
  user: sshFields.user,
  port: sshFields.port,
  private_key: sshFields.private_key,
  become: sshFields.become,
  connect_timeout: sshFields.connect_timeout,
}).partial();

const hostFields = {
  name: matching(HOSTNAME_RE, 'expected a host name (lower-case letters, digits and inner dashes, at most 63)'),
  address: ipv4(),
  ssh: hostSshSchema.optional(),
};

export const lbHostSchema = mapping({ ...hostFields, priority: intIn(1, 254).optional() });
export const webHostSchema = mapping(hostFields);
export const dbHostSchema = mapping({ ...hostFields, server_id: intIn(1, 4294967295).optional() });

export const inventorySchema = mapping({
  cluster: clusterName(),
  vip: mapping({
    address: vipAddress(),
    interface: interfaceName(),
  }),
  vrrp: mapping({
    router_id: intIn(1, 255).default(51),
    // default: 0.2 with version 3, 1 with version 2 (inventory/checks.ts DEFAULT_VRRP)
    advert_int: z
      .number({ error: 'expected a number of seconds from 0.01 to 255' })
      .min(0.01, { error: 'expected a number of seconds from 0.01 to 255' })
      .max(255, { error: 'expected a number of seconds from 0.01 to 255' })
      .optional(),
    version: z.literal([2, 3], { error: 'expected 2 or 3' }).default(3),
    unicast: bool().default(false),
  }).prefault({}),
  runtime: oneOf(RUNTIMES).default('bundled'),
  ssh: sshDefaultsSchema.prefault({}),
  hosts: mapping({
    lb: listOf(lbHostSchema, 'hosts').default(() => []),
    web: listOf(webHostSchema, 'hosts').default(() => []),
    db: listOf(dbHostSchema, 'hosts').default(() => []),
  }),
  roles: mapping({
    proxy: mapping({
      balance: oneOf(['roundrobin', 'leastconn', 'source', 'uri', 'first']).default('roundrobin'),
      port: intIn(1, 65535).default(80),
      maxconn: intIn(1, 1000000).default(4096),
      // each LB's proxy answers its VRRP tracker on 127.0.0.1 at this port itself (monitor-uri): never
      // queued behind the visitors, so a flood does not look like a dead proxy
      monitor_port: intIn(1, 65535).default(8405),
      // sessions stick to their web node (a SERVERID cookie); default: cookie when the web tier runs PHP
      persistence: oneOf(['cookie', 'none']).optional(),
      // a dead web node is out of rotation within inter + timeout + fastinter + timeout (1.35 s), or at
      // once after two connection errors in a row on real traffic (observe layer4, on-error mark-down)
      health_check: mapping({
        path: urlPath('/health'),
        inter: intIn(100, 3600000, ' ms').default(500),
        fastinter: intIn(100, 3600000, ' ms').default(250),
        timeout: intIn(100, 3600000, ' ms').default(300),
        rise: intIn(1, 100).default(2),
        fall: intIn(1, 100).default(2),
      }).prefault({}),
      timeouts: mapping({
        connect: intIn(1, 86400000, ' ms').default(5000),
        client: intIn(1, 86400000, ' ms').default(50000),
        server: intIn(1, 86400000, ' ms').default(50000),
        queue: intIn(1, 86400000, ' ms').default(5000),
      }).prefault({}),
      stats: mapping({
        uri: urlPath('/haproxy?stats'),
        user: matching(/^[A-Za-z0-9_.-]{1,32}$/, 'expected a user name (1 to 32 letters, digits, ".", "_" or "-")').default('admin'),
        port: intIn(1, 65535).optional(), // default: the service port
      }).prefault({}),
      // HTTPS on the VIP: the user's certificate and key, or a self-signed one generated once
      tls: mapping({
        port: intIn(1, 65535).default(443),
        certificate: pathString().optional(),
        key: pathString().optional(),
        redirect: bool().default(false),
        names: listOf(dnsName(), 'DNS names').min(1, { error: 'expected at least one DNS name' }).optional(),
      }).optional(),
    }).prefault({}),
    apache: mapping({
      workers: z
        .union([z.literal('auto'), z.int().min(1).max(100000)], { error: 'expected "auto" or an integer from 1 to 100000' })
        .default('auto'),
    }).prefault({}),
    // the application on the web nodes: PHP-FPM (false: none), the user's site deployed as releases
    app: mapping({
      php: z
        .union(
          [
            z.literal(false),
            mapping({
              max_children: z
                .union([z.literal('auto'), z.int().min(1).max(10000)], { error: 'expected "auto" or an integer from 1 to 10000' })
                .default('auto'),
            }),
          ],
          { error: 'expected false or a mapping (max_children)' },
        )
        .prefault({}),
      source: pathString().optional(),
      keep_releases: intIn(2, 100).default(3),
    }).prefault({}),
    mysql: mapping({
      app_database: matching(/^[A-Za-z0-9_]{1,64}$/, 'expected a database name (1 to 64 letters, digits or "_")').default('app'),
      app_user: matching(/^[A-Za-z0-9_]{1,32}$/, 'expected a user name (1 to 32 letters, digits or "_")')
        .refine((u) => u.toLowerCase() !== 'root', {
          error: 'expected a user other than root (the application user gets its own password)',
        })
        .default('app'),
      // auto: sized from the web tier's concurrency (roles/sizing.ts)
      max_connections: z
        .union([z.literal('auto'), z.int().min(1).max(100000)], { error: 'expected "auto" or an integer from 1 to 100000' })
        .default('auto'),
      binlog_format: oneOf(['ROW', 'STATEMENT', 'MIXED']).default('MIXED'),
    }).prefault({}),
    firewall: mapping({
      admin_cidrs: adminCidrs(),
    }),
  }),
  // hasetup failover-test: the steady load, and the limits its verdicts are judged against
  failover_test: mapping({
    rate: intIn(1, 100000, ' requests per second').default(200),
    // the capacity scenario: the latency objective its capacity is measured against, its ramp and floods
    slo_ms: intIn(1, 600000, ' ms').default(500),
    capacity: mapping({
      start_rate: intIn(1, 100000, ' requests per second').optional(), // default: half of rate
      step_seconds: intIn(1, 600, ' s').default(4),
      refine_steps: intIn(0, 10).default(2),
      flood_factors: listOf(numberIn(1.1, 100), 'multiples of the capacity').min(1).default([2, 4]),
      flood_seconds: intIn(1, 3600, ' s').default(15),
      // default: the recovery threshold + 5 s (cli/failover/run.ts)
      recovery_seconds: intIn(2, 600, ' s').optional(),
      one_node: bool().default(true),
      single_box: bool().default(true),
      connections: intIn(1, 60000).default(4096),
    }).prefault({}),
    thresholds: mapping({
      web_failed_requests: intIn(0, 1000000).default(0),
      // default: the health check's own bound (roles.proxy.health_check) + 1 s (cli/failover/scenarios.ts)
      web_detection_ms: intIn(1, 3600000, ' ms').optional(),
      lb_hard_takeover_ms: intIn(1, 3600000, ' ms').default(1000),
      lb_graceful_takeover_ms: intIn(1, 3600000, ' ms').default(300),
      spike_errors: intIn(0, 1000000).default(0),
      flood_resets: intIn(0, 1000000).default(0),
      flood_timeouts: intIn(0, 1000000).default(0),
      flood_502: intIn(0, 1000000).default(0),
      flood_early_503: intIn(0, 1000000).default(0),
      too_many_connections: intIn(0, 1000000).default(0),
      flood_served_ratio: numberIn(0, 100).default(0.8),
      // default: twice roles.proxy.timeouts.queue + 2 s, the soonest a drained queue allows (cli/failover/capacity.ts)
      recovery_ms: intIn(0, 3600000, ' ms').optional(),
      scale_ratio: numberIn(0, 100).default(1.8),
    }).prefault({}),
  }).prefault({}),
});

const PASSWORD_ERROR = 'expected 12 to 128 characters from A-Z a-z 0-9 . _ ~ -';
const password = () =>
  z
    .string({ error: PASSWORD_ERROR })
    .regex(/^[A-Za-z0-9._~-]{12,128}$/, { error: PASSWORD_ERROR })
    .optional();
const VRRP_ERROR = 'expected exactly 8 characters from A-Z a-z 0-9 . _ ~ - (VRRP carries 8)';

/** The secrets file (<basename>.secrets.yaml): every key is generated when missing (inventory/secrets.ts). */
export const secretsSchema = z.strictObject(
  {
    mysql_root_password: password(),
    mysql_app_password: password(),
    mysql_replication_password: password(),
    vrrp_auth_pass: z
      .string({ error: VRRP_ERROR })
      .regex(/^[A-Za-z0-9._~-]{8}$/, { error: VRRP_ERROR })
      .optional(),
    stats_password: password(),
  },
  { error: 'expected a mapping' },
);

/**
 * The schemas of single fields, for what validates one value at a time (the init wizard's prompts
 * and answers): the same rules and messages as the whole file's.
 */
export const fieldSchemas = {
  cluster: clusterName(),
  hostName: hostFields.name,
  address: hostFields.address,
  sshHost: sshHost(),
  vipAddress: vipAddress(),
  interface: interfaceName(),
  runtime: oneOf(RUNTIMES),
  sshUser: sshFields.user,
  sshPort: sshFields.port,
  privateKey: sshFields.private_key,
  connectTimeout: sshFields.connect_timeout,
  knownHosts: pathString(),
  cidr: cidrString(),
  adminCidrs: adminCidrs(),
};

/** inventory.yaml as written (what renderInventoryYaml takes). */
export type InventoryFile = z.input<typeof inventorySchema>;
/** inventory.yaml after the schema's static defaults. */
export type ParsedInventoryFile = z.output<typeof inventorySchema>;
/** The secrets file as read (a missing key is generated). */
export type ParsedSecretsFile = z.output<typeof secretsSchema>;

// The object keys allowed at a path of the schema (for "unknown key" hints).
function keysAt(schema: z.core.$ZodType, path: readonly PathSegment[]): string[] {
  let s: z.core.$ZodType | undefined = schema;
  for (let i = 0; i <= path.length && s;) {
    const def = s._zod.def as unknown as Record<string, unknown> & { type: string };
    if (def.type === 'optional' || def.type === 'default' || def.type === 'prefault' || def.type === 'nullable') {
      s = def.innerType as z.core.$ZodType;
      continue;
    }
    if (i === path.length) return def.type === 'object' ? Object.keys(def.shape as object) : [];
    const seg = path[i++];
    if (def.type === 'object') s = (def.shape as Record<string, z.core.$ZodType>)[String(seg)];
    else if (def.type === 'array') s = def.element as z.core.$ZodType;
    else return [];
  }
  return [];
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

function isSubsequence(short: string, long: string): boolean {
  let i = 0;
  for (const c of long) if (c === short[i]) i++;
  return i === short.length;
}

export function unknownKeyMessage(key: string, allowed: string[]): string {
  // Closest first; on a tie, a key that contains the typed one in order (vrp -> vrrp, not vip).
  const score = (k: string) => distance(k, key) * 2 - (isSubsequence(key, k) || isSubsequence(k, key) ? 1 : 0);
  const near = (k: string) => distance(k, key) <= 2 || (key.length >= 4 && (k.includes(key) || key.includes(k)));
  const close = allowed.filter(near).sort((a, b) => score(a) - score(b));
  if (close.length) return `unknown key (did you mean "${close[0]}"?)`;
  return allowed.length ? `unknown key (allowed here: ${allowed.join(', ')})` : 'unknown key';
}

/**
 * Located issues for a failed zod parse of src.data. With redact, values are never quoted (for the
 * secrets file): "got" names the kind of value only.
 */
export function locateZodIssues(src: YamlSource, schema: z.core.$ZodType, error: z.ZodError, redact = false): InventoryIssue[] {
  const out: InventoryIssue[] = [];
  for (const iss of error.issues) {
    const path = iss.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (iss.code === 'unrecognized_keys') {
      const allowed = keysAt(schema, path);
      for (const k of iss.keys) out.push(src.issue([...path, k], unknownKeyMessage(k, allowed), 'key'));
      continue;
    }
    if (!src.has(path)) {
      out.push(src.issue(path, 'missing (required)'));
      continue;
    }
    const v = src.valueAt(path);
    const got = !redact
      ? describeValue(v)
      : typeof v === 'string'
        ? `a string of ${v.length} characters`
        : typeof v === 'number' || typeof v === 'boolean'
          ? `a ${typeof v}`
          : describeValue(v);
    out.push(src.issue(path, `${iss.message}, got ${got}`));
  }
  return out;
}
