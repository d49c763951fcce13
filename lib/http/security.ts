import type { Middleware } from 'koa';

// Pages are self-contained: no third-party anything, no framing, no referrers leaking onion URLs.
// Pages load one thing, our stylesheet; QR codes are inline SVG. No scripts at all.
export const PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const securityHeaders: Middleware = async (ctx, next) => {
  ctx.set({
    'Content-Security-Policy': PAGE_CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
  });
  await next();
};

/** Stored files are served as sandboxed attachments: an uploaded HTML file can never run as our origin. */
export const DOWNLOAD_CSP = "default-src 'none'; sandbox";
