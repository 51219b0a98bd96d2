// Ending a login at the provider: RP-Initiated Logout (OpenID Connect
// RP-Initiated Logout 1.0 §2).
import { discover, refuse } from "./discovery.js";
import type { LoginEnv } from "./authorize.js";

export interface LogoutOptions extends Pick<LoginEnv, "fetch" | "location" | "metadata"> {
  issuer: string;
  clientId: string;
  /** The ID token of the login (handleRedirect's idToken): tells the provider whose session ends. */
  idTokenHint?: string;
  /** A post-logout redirect URI registered for the client; default: the provider's own page. */
  postLogoutRedirectUri?: string;
  /** Given back on the post-logout redirect. */
  state?: string;
  /** tokend's extension end_families=true: also end this app's refresh-token families of the browser session (never another app's). */
  endFamilies?: boolean;
  /** A TokenManager (or anything with its logout): its tokens are revoked and forgotten first. */
  manager?: { logout(): Promise<void> };
}

/** The end-session URL: end_session_endpoint with id_token_hint, client_id, post_logout_redirect_uri, state and end_families. */
export async function buildLogoutURL(o: LogoutOptions): Promise<string> {
  const md = o.metadata ?? (await discover(o.issuer, o));
  if (typeof md.end_session_endpoint !== "string") throw refuse("invalid_metadata", "provider has no end_session_endpoint");
  const u = new URL(md.end_session_endpoint);
  const params: Record<string, string | undefined> = {
    id_token_hint: o.idTokenHint,
    client_id: o.clientId,
    post_logout_redirect_uri: o.postLogoutRedirectUri,
    state: o.state,
    end_families: o.endFamilies ? "true" : undefined,
  };
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.href;
}

/**
 * Logs out: manager.logout() (revokes the refresh token and forgets the
 * tokens in every tab; a failed revocation does not stop the logout), then
 * navigates to buildLogoutURL(o). Rejects, after the manager's logout, if
 * discovery fails or the provider has no end_session_endpoint.
 */
export async function logout(o: LogoutOptions): Promise<void> {
  await o.manager?.logout().catch(() => {});
  const url = await buildLogoutURL(o);
  (o.location ?? location).assign(url);
}
