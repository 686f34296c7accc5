// Where the failover test sends its load: plain HTTP to the VIP, or HTTPS when the inventory
// redirects HTTP there (roles.proxy.tls.redirect), trusting the cluster's certificate: the
// generated one explicitly, a user's own through the system's CAs and its first DNS name.
import { Agent, request } from 'undici';
import type { Inventory } from '../../inventory/types.ts';

export interface Target {
  url: string;
  /** TLS options of the connections (undici's `connect`). */
  connect?: { ca?: string; servername?: string };
}

export function vipTarget(inv: Inventory): Target {
  const tls = inv.roles.proxy.tls;
  if (!tls?.redirect) return { url: `http://${inv.vip.address}:${inv.roles.proxy.port}/` };
  const url = `https://${inv.vip.address}:${tls.port}/`;
  return tls.source.kind === 'generated' ? { url, connect: { ca: tls.certificate } } : { url, connect: { servername: tls.names[0] } };
}

/** The status of one GET to the target (throws when there is no answer within ms). */
export async function statusOf(t: Target, ms: number): Promise<number> {
  const dispatcher = new Agent({ connect: t.connect ?? {} });
  try {
    const r = await request(t.url, { dispatcher, signal: AbortSignal.timeout(ms), headers: { 'user-agent': 'hasetup-failover-test' } });
    await r.body.dump();
    return r.statusCode;
  } finally {
    await dispatcher.close().catch(() => {});
  }
}
