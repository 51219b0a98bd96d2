// The shapes TokenManager takes and gives: its options, the token
// endpoint's answer, and the browser APIs it uses (so that tests can inject
// them). Its errors are in errors.ts.
import type { ReauthRequiredError } from "./errors.js";

/** A token endpoint answer (RFC 6749 §5.1). */
export interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  /** Lifetime of the access token in seconds. */
  expires_in?: number;
  token_type?: string;
  scope?: string;
}

/** The part of the Web Locks API the manager uses (navigator.locks). */
export interface LockManagerLike {
  request<T>(name: string, callback: (lock: unknown) => Promise<T>): Promise<T>;
  request<T>(name: string, options: { mode: "shared" }, callback: (lock: unknown) => Promise<T>): Promise<T>;
  /** The locks held; without it, a tab cannot tell that another holds newer tokens, and relies on broadcasts alone. */
  query?(): Promise<{ held?: { name?: string }[] }>;
}

/** The part of BroadcastChannel the manager uses. */
export interface BroadcastChannelLike {
  postMessage(message: unknown): void;
  close(): void;
  onmessage: ((ev: MessageEvent) => void) | null;
}

/** The part of the Storage interface (sessionStorage, localStorage) the manager uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface TokenManagerOptions {
  /**
   * The origins, besides the page's own, whose requests get the access token
   * (e.g. ["https://api.example.com"]); a request anywhere else passes
   * through fetch and the Angular interceptor untouched, so that the token
   * never leaks to another site. Default: the page's origin only.
   */
  apiOrigins?: string[];
  /** The token endpoint, e.g. "https://auth.example.com/oauth/token". */
  tokenEndpoint: string;
  /** A public client's id. */
  clientId: string;
  /** Default: tokenEndpoint with its final /token replaced by /revoke. */
  revocationEndpoint?: string;
  /** Cookie mode: the refresh token lives in tokend's HttpOnly cookie. */
  cookie?: boolean;
  /** Where tokens are kept; default "memory". */
  storage?: "memory" | "session" | "local";
  /** Default "tokend:" + clientId. */
  storageKey?: string;
  /** Default 60_000: refresh at 80 % of the lifetime or this long before expiry, whichever first (capped at half the lifetime). */
  refreshLeadMs?: number;
  /** Default false: also refresh and replay on 403, never for error="insufficient_scope". */
  refreshOn403?: boolean;
  /** Default true: coordinate tabs with Web Locks + BroadcastChannel when available. */
  crossTab?: boolean;
  /**
   * Called once when a refresh fails terminally (or another tab logged out), with the error
   * getAccessToken then rejects with (its cause: the endpoint's OAuthError, if one answered).
   */
  onReauthRequired?: (error: ReauthRequiredError) => void;
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Default Date.now. */
  now?: () => number;
  /** Test hook: the Storage object for "session"/"local" (default sessionStorage/localStorage). */
  storageArea?: StorageLike;
  /** Test hook: where visibilitychange, pageshow and online are heard (default globalThis; null: nowhere). */
  events?: EventTarget | null;
  /** Test hook: the lock manager (default navigator.locks; null: none). */
  locks?: LockManagerLike | null;
  /** Test hook: makes the broadcast channel (default new BroadcastChannel(name); null: none). */
  channel?: ((name: string) => BroadcastChannelLike) | null;
  /** Test hook: uniform in [0, 1), for jitter (default Math.random). */
  random?: () => number;
}
