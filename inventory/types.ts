// The inventory as the engine and the roles see it after loading and validation (inventory/load.ts).
// The YAML file (inventory.yaml) and its secrets file (inventory.secrets.yaml, mode 0600) are
// described in README.md; examples in inventory/examples/.
//
// Every shape here is the schema's (inventory/schema.ts: what the file holds, the defaults) with its
// keys in camelCase (inventory/camel.ts); only what loading computes is written here: fields whose
// default depends on other fields, paths resolved, the certificate read, the secrets.
import type { CamelKeys } from './camel.ts';
import type { ParsedInventoryFile, ParsedSecretsFile } from './schema.ts';

/** B's fields in place of A's. */
type With<A, B> = Omit<A, keyof B> & B;
type File = CamelKeys<ParsedInventoryFile>;
type Roles = File['roles'];

export type Group = keyof File['hosts'];

export type SshSettings = With<
  File['ssh'],
  {
    /** privateKey and knownHosts: resolved relative to the inventory file, "~" expanded. */
    become: boolean; // use sudo for every command when user is not root (default: user !== 'root')
    knownHosts?: string; // always set by loading; optional for a host made in code (tests)
  }
>;

/** A host's fields of every group (group-specific ones are absent on the others' hosts). */
type HostFields = Omit<File['hosts']['lb'][number] & File['hosts']['web'][number] & File['hosts']['db'][number], 'ssh'>;

/**
 * A host of any group. Filled in by loading: an lb's priority (150 for the first LB, 100 for the
 * second), a db's serverId (1 for the primary, 2, 3... for replicas).
 */
export type Host = HostFields & {
  group: Group;
  ssh: SshSettings & { host: string }; // host: what SSH connects to (default: address)
  /** db only: true for the primary (the first db host), false for replicas. */
  primary?: boolean;
};

export interface TlsOptions extends Pick<NonNullable<Roles['proxy']['tls']>, 'port' | 'redirect'> {
  /** The certificate and its chain (PEM): what a client may be given to trust. */
  certificate: string;
  /** Certificate, chain and private key in one PEM (what the LBs get, mode 0600): a secret. */
  pem: string;
  /** The user's files, or the self-signed certificate hasetup generated beside the secrets file. */
  source: { kind: 'files'; certificate: string; key: string } | { kind: 'generated'; file: string };
  fingerprint: string; // SHA-256 of the certificate, colon-separated hex
  notAfter: string; // ISO date the certificate expires
  names: string[]; // its DNS names
}

export type ProxyOptions = With<
  Roles['proxy'],
  {
    stats: With<Roles['proxy']['stats'], { port: number }>; // default port: the service port
    /** HTTPS on the VIP (roles.proxy.tls); absent: plain HTTP only. */
    tls?: TlsOptions;
    /** cookie persistence; default: cookie when roles.app.php is not false, else none */
    persistence: 'cookie' | 'none';
  }
>;
export type ApacheOptions = Roles['apache'];
export type MysqlOptions = Roles['mysql'];
/** php: false, or the pool's settings; source: the site's folder, resolved relative to the inventory. */
export type AppOptions = Roles['app'];
export type FirewallOptions = Roles['firewall']; // adminCidrs: a single address gets its /32
export type FailoverTestOptions = File['failoverTest'];

/** The secrets file's values (each generated when missing). */
export type Secrets = { [K in keyof CamelKeys<ParsedSecretsFile>]-?: string } & {
  /** Absolute path of the secrets file. */
  file: string;
};

export type Inventory = With<
  Omit<File, 'ssh'>,
  {
    /** Absolute path of the inventory file. */
    file: string;
    vip: With<File['vip'], { address: string; prefix: number }>; // address without its /prefix
    vrrp: With<File['vrrp'], { advertInt: number }>; // default advert_int: 0.2 with version 3, 1 with version 2
    hosts: Host[]; // every host, lb first, then web, then db, in file order
    roles: With<Roles, { proxy: ProxyOptions }>;
    secrets: Secrets;
  }
>;

export const groupHosts = (inv: Inventory, g: Group): Host[] => inv.hosts.filter((h) => h.group === g);
