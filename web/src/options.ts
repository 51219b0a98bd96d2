// The shapes TokenManager takes and gives: its options, the token
// endpoint's answer, the browser APIs it uses (so that tests can inject
// them), and its errors (OAuthError: oauth.ts).

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
  request<T>(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<T>): Promise<T>;
  /** The locks held and requested; without it, a waiting tab relies on the broadcast alone. */
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

/**
 * The login is over (terminal refresh failure, logout, no refresh token): the user must sign in again.
 * After an endpoint's terminal answer (e.g. 400 invalid_grant, 401 invalid_client), cause is its OAuthError.
 */
export class ReauthRequiredError extends Error {
  constructor(message = "tokend: reauthentication required", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ReauthRequiredError";
  }
}

/**
 * start() was given tokens without a refresh_token outside cookie mode:
 * the manager could never refresh them, and the user would be sent to
 * log in again once the access token expires. Thrown by start() before it
 * changes anything. With tokend, a backend's mint for a public client
 * always carries one; a response without one is a mint for the backend
 * itself, or one that lost it on the way to the page.
 */
export class MissingRefreshTokenError extends Error {
  constructor(message = "tokend: start() was given tokens without a refresh_token; outside cookie mode the manager needs one to refresh") {
    super(message);
    this.name = "MissingRefreshTokenError";
  }
}
