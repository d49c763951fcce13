// Errors that reach a user carry an HTTP status and one readable line; lib/http/errors.ts renders them
// as plain text for curl, HTML for browsers and JSON for `Accept: application/json`.

export class UserError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** extra machine-readable fields for JSON answers (e.g. the payment details of a 402) */
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const isUserError = (err: unknown): err is UserError => err instanceof UserError;
