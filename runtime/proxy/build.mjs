// Builds the proxy's native part (native/reuseport.c, a Node-API addon that opens SO_REUSEPORT
// listening sockets, one per worker): dist/runtime/proxy-linux-<arch>.node, see scripts/native.mjs.
// Without it the proxy still runs; its workers then share one listening socket per address.
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../../scripts/native.mjs';

/**
 * The Node flags the proxy runs with (the bundle's #! line; main.ts gives them to its workers too). A 16 MB young
 * generation: the proxy's garbage is short-lived, so V8 keeps the young generation small and scavenges every ~1,300
 * keep-alive requests, each pause (~0.25 ms) delaying every request in flight; with 16 MB it scavenges several times
 * less often, for pauses as short (bench/results/proxy.md).
 */
export const nodeFlags = ['--min-semi-space-size=16'];

export default async function buildProxy({ root }) {
  await buildAddon({ root, name: 'proxy', src: 'runtime/proxy/native/reuseport.c', hook: fileURLToPath(import.meta.url) });
}
