// Builds the proxy's native part (native/reuseport.c, a Node-API addon that opens SO_REUSEPORT
// listening sockets, one per worker): dist/runtime/proxy-linux-<arch>.node, see scripts/native.mjs.
// Without it the proxy still runs; its workers then share one listening socket per address.
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../../scripts/native.mjs';

/**
 * The Node flags the proxy runs with (the bundle's #! line; main.ts gives them to its workers too). A young
 * generation allowed to grow to 32 MB semi-spaces: the proxy's garbage is short-lived, and with Node's default limit
 * V8 scavenges every ~1,300 keep-alive requests, each pause (~0.25 ms) delaying every request in flight. Allowed to
 * grow, V8 sizes it to ~16 MB under load and scavenges several times less often, for pauses as short. A fixed 16 MB
 * (--min-semi-space-size=16) scavenges as rarely but left the process ~25 MB larger once a load was over
 * (bench/results/proxy.md).
 */
export const nodeFlags = ['--max-semi-space-size=32'];

export default async function buildProxy({ root }) {
  await buildAddon({ root, name: 'proxy', src: 'runtime/proxy/native/reuseport.c', hook: fileURLToPath(import.meta.url) });
}
