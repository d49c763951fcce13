export { HeaderChain, ChainError, LessWork, ProofError, type MerkleProof, type HeaderChainOptions } from './chain';
export { syncChain, parseTip, fetchHeaders, type ElectrumRequest, type ServerTip } from './sync';
export { chainParams, CHAIN_PARAMS, type ChainParams, type Anchor } from './params';
export { parseHeader, parseHeaders, bitsToTarget, targetToBits, workOf, type Header } from './header';
export { parseAuxPow, checkAuxPow, createAuxPow, expectedIndex, MERGED_MINING_HEADER, type AuxPow } from './auxpow';
export { hash256, rootFromBranch, revHex, fromRevHex } from './bytes';
