// Payments: networks, the operator's xpub → one address per file, and the Electrum watcher that reports
// what each file's address was paid. node.ts builds a Watcher from the Config and feeds 'payments' to the ledger.
export { NETWORKS, networkOf, isMainnet } from './networks';
export { AddressPool, POOL_BATCH, type AddressPoolOptions, type PooledAddress } from './address-pool';
export { parseXpub, xpubFingerprint, deriveFileAddress, scriptHashOf, addressScriptHash, type ParsedXpub, type FileAddress } from './xpub';
export { ElectrumClient, ElectrumConnection, ElectrumRpcError, parseServer, checkRoute, type ElectrumOptions, type ElectrumServer } from './electrum';
export { Watcher, type WatcherOptions, type WatcherStatus, type Tip } from './watcher';
export { statusOf, type Payment, type HistoryEntry } from './history';
