// Minimal typings for the dependencies that ship none. We wrap each behind a module of our own
// (lib/tor/control.ts, lib/payments/electrum.ts, lib/payments/xpub.ts), so only what those touch is declared.
declare module 'granax' {
  import { EventEmitter } from 'events';
  import { Duplex } from 'stream';
  // lib/tor/control.ts uses granax for the connection and its command queue only, and hands it a
  // Duplex that frames replies (see FramedSocket there); it parses the replies itself.
  export class TorController extends EventEmitter {
    constructor(socket: Duplex, options?: { authOnConnect?: boolean });
    /** HMAC-SHA256 of the SAFECOOKIE client-to-server hash; all arguments and the result are hex. */
    static createChallengeResponse(cookie: string, clientNonce: string, serverNonce: string): string;
    _send(command: string, cb: (err: Error | null, result?: unknown) => void): void;
  }
}
declare module 'electrum-client' {
  class ElectrumClient {
    constructor(port: number, host: string, protocol: 'tcp' | 'tls' | 'ssl', options?: unknown);
    connect(): Promise<void>;
    close(): void;
    request(method: string, params: unknown[]): Promise<unknown>;
    subscribe: import('events').EventEmitter;
  }
  export = ElectrumClient;
}

declare module 'secp256k1/bindings' {
  // libsecp256k1's native binding (prebuilt for linux-x64); lib/payments/xpub.ts derives child keys with it.
  /** P + tweak·G, serialized; throws when the tweak is not below the order or the sum is the point at infinity */
  export function publicKeyTweakAdd(publicKey: Uint8Array, tweak: Uint8Array, compressed?: boolean): Uint8Array;
}
