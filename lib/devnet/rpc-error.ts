// The one error type both devnet servers turn into a JSON-RPC error object.

export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
