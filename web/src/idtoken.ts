// The checks of an ID token received from the token endpoint (OIDC Core §3.1.3.7).
import { refuse } from "./discovery.js";
import { jwtClaims } from "./jwt.js";

/**
 * The claims of idToken, after the checks OIDC Core §3.1.3.7 asks of an
 * ID token received directly from the token endpoint: iss is the issuer
 * (point 2), aud contains the client (3), azp, if present, is the client
 * (4, 5), sub is present, and nonce is the login's (11). Throws an OAuthError
 * with error "invalid_id_token", or "invalid_nonce" for the nonce.
 *
 * The signature is not verified: the token came over TLS straight from the
 * token endpoint, which point 6 allows in place of it. exp and iat are not
 * compared with Date.now() (points 9, 10): a device's clock can be wrong by
 * any amount, and a login must not fail because of it; the code was just
 * redeemed, so the token is as fresh as the exchange.
 */
export function checkIDToken(idToken: string, want: { issuer: string; clientId: string; nonce: string }): Record<string, unknown> {
  const c = jwtClaims(idToken);
  const bad = (what: string) => refuse("invalid_id_token", "ID token " + what);
  if (!c) throw bad("malformed");
  if (c.iss !== want.issuer) throw bad("of another issuer");
  if (!(Array.isArray(c.aud) ? c.aud : [c.aud]).includes(want.clientId)) throw bad("for another audience");
  if (c.azp !== undefined && c.azp !== want.clientId) throw bad("for another party (azp)");
  if (typeof c.sub !== "string") throw bad("without sub");
  if (c.nonce !== want.nonce) throw refuse("invalid_nonce", "ID token of another login (nonce)");
  return c;
}
