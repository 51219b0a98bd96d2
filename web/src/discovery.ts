// Where a provider's endpoints are: its metadata, read once per issuer
// (OpenID Connect Discovery 1.0 §4, RFC 8414 §3).
import { OAuthError, answerError } from "./errors.js";
import { FETCH_TIMEOUT_MS } from "./endpoint.js";

/** What the login uses of a provider's metadata (OIDC Discovery §3, RFC 8414 §2); other fields are kept as they came. */
export interface ProviderMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  /** OIDC RP-Initiated Logout 1.0 §2.1; logout() needs it. */
  end_session_endpoint?: string;
  revocation_endpoint?: string;
  userinfo_endpoint?: string;
  /** RFC 9207 §3: true means every authorization response carries iss, and one without it is refused. */
  authorization_response_iss_parameter_supported?: boolean;
  [field: string]: unknown;
}

/** A refusal of the login client itself (nothing answered with an error): an OAuthError without status, whose error is code. */
export const refuse = (code: string, message: string) => new OAuthError("tokend: " + message, { error: code });

/** The metadata read so far, per issuer, for the life of the page. A failed read is forgotten. */
const cache = new Map<string, Promise<ProviderMetadata>>();

/**
 * The metadata of issuer: GET issuer + "/.well-known/openid-configuration"
 * (OIDC Discovery §4.1), or, if that is 404, the RFC 8414 document
 * (/.well-known/oauth-authorization-server inserted before the issuer's
 * path, §3.1). Read once per issuer and page; concurrent calls share one
 * request. Rejects with an OAuthError: without status if unreachable or
 * unanswered within FETCH_TIMEOUT_MS; with the status of an answer that is
 * not a success; with error "invalid_metadata" if the document's issuer is
 * not exactly issuer (OIDC Discovery §4.3, RFC 8414 §3.3: a provider must
 * not speak for another) or it lacks the authorization or token endpoint.
 */
export function discover(issuer: string, opts: { fetch?: typeof fetch } = {}): Promise<ProviderMetadata> {
  let p = cache.get(issuer);
  if (!p) {
    const f = opts.fetch ?? ((i, n) => fetch(i, n));
    p = read(f, issuer);
    cache.set(issuer, p);
    p.catch(() => cache.get(issuer) === p && cache.delete(issuer));
  }
  return p;
}

async function read(f: typeof fetch, issuer: string): Promise<ProviderMetadata> {
  const u = new URL(issuer);
  let [res, md] = await get(f, issuer.replace(/\/$/, "") + "/.well-known/openid-configuration");
  if (res.status === 404) [res, md] = await get(f, u.origin + "/.well-known/oauth-authorization-server" + u.pathname.replace(/\/$/, ""));
  if (!res.ok) throw answerError("discovery", res, md, Date.now());
  if (md.issuer !== issuer) throw refuse("invalid_metadata", `metadata of ${issuer} names issuer ${String(md.issuer)}`);
  if (typeof md.authorization_endpoint !== "string" || typeof md.token_endpoint !== "string") throw refuse("invalid_metadata", `metadata of ${issuer} lacks an authorization or token endpoint`);
  return md as ProviderMetadata;
}

/** GET url as JSON ({} for a body that is not a JSON object), within FETCH_TIMEOUT_MS. */
async function get(f: typeof fetch, url: string): Promise<[Response, Record<string, unknown>]> {
  const c = new AbortController();
  const timer = setTimeout(() => c.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await f(url, { headers: { Accept: "application/json" }, signal: c.signal });
    const body: unknown = await res.json().catch(() => ({}));
    return [res, body && typeof body === "object" ? (body as Record<string, unknown>) : {}];
  } catch (e) {
    throw new OAuthError("tokend: discovery endpoint unreachable", { cause: e });
  } finally {
    clearTimeout(timer);
  }
}
