// Finishing a login on the redirect URI: the authorization response's
// checks (state, iss, error), the code exchange (RFC 6749 §4.1.3, RFC 7636
// §4.5) and the ID token's checks.
import { call } from "./endpoint.js";
import { OAuthError, answerError } from "./errors.js";
import { refuse } from "./discovery.js";
import { checkIDToken } from "./idtoken.js";
import { area, takePending } from "./pending.js";
import type { LoginEnv } from "./authorize.js";
import type { TokenResponse } from "./options.js";

export interface HandleRedirectOptions extends Pick<LoginEnv, "fetch" | "storage" | "location"> {
  /** The URL the provider redirected to; default location.href. */
  url?: string;
  /** Where the URL is cleaned of the response; default history (null: not cleaned). */
  history?: { state: unknown; replaceState(data: unknown, unused: string, url?: string): void } | null;
  /** A TokenManager (or anything with its start): started with the tokens, as start(tokens) always does. */
  manager?: { start(tokens: TokenResponse): void };
  /** Cookie mode: the exchange is sent with credentials and X-Tokend, so the refresh token is set as tokend's cookie. */
  cookie?: boolean;
}

export interface LoginResult {
  /** The token endpoint's answer. */
  tokens: TokenResponse;
  /** The ID token (keep it for logout's idTokenHint); undefined if the scope had no openid and none came. */
  idToken?: string;
  /** The ID token's claims, checked (sub, iss, aud, auth_time…). */
  claims?: Record<string, unknown>;
  /** Where login() was asked to come back to. */
  returnTo: string;
}

/** The parameters of an authorization response, removed from the URL once read. */
const RESPONSE = ["code", "state", "iss", "session_state", "error", "error_description", "error_uri"];

/**
 * Finishes the login the URL answers: null, doing nothing, if the URL has
 * no code and no error (a reload of the page after the login, any other
 * page). Otherwise it first removes the response from the address bar
 * (history.replaceState; other parameters and the hash stay) and the login
 * from sessionStorage (single use), then refuses, sending nothing, with an
 * OAuthError whose error is:
 * - "invalid_state": no login in flight has this state (a forged response,
 *   or a replay: the code was used, or the entry is gone);
 * - "invalid_issuer": iss differs from the login's issuer, or is missing
 *   where the metadata promised it (RFC 9207 §2.4: mix-up defence);
 * - the provider's error (e.g. "access_denied", "login_required"), with its error_description;
 * - "invalid_response": the response came in the fragment (implicit or
 *   fragment response mode, which a code-flow login never asks for).
 * Then it exchanges the code at the token endpoint (an OAuthError with the
 * endpoint's status and error if refused) and checks the ID token (see
 * checkIDToken; required when the scope had openid). Last, manager.start(tokens).
 */
export async function handleRedirect(o: HandleRedirectOptions = {}): Promise<LoginResult | null> {
  const u = new URL(o.url ?? (o.location ?? location).href);
  const r = new URLSearchParams(u.search);
  if (!r.has("code") && !r.has("error")) {
    const h = new URLSearchParams(u.hash.slice(1));
    if (["code", "error", "access_token", "id_token"].some((k) => h.has(k))) throw refuse("invalid_response", "authorization response in the URL fragment");
    return null;
  }
  for (const k of RESPONSE) u.searchParams.delete(k);
  const history = o.history === undefined ? globalThis.history : o.history;
  try {
    history?.replaceState(history.state, "", u.href);
  } catch {
    // a URL of another origin than the page's: nothing to clean here
  }
  const state = r.get("state");
  const p = state ? takePending(area(o.storage), state) : undefined;
  if (!p) throw refuse("invalid_state", "no login in flight has this state");
  const iss = r.get("iss");
  if (iss === null ? p.iss : iss !== p.issuer) throw refuse("invalid_issuer", "authorization response of another issuer (iss)");
  const error = r.get("error");
  if (error !== null) throw new OAuthError("tokend: authorization endpoint answered " + error, { error, error_description: r.get("error_description") ?? undefined });

  const body = new URLSearchParams({ grant_type: "authorization_code", code: r.get("code")!, redirect_uri: p.redirectUri, code_verifier: p.verifier });
  for (const res of p.resource ?? []) body.append("resource", res);
  const f = o.fetch ?? ((i, n) => fetch(i, n));
  const [res, json] = await call(f, { clientId: p.clientId, cookie: o.cookie }, p.tokenEndpoint, "token", body);
  if (!res.ok || typeof json.access_token !== "string") throw answerError("token", res, json, Date.now());
  const tokens = json as unknown as TokenResponse;
  const idToken = typeof json.id_token === "string" ? json.id_token : undefined;
  if (p.oidc && !idToken) throw refuse("invalid_id_token", "token response without the ID token of an openid login");
  const claims = idToken ? checkIDToken(idToken, p) : undefined;
  o.manager?.start(tokens);
  return { tokens, idToken, claims, returnTo: p.returnTo };
}
