// The endpoint client: the token and revocation requests of a public
// client (RFC 6749 §6, RFC 7009 §2); the login's code exchange (login.ts)
// goes through call() too.
import { OAuthError, answerError } from "./errors.js";
import type { TokenManagerOptions, TokenResponse } from "./options.js";

/**
 * Whether the token endpoint's error e is terminal (retrying cannot help):
 * a 4xx other than 408 and 429 (invalid_grant: the family ended;
 * invalid_client); a 5xx, 408, 429, or a success without an access_token,
 * is not.
 */
export function terminal(e: OAuthError): boolean {
  const s = e.status ?? 0;
  return s > 399 && s < 500 && s !== 408 && s !== 429;
}

/** How long one request to an endpoint may take, its answer's body included, before it counts as unanswered. */
export const FETCH_TIMEOUT_MS = 30_000;

/**
 * POSTs form body (with client_id) to url and reads the answer's JSON ({}
 * for a body that is not JSON); in cookie mode with credentials and the
 * X-Tokend header. Rejects with an OAuthError without status when the
 * endpoint cannot be reached or has not answered within FETCH_TIMEOUT_MS
 * (a stalled link).
 */
export async function call(f: typeof fetch, o: Pick<TokenManagerOptions, "clientId" | "cookie">, url: string, name: string, body: URLSearchParams): Promise<[Response, Record<string, unknown>]> {
  body.set("client_id", o.clientId);
  const c = new AbortController();
  const init: RequestInit = {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json", ...(o.cookie && { "X-Tokend": "1" }) },
    body: body.toString(),
    signal: c.signal,
  };
  if (o.cookie) init.credentials = "include";
  const timer = setTimeout(() => c.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await f(url, init);
    return [res, await res.json().catch(() => ({}))];
  } catch (e) {
    throw new OAuthError(`tokend: ${name} endpoint unreachable`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Redeems refresh token rt (undefined in cookie mode: the cookie carries
 * it): the tokens, or the OAuthError of an answer that has none (see
 * terminal). Rejects only when the endpoint cannot be reached or does not
 * answer in time.
 */
export async function redeem(f: typeof fetch, o: TokenManagerOptions, rt: string | undefined, now: () => number): Promise<TokenResponse | OAuthError> {
  const body = new URLSearchParams({ grant_type: "refresh_token", ...(rt ? { refresh_token: rt } : {}) });
  const [res, json] = await call(f, o, o.tokenEndpoint, "token", body);
  return res.ok && typeof json?.access_token === "string" ? (json as unknown as TokenResponse) : answerError("token", res, json, now());
}

/**
 * Revokes the family (RFC 7009 §2.1): refresh token rt, or in cookie mode the
 * cookie's. Rejects with an OAuthError when the endpoint cannot be reached or refuses.
 */
export async function revoke(f: typeof fetch, o: TokenManagerOptions, url: string, rt: string | undefined, now: () => number): Promise<void> {
  const body = new URLSearchParams(rt ? { token: rt, token_type_hint: "refresh_token" } : {});
  const [res, json] = await call(f, o, url, "revocation", body);
  if (!res.ok) throw answerError("revocation", res, json, now());
}
