// Starting a login: the authorization request of the code flow with PKCE
// (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2.1).
import { discover, type ProviderMetadata } from "./discovery.js";
import { area, putPending } from "./pending.js";
import { pkceChallenge, randomToken, type RandomFill } from "./pkce.js";
import type { StorageLike } from "./options.js";

/** The browser APIs the login functions use; each defaults to the page's own (tests inject them). */
export interface LoginEnv {
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Where logins in flight are kept; default sessionStorage. */
  storage?: StorageLike;
  /** Default location. */
  location?: { href: string; assign(url: string): void };
  /** Default crypto.getRandomValues. */
  getRandomValues?: RandomFill;
  /** The provider's metadata, if the app has it; default: discover(issuer). */
  metadata?: ProviderMetadata;
}

export interface LoginOptions extends LoginEnv {
  /** The provider's issuer identifier, e.g. "https://auth.example.com" (exactly as its metadata says). */
  issuer: string;
  clientId: string;
  /** A redirect URI registered for the client: the page that calls handleRedirect(). */
  redirectUri: string;
  /** Default "openid". */
  scope?: string;
  /** RFC 8707 resource indicator(s): the API(s) the access token is for; sent on the authorization and token requests. */
  resource?: string | string[];
  /** OIDC prompt: "none" (no page; login_required if not logged in), "login", "consent". */
  prompt?: string;
  /** OIDC max_age in seconds: log in again if the last login is older. */
  maxAge?: number;
  loginHint?: string;
  /** Further parameters of the authorization request (e.g. ui_locales); they cannot replace the ones above. */
  extraParams?: Record<string, string>;
  /** Where handleRedirect() says to go once logged in; default the current page (path, query and hash). */
  returnTo?: string;
}

/**
 * The authorization request URL of a new login: a fresh PKCE verifier
 * (S256 challenge), state and nonce. Keeps the login in sessionStorage
 * under its state for handleRedirect(), so call it only to navigate
 * there: login() does both.
 */
export async function buildAuthorizeURL(o: LoginOptions): Promise<string> {
  const md = o.metadata ?? (await discover(o.issuer, o));
  const [verifier, state, nonce] = [0, 0, 0].map(() => randomToken(o.getRandomValues));
  const scope = o.scope ?? "openid";
  const resource = o.resource === undefined ? undefined : ([] as string[]).concat(o.resource);
  const u = new URL(md.authorization_endpoint);
  const q = u.searchParams;
  const params: Record<string, string | number | undefined> = {
    ...o.extraParams,
    response_type: "code",
    client_id: o.clientId,
    redirect_uri: o.redirectUri,
    scope,
    state,
    nonce,
    code_challenge: await pkceChallenge(verifier),
    code_challenge_method: "S256",
    prompt: o.prompt,
    max_age: o.maxAge,
    login_hint: o.loginHint,
  };
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  for (const r of resource ?? []) q.append("resource", r);
  const here = new URL((o.location ?? globalThis.location)?.href ?? "/", "http://x");
  putPending(area(o.storage), state, {
    issuer: o.issuer,
    clientId: o.clientId,
    redirectUri: o.redirectUri,
    verifier,
    nonce,
    returnTo: o.returnTo ?? here.pathname + here.search + here.hash,
    tokenEndpoint: md.token_endpoint,
    iss: md.authorization_response_iss_parameter_supported === true,
    oidc: scope.split(" ").includes("openid"),
    resource,
  });
  return u.href;
}

/** Starts a login: navigates to buildAuthorizeURL(o). Rejects if discovery fails or sessionStorage refuses. */
export async function login(o: LoginOptions): Promise<void> {
  const url = await buildAuthorizeURL(o);
  (o.location ?? location).assign(url);
}
