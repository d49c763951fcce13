// .bit names: the Namecoin JSON-RPC client, the registration state machine, values and resolution.
export { NamecoinError, NamecoinRpc, redact, type NamecoinRpcOptions } from './rpc';
export { Registrar, type NameStatus, type NameState } from './registrar';
export { buildValue, readExtraValue, domainToName, onionFromValue, mirrorsFromValue, NameValueError } from './value';
export { resolveName, ResolveError, type Resolution } from './resolve';
export { lookupName, resolveNameElectrum, nameIndexScriptHash, NameLookupError, type ElectrumNameOptions, type NameRecord } from './electrum';
export { ELECTRUM_NMC_SERVERS, DEFAULT_SERVER_COUNT, chooseNameResolver, defaultServerPool, pickServers, type NameResolverChoice } from './servers';
