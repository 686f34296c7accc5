// The inventory as the engine and the roles see it after loading and validation (inventory/load.ts).
// The YAML file (inventory.yaml) and its secrets file (inventory.secrets.yaml, mode 0600) are
// described in README.md; examples in inventory/examples/.

export type Group = 'lb' | 'web' | 'db';

export interface SshSettings {
  user: string; // default "root"
  port: number; // default 22
  privateKey?: string; // path, resolved relative to the inventory file; "~" expanded
  become: boolean; // use sudo for every command when user is not root (default: user !== 'root')
  connectTimeout: number; // seconds, default 10
  knownHosts?: string; // path of the known_hosts file hasetup keeps (default: next to the inventory, .hasetup/known_hosts)
}

export interface Host {
  name: string; // short host name, e.g. lb01 (also set as the hostname by the common role)
  address: string; // IPv4 address the cluster uses for this host (and SSH, unless ssh.host)
  group: Group;
  ssh: SshSettings & { host: string }; // host: what SSH connects to (default: address)
  /** lb only: VRRP priority (default: 150 for the first LB, 100 for the second). */
  priority?: number;
  /** db only: MySQL server-id (default: 1 for the primary, 2, 3... for replicas). */
  serverId?: number;
  /** db only: true for the primary (the first db host), false for replicas. */
  primary?: boolean;
}

export interface ProxyOptions {
  balance: 'roundrobin' | 'leastconn' | 'source' | 'uri' | 'first'; // default roundrobin
  port: number; // service port on the VIP, default 80
  /** default /health, inter 500 ms, fastinter 250 ms, timeout 300 ms, rise 2, fall 2 */
  healthCheck: { path: string; inter: number; fastinter: number; timeout: number; rise: number; fall: number };
  timeouts: { connect: number; client: number; server: number; queue: number }; // ms, defaults 5000/50000/50000/5000
  maxconn: number; // global maxconn, default 4096
  stats: { uri: string; port: number; user: string }; // default /haproxy?stats on the service port, user admin
  /** HTTPS on the VIP (roles.proxy.tls); absent: plain HTTP only. */
  tls?: TlsOptions;
}

export interface TlsOptions {
  port: number; // default 443
  redirect: boolean; // plain HTTP answered with a 301 to HTTPS (the health URL excepted); default false
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

export interface ApacheOptions {
  workers: number | 'auto'; // MaxRequestWorkers, 'auto' sizes from the host's memory
}

export interface MysqlOptions {
  appDatabase: string; // default "app"
  appUser: string; // default "app"
  maxConnections: number; // default 200
  binlogFormat: 'ROW' | 'STATEMENT' | 'MIXED'; // default MIXED (the 5.1 default)
}

export interface FirewallOptions {
  adminCidrs: string[]; // CIDRs allowed to SSH and to see the stats page; default: [the controller's address/32] must be given
}

export interface Inventory {
  /** Absolute path of the inventory file. */
  file: string;
  cluster: string;
  vip: { address: string; prefix: number; interface: string };
  vrrp: { routerId: number; advertInt: number; version: 2 | 3; unicast: boolean }; // default version 3, advert_int 0.2 (1 with version 2)
  runtime: 'bundled' | 'haproxy';
  hosts: Host[]; // every host, lb first, then web, then db, in file order
  roles: {
    proxy: ProxyOptions;
    apache: ApacheOptions;
    mysql: MysqlOptions;
    firewall: FirewallOptions;
  };
  failoverTest: FailoverTestOptions;
  secrets: Secrets;
}

export interface FailoverTestOptions {
  rate: number; // default 200 requests per second
  thresholds: {
    webFailedRequests: number; // default 0
    webDetectionMs: number; // default 2000
    lbHardTakeoverMs: number; // default 1000
    lbGracefulTakeoverMs: number; // default 300
    spikeErrors: number; // default 0
  };
}

export interface Secrets {
  /** Absolute path of the secrets file. */
  file: string;
  mysqlRootPassword: string;
  mysqlAppPassword: string;
  mysqlReplicationPassword: string;
  vrrpAuthPass: string; // 8 characters (VRRPv2 PASS authentication carries 8)
  statsPassword: string;
}

export const groupHosts = (inv: Inventory, g: Group): Host[] => inv.hosts.filter((h) => h.group === g);
