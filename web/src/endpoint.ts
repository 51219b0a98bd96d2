// The endpoint client: the token and revocation requests of a public
// client (RFC 6749 §6, RFC 7009 §2).
import { OAuthError, answerError } from "./errors.js";
import type { TokenManagerOptions, TokenResponse } from "./options.js";

/** The answer of the token endpoint: the tokens, or an OAuthError; terminal when retrying cannot help. */
export type Answer = { tokens: TokenResponse } | { error: OAuthError; terminal: boolean };

/** The POST of form body to an endpoint of o; in cookie mode with credentials and the X-Tokend header. */
function post(o: TokenManagerOptions, body: URLSearchParams): RequestInit {
  const headers: Record<string, string> = { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" };
  const init: RequestInit = { method: "POST", headers, body: body.toString() };
  if (o.cookie) {
    headers["X-Tokend"] = "1";
    init.credentials = "include";
  }
  return init;
}

/** Sends body to url; rejects with an OAuthError (no status) when the endpoint cannot be reached. */
async function send(f: typeof fetch, o: TokenManagerOptions, url: string, name: string, body: URLSearchParams): Promise<Response> {
  body.set("client_id", o.clientId);
  try {
    return await f(url, post(o, body));
  } catch (e) {
    throw new OAuthError(`tokend: ${name} endpoint unreachable`, { cause: e });
  }
}

/**
 * Redeems refresh token rt (undefined in cookie mode: the cookie carries
 * it). A 4xx other than 408 and 429 is terminal (invalid_grant: the login
 * ended; invalid_client); a 5xx, 408, 429, or a success without an
 * access_token, is not. Rejects only when the endpoint cannot be reached.
 */
export async function redeem(f: typeof fetch, o: TokenManagerOptions, rt: string | undefined, now: () => number): Promise<Answer> {
  const body = new URLSearchParams({ grant_type: "refresh_token" });
  if (rt) body.set("refresh_token", rt);
  const res = await send(f, o, o.tokenEndpoint, "token", body);
  let json: Partial<TokenResponse> = {};
  try {
    json = await res.json();
  } catch {
    // a body that is not JSON counts like an empty one
  }
  if (res.ok && typeof json?.access_token === "string") return { tokens: json as TokenResponse };
  const s = res.status;
  return { error: answerError("token", res, json, now()), terminal: s > 399 && s < 500 && s !== 408 && s !== 429 };
}

/**
 * Revokes the login (RFC 7009 §2.1): refresh token rt, or in cookie mode the
 * cookie's. Rejects with an OAuthError when the endpoint cannot be reached or refuses.
 */
export async function revoke(f: typeof fetch, o: TokenManagerOptions, url: string, rt: string | undefined, now: () => number): Promise<void> {
  const body = new URLSearchParams();
  if (rt) {
    body.set("token", rt);
    body.set("token_type_hint", "refresh_token");
  }
  const res = await send(f, o, url, "revocation", body);
  if (!res.ok) throw answerError("revocation", res, await res.json().catch(() => null), now());
}
