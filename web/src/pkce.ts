// The random values of a login (PKCE verifier, state, nonce) and the PKCE
// S256 challenge (RFC 7636 §4.1, §4.2).

/** The base64url encoding of bytes, without padding (RFC 7636 Appendix A). */
export function b64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Fills an array with random bytes: crypto.getRandomValues, or a test's stand-in. */
export type RandomFill = (a: Uint8Array<ArrayBuffer>) => Uint8Array;

/**
 * 32 random bytes in base64url: 43 characters, 256 bits; a PKCE
 * code_verifier as RFC 7636 §4.1 recommends, and the state and nonce.
 */
export function randomToken(fill: RandomFill = (a) => crypto.getRandomValues(a)): string {
  return b64url(fill(new Uint8Array(32)));
}

/** The S256 code_challenge of verifier: BASE64URL(SHA256(ASCII(verifier))) (RFC 7636 §4.2), by WebCrypto. */
export async function pkceChallenge(verifier: string): Promise<string> {
  return b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
}
