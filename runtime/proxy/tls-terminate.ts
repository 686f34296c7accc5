// TLS termination for a `bind ... ssl` address: the secure contexts of its certificates (made from the PEM read
// with the configuration, so a reload brings in replaced files for the connections it accepts while the ones in
// flight keep theirs), the choice of a certificate by SNI (exact name, then wildcard, else the first), and the
// TLS socket over an accepted connection.
import { constants } from 'node:crypto';
import tls from 'node:tls';
import type net from 'node:net';
import type { TlsBind } from './config.ts';

export class TlsTerminator {
  private exact = new Map<string, tls.SecureContext>();
  private wild = new Map<string, tls.SecureContext>();
  private fallback: tls.SecureContext;
  private readonly opts: Pick<tls.TLSSocketOptions, 'ALPNProtocols' | 'SNICallback'>;

  constructor(readonly cfg: TlsBind) {
    const made = cfg.certs.map((c) => {
      const ctx = tls.createSecureContext({
        cert: c.cert,
        key: c.key,
        minVersion: cfg.minVersion,
        maxVersion: cfg.maxVersion,
        ciphers: `${cfg.ciphers}:${cfg.ciphersuites}`,
        honorCipherOrder: true,
        secureOptions: cfg.noTickets ? constants.SSL_OP_NO_TICKET : 0,
      });
      for (const n of c.names) {
        const map = n.startsWith('*.') ? this.wild : this.exact;
        if (!map.has(n.startsWith('*.') ? n.slice(2) : n)) map.set(n.startsWith('*.') ? n.slice(2) : n, ctx);
      }
      return ctx;
    });
    this.fallback = made[0];
    this.opts = {
      ALPNProtocols: cfg.alpn,
      SNICallback: (name, cb) => {
        const ctx = this.forName(name);
        if (ctx) cb(null, ctx);
        else cb(new Error(`no certificate for ${name} (strict-sni)`));
      },
    };
  }

  /** The context for an SNI name; with strict-sni, none when no certificate has the name. */
  forName(name: string): tls.SecureContext | undefined {
    const n = name.toLowerCase();
    const hit = this.exact.get(n) ?? this.wild.get(n.slice(n.indexOf('.') + 1));
    return hit ?? (this.cfg.strictSni ? undefined : this.fallback);
  }

  /** A server-side TLS socket over an accepted (paused) connection; it starts the handshake itself. */
  wrap(raw: net.Socket): tls.TLSSocket {
    const s = new tls.TLSSocket(raw, { isServer: true, secureContext: this.fallback, ...this.opts });
    return s;
  }
}
