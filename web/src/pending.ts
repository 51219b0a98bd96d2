// A login in flight: what login() keeps in sessionStorage for
// handleRedirect(), one entry per state, so several logins in flight do
// not overwrite each other, and each can be finished once.
import type { StorageLike } from "./options.js";

/** What the callback needs of the login it finishes. */
export interface Pending {
  issuer: string;
  clientId: string;
  redirectUri: string;
  /** The PKCE code_verifier (RFC 7636 §4.1). */
  verifier: string;
  nonce: string;
  /** Where the app goes once logged in. */
  returnTo: string;
  tokenEndpoint: string;
  /** The provider promised the iss response parameter (RFC 9207 §3). */
  iss: boolean;
  /** The scope had openid: the token response must carry an ID token (OIDC Core §3.1.3.3). */
  oidc: boolean;
  resource?: string[];
}

const key = (state: string) => "tokend:login:" + state;

/** sessionStorage, or the test's stand-in. */
export const area = (s?: StorageLike): StorageLike => s ?? (globalThis as unknown as { sessionStorage: StorageLike }).sessionStorage;

/** Keeps p under state; throws if storage refuses (the login could not be finished). */
export function putPending(s: StorageLike, state: string, p: Pending): void {
  s.setItem(key(state), JSON.stringify(p));
}

/** Takes (reads and removes: single use) the login of state; undefined if there is none. */
export function takePending(s: StorageLike, state: string): Pending | undefined {
  let v: string | null = null;
  try {
    v = s.getItem(key(state));
    s.removeItem(key(state));
    const p = JSON.parse(v ?? "null") as Pending | null;
    return typeof p?.verifier === "string" && typeof p.issuer === "string" ? p : undefined;
  } catch {
    return undefined;
  }
}
