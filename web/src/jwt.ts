/**
 * Reads the claims of a JWT without verifying it: the browser only needs the
 * expiry to schedule a refresh, and the server verifies every token it gets.
 * Returns undefined for anything that is not a three-part token with a JSON
 * object payload.
 */
export function jwtClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    // atob takes base64 without its padding (forgiving-base64 decode, HTML §8.3).
    const bin = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims === "object" && claims && !Array.isArray(claims)
      ? (claims as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The `exp` claim of a JWT in epoch milliseconds, or undefined. */
export function jwtExpiry(token: string): number | undefined {
  const exp = jwtClaims(token)?.exp;
  return Number.isFinite(exp) ? (exp as number) * 1000 : undefined;
}
