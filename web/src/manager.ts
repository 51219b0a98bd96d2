import { jwtClaims } from "./jwt.js";
import { OAuthError, TokenRefreshError, answerError } from "./oauth.js";
import {
  MissingRefreshTokenError,
  ReauthRequiredError,
  type BroadcastChannelLike,
  type LockManagerLike,
  type StorageLike,
  type TokenManagerOptions,
  type TokenResponse,
} from "./options.js";

export { MissingRefreshTokenError, OAuthError, ReauthRequiredError, TokenRefreshError };
export type { BroadcastChannelLike, LockManagerLike, StorageLike, TokenManagerOptions, TokenResponse };

interface State {
  accessToken: string;
  /** Epoch ms; Infinity when the lifetime is unknown (then only a 401 refreshes). */
  expiresAt: number;
  issuedAt: number;
  refreshAt: number;
  refreshToken?: string;
}

/**
 * Backoff of failed refreshes: full jitter, ceiling BACKOFF_BASE_MS·2^(n-1) capped at BACKOFF_CAP_MS,
 * and never shorter than the answer's Retry-After, itself capped at BACKOFF_CAP_MS.
 */
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_CAP_MS = 30_000;
const MAX_TIMER = 2 ** 31 - 1;

/** How long a tab that found its token replaced by another tab waits for that tab's broadcast before refreshing itself. */
const ADOPT_WAIT_MS = 5_000;

/** A short tag of a token, for lock names: FNV-1a, 32 bits; it does not reveal the token. */
function tag(t: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < t.length; i++) h = Math.imul(h ^ t.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
}

/** url's origin and path, resolved against the page (or base, outside a page): how endpoints are compared. */
function endpointKey(url: string, base: string): string {
  try {
    const p = new URL(url, (globalThis as { location?: { href: string } }).location?.href ?? base);
    return p.origin + p.pathname;
  } catch {
    return url;
  }
}

/** Is this response a challenge worth a refresh (401, or 403 when enabled), not insufficient_scope? */
export function isTokenChallenge(status: number, wwwAuthenticate: string | null, refreshOn403: boolean): boolean {
  if (wwwAuthenticate && /error\s*=\s*"?insufficient_scope/i.test(wwwAuthenticate)) return false;
  return status === 401 || (status === 403 && refreshOn403);
}

/** Keeps a public client's access token fresh; see the README for the behaviour. */
export class TokenManager {
  readonly #o: TokenManagerOptions;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #revoke: string;
  #state: State | null = null;
  /** Cookie mode: a refresh token handed to start() for the first exchange, used once, never stored. */
  #firstRT: string | undefined;
  #inflight: Promise<string> | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #backoff: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;
  #lastError: unknown;
  /** Epoch ms before which the token endpoint's Retry-After forbids the next attempt ('online' does not cut it short). */
  #notBefore = 0;
  #terminal = false;
  /** Why the login ended (the endpoint's OAuthError), the cause of every ReauthRequiredError since. */
  #cause: unknown;
  #reauthCalled = false;
  #epoch = 0;
  /** The access token of the login that ended here: a late broadcast of it must not revive the login. */
  #dead: string | undefined;
  #started = false;
  #closed = false;
  #channel: BroadcastChannelLike | null = null;
  #locks: LockManagerLike | null = null;
  #listeners = new Set<(token: string) => void>();
  #wake = (ev: Event) => this.#onWake(ev);

  constructor(opts: TokenManagerOptions) {
    this.#o = opts;
    const f = opts.fetch;
    this.#fetch = f ? (i, n) => f(i, n) : (i, n) => globalThis.fetch(i, n);
    this.#now = opts.now ?? (() => Date.now());
    this.#random = opts.random ?? Math.random;
    this.#revoke = opts.revocationEndpoint ?? opts.tokenEndpoint.replace(/\/token(?=$|[?#])/, "/revoke");
    this.#endpoints = new Set([endpointKey(opts.tokenEndpoint, opts.tokenEndpoint), endpointKey(this.#revoke, opts.tokenEndpoint)]);
    for (const o of opts.apiOrigins ?? []) {
      try {
        this.#apiOrigins.add(new URL(o).origin);
      } catch {
        // not a URL: no request goes there with the token
      }
    }
  }

  /**
   * Adopt tokens the app has (e.g. from its backend's mint); with none, in cookie mode, the first getAccessToken refreshes from the cookie.
   * Throws MissingRefreshTokenError, changing nothing, if tokens has no refresh_token outside cookie mode.
   */
  start(tokens?: TokenResponse): void {
    if (this.#closed) return;
    if (tokens && !this.#o.cookie && !tokens.refresh_token) throw new MissingRefreshTokenError();
    if (!this.#started) {
      this.#started = true;
      const o = this.#o;
      if (o.crossTab !== false) {
        const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
        this.#locks = o.locks !== undefined ? o.locks : nav?.locks ?? null;
        const name = "tokend:" + o.clientId;
        try {
          this.#channel =
            o.channel !== undefined
              ? o.channel && o.channel(name)
              : typeof BroadcastChannel === "function"
                ? new BroadcastChannel(name)
                : null;
        } catch {
          this.#channel = null;
        }
        (this.#channel as { unref?: () => void } | null)?.unref?.();
        if (this.#channel) this.#channel.onmessage = (ev) => this.#onBroadcast(ev.data);
      }
      const target = o.events !== undefined ? o.events : (globalThis as unknown as EventTarget);
      if (target && typeof target.addEventListener === "function") {
        for (const t of ["visibilitychange", "pageshow", "online"]) target.addEventListener(t, this.#wake);
      }
    }
    if (tokens) {
      if (this.#o.cookie) this.#firstRT = tokens.refresh_token;
      this.#broadcast(this.#adopt(tokens));
    } else if (!this.#state) {
      this.#reread();
    }
  }

  /** A valid access token, refreshing first if it is expired or about to be. Rejects with ReauthRequiredError after a terminal failure. */
  async getAccessToken(): Promise<string> {
    this.start();
    if (this.#terminal) throw this.#reauth();
    const s = this.#state;
    const now = this.#now();
    if (s && now < s.refreshAt) return s.accessToken;
    if (s && this.#usable(s, now)) {
      this.#kick();
      return s.accessToken;
    }
    return this.refresh();
  }

  /** Single-flight refresh; if `rejected` is given and is no longer the current token, resolves with the current one without a request. */
  refresh(rejected?: string): Promise<string> {
    this.start();
    if (this.#terminal) return Promise.reject(this.#reauth());
    const s = this.#state;
    if (rejected !== undefined && s && s.accessToken !== rejected && this.#usable(s, this.#now())) {
      return Promise.resolve(s.accessToken);
    }
    if (!this.#inflight && this.#backoff !== undefined) return Promise.reject(this.#lastError);
    return this.#refreshNow();
  }

  /** fetch with Authorization: Bearer; on 401 (and 403 if refreshOn403) refreshes once and replays once. Never touches the token endpoint. */
  async fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    if (!this.sendsTokenTo(input instanceof Request ? input.url : String(input))) return this.#fetch(input, init);
    const token = await this.getAccessToken();
    const body = init?.body;
    const replayable = !(body != null && typeof ReadableStream === "function" && body instanceof ReadableStream);
    const withBody = input instanceof Request && input.body != null && replayable;
    const send = (tok: string, first: boolean) => {
      const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
      headers.set("Authorization", "Bearer " + tok);
      return this.#fetch(first && withBody ? (input as Request).clone() : input, { ...init, headers });
    };
    const res = await send(token, true);
    if (!isTokenChallenge(res.status, res.headers.get("WWW-Authenticate"), !!this.#o.refreshOn403)) return res;
    if (!replayable) {
      this.#drop(token);
      return res;
    }
    let fresh: string;
    try {
      fresh = await this.refresh(token);
    } catch {
      return res;
    }
    void res.body?.cancel().catch(() => {});
    return send(fresh, false);
  }

  /**
   * Revoke the login at the server and forget the tokens (all tabs). Rejects with an OAuthError if the
   * revocation request failed (not retried; the error carries the answer's Retry-After); the tokens are forgotten anyway.
   */
  async logout(): Promise<void> {
    this.start();
    const o = this.#o;
    const rt = this.#state?.refreshToken;
    this.#end(false);
    this.#channel?.postMessage({ type: "logout" });
    const body = new URLSearchParams();
    if (!o.cookie) {
      if (!rt) return;
      body.set("token", rt);
      body.set("token_type_hint", "refresh_token");
    }
    body.set("client_id", o.clientId);
    let res: Response;
    try {
      res = await this.#fetch(this.#revoke, this.#post(body));
    } catch (e) {
      throw new OAuthError("tokend: revocation endpoint unreachable", { cause: e });
    }
    if (!res.ok) throw answerError("revocation", res, await res.json().catch(() => null), this.#now());
  }

  /** Stop timers and listeners. */
  close(): void {
    this.#closed = true;
    this.#clearTimers();
    this.#channel?.close();
    this.#channel = null;
    const target = this.#o.events !== undefined ? this.#o.events : (globalThis as unknown as EventTarget);
    if (target && typeof target.removeEventListener === "function") {
      for (const t of ["visibilitychange", "pageshow", "online"]) target.removeEventListener(t, this.#wake);
    }
    this.#listeners.clear();
    this.#unmark();
  }

  /** Calls listener with every new access token (refresh, another tab, start); returns the unsubscribe function. */
  onToken(listener: (token: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Whether a request to url gets the access token: its origin is the page's
   * or one of apiOrigins, and it is not the token or revocation endpoint.
   */
  sendsTokenTo(url: string): boolean {
    if (this.isEndpoint(url)) return false;
    const page = (globalThis as { location?: { href: string; origin: string } }).location;
    try {
      const origin = new URL(url, page?.href).origin;
      return origin === page?.origin || this.#apiOrigins.has(origin);
    } catch {
      return false;
    }
  }

  /** Is url the token or revocation endpoint (never given a bearer, never intercepted)? */
  isEndpoint(url: string): boolean {
    return this.#endpoints.has(endpointKey(url, this.#o.tokenEndpoint));
  }

  /** The origins of apiOrigins, parsed once. */
  #apiOrigins: Set<string> = new Set();
  /** The token and revocation endpoints, as endpointKey gives them. */
  #endpoints: Set<string> = new Set();

  /** Whether a response with this status and WWW-Authenticate warrants refresh-and-replay under these options. */
  isChallenge(status: number, wwwAuthenticate: string | null): boolean {
    return isTokenChallenge(status, wwwAuthenticate, !!this.#o.refreshOn403);
  }

  #usable(s: State, now: number): boolean {
    return now < s.expiresAt - Math.min(5_000, Math.max(0, (s.expiresAt - s.issuedAt) / 10));
  }

  #refreshNow(): Promise<string> {
    if (this.#inflight) return this.#inflight;
    const wanted = this.#state?.accessToken;
    const epoch = this.#epoch;
    const locks = this.#locks;
    const run = locks
      ? locks.request("tokend-refresh:" + this.#o.clientId, async () => {
          this.#reread();
          const s = this.#state;
          if (s && s.accessToken !== wanted && this.#usable(s, this.#now())) return s.accessToken;
          // A tab that replaced `wanted` took a marker lock before it
          // released the refresh lock: then its broadcast is on its way
          // (the lock may be granted before that message event runs).
          const marker = wanted && locks.query ? "tokend-replaced:" + this.#o.clientId + ":" + tag(wanted) : "";
          if (marker && (await locks.query!()).held?.some((l) => l.name === marker)) {
            this.#channel?.postMessage({ type: "resend" }); // in case its broadcast was missed (a frozen tab)
            const tok = await this.#adoption(wanted!);
            if (tok) return tok;
          }
          const tok = await this.#request(epoch);
          if (marker) await this.#mark(locks, marker);
          return tok;
        })
      : this.#request(epoch);
    const p = run
      .then(() => {
        // Never hand out a token that is, or is about to be, past its expiry:
        // an answer that came too late for its own token is retried.
        const s = this.#state;
        if (!s || !this.#usable(s, this.#now())) throw new OAuthError("tokend: token expired in transit");
        this.#failures = 0;
        return s.accessToken;
      })
      .catch((e: unknown) => {
        if (!(e instanceof ReauthRequiredError) && epoch === this.#epoch && !this.#closed) this.#retryLater(e);
        throw e;
      });
    const done = () => {
      if (this.#inflight === p) this.#inflight = null;
    };
    p.then(done, done);
    this.#inflight = p;
    return p;
  }

  async #request(epoch: number): Promise<string> {
    const o = this.#o;
    const body = new URLSearchParams({ grant_type: "refresh_token" });
    const rt = o.cookie ? this.#firstRT : this.#state?.refreshToken;
    if (!o.cookie && !rt) throw this.#fail();
    if (rt) body.set("refresh_token", rt);
    body.set("client_id", o.clientId);
    let res: Response;
    // The lifetime counts from when the request was sent: expires_in is what was left when tokend answered.
    const sent = this.#now();
    try {
      res = await this.#fetch(o.tokenEndpoint, this.#post(body));
    } catch (e) {
      throw new OAuthError("tokend: token endpoint unreachable", { cause: e });
    }
    let json: Partial<TokenResponse> = {};
    try {
      json = await res.json();
    } catch {
      // a body that is not JSON counts like an empty one
    }
    if (epoch !== this.#epoch) throw this.#reauth();
    if (res.ok && typeof json.access_token === "string") {
      this.#firstRT = undefined;
      const s = this.#adopt(json as TokenResponse, undefined, undefined, sent);
      this.#broadcast(s);
      return s.accessToken;
    }
    const st = res.status;
    const e = answerError("token", res, json, this.#now());
    if (res.ok || st >= 500 || st === 408 || st === 429) throw e;
    // 400 invalid_grant, 401 invalid_client and every other 4xx: retrying cannot help.
    throw this.#fail(e);
  }

  /** The token that replaces `old` once another tab's broadcast brings it, or undefined after ADOPT_WAIT_MS. */
  #adoption(old: string): Promise<string | undefined> {
    const now = this.#state?.accessToken;
    if (now && now !== old) return Promise.resolve(now); // it came while we asked the lock manager
    return new Promise((resolve) => {
      const done = (t?: string) => {
        clearTimeout(timer);
        off();
        resolve(t);
      };
      const off = this.onToken((t) => t !== old && done(t));
      const timer = setTimeout(done, ADOPT_WAIT_MS);
    });
  }

  /**
   * Hold the lock `name` (until this manager marks again or closes), and resolve once it is held,
   * or at once if another tab holds it (its marker says the same).
   */
  #mark(locks: LockManagerLike, name: string): Promise<void> {
    this.#unmark();
    return new Promise((held) => {
      void locks.request(name, { ifAvailable: true }, (lock) => {
        held();
        return lock ? new Promise<void>((release) => (this.#unmark = release)) : Promise.resolve();
      });
    });
  }

  #unmark: () => void = () => {};

  #post(body: URLSearchParams): RequestInit {
    const headers: Record<string, string> = { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" };
    const init: RequestInit = { method: "POST", headers, body: body.toString() };
    if (this.#o.cookie) {
      headers["X-Tokend"] = "1";
      init.credentials = "include";
    }
    return init;
  }

  /** Terminal failure (cause: the endpoint's answer, if any): forget everything, tell the app once. */
  #fail(cause?: OAuthError): ReauthRequiredError {
    this.#end(true, cause);
    return this.#reauth();
  }

  #reauth(): ReauthRequiredError {
    return new ReauthRequiredError(undefined, { cause: this.#cause });
  }

  #end(tell: boolean, cause?: unknown): void {
    this.#epoch++;
    this.#terminal = true;
    this.#cause = cause;
    this.#dead = this.#state?.accessToken ?? this.#dead;
    this.#state = null;
    this.#firstRT = undefined;
    this.#inflight = null;
    this.#clearTimers();
    this.#save();
    if (tell && !this.#reauthCalled) {
      this.#reauthCalled = true;
      try {
        this.#o.onReauthRequired?.(this.#reauth());
      } catch {
        // the app's callback must not break the manager
      }
    }
  }

  #retryLater(e: unknown): void {
    this.#lastError = e;
    this.#failures++;
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (this.#failures - 1));
    const floor = Math.min(BACKOFF_CAP_MS, (e instanceof OAuthError && e.retryAfterMs) || 0);
    this.#notBefore = this.#now() + floor;
    clearTimeout(this.#timer);
    clearTimeout(this.#backoff);
    this.#backoff = setTimeout(() => {
      this.#backoff = undefined;
      this.#refreshNow().catch(() => {});
    }, Math.max(floor, this.#random() * ceiling));
  }

  #kick(): void {
    if (!this.#inflight && this.#backoff === undefined && !this.#terminal) this.#refreshNow().catch(() => {});
  }

  /** Adopt a token response (its expires_in counted from `now`, default the present) or a broadcast/stored state, and schedule its refresh. */
  #adopt(t: TokenResponse, expiresAt?: number, refreshToken?: string, now = this.#now()): State {
    const claims = jwtClaims(t.access_token);
    const iat = typeof claims?.iat === "number" ? claims.iat * 1000 : NaN;
    const exp = typeof claims?.exp === "number" ? claims.exp * 1000 : NaN;
    let issuedAt = now;
    if (expiresAt === undefined) {
      expiresAt = typeof t.expires_in === "number" ? now + t.expires_in * 1000 : exp > 0 ? exp : Infinity;
      if (typeof t.expires_in !== "number" && iat <= now) issuedAt = iat;
    } else if (iat <= now && iat < expiresAt) {
      issuedAt = iat;
    }
    const lifetime = Math.max(0, expiresAt - issuedAt);
    const lead = Math.max(lifetime * 0.2, Math.min(this.#o.refreshLeadMs ?? 60_000, lifetime / 2));
    const s: State = {
      accessToken: t.access_token,
      expiresAt,
      issuedAt,
      refreshAt: isFinite(expiresAt) ? expiresAt - lead - this.#random() * lead * 0.1 : Infinity,
      refreshToken: this.#o.cookie ? undefined : refreshToken ?? t.refresh_token ?? this.#state?.refreshToken,
    };
    this.#state = s;
    this.#terminal = false;
    this.#reauthCalled = false;
    // New tokens (a refresh, another tab's, a new login) end the failures: no retry, no wait is left.
    clearTimeout(this.#backoff);
    this.#backoff = undefined;
    this.#failures = 0;
    this.#save();
    this.#schedule();
    for (const l of this.#listeners) {
      try {
        l(s.accessToken);
      } catch {
        // a listener's error is its own
      }
    }
    return s;
  }

  #broadcast(s: State): void {
    const m: Record<string, unknown> = { type: "tokens", access_token: s.accessToken, expires_at: s.expiresAt };
    if (s.refreshToken) m.refresh_token = s.refreshToken;
    this.#channel?.postMessage(m);
  }

  #onBroadcast(m: unknown): void {
    if (this.#closed || !m || typeof m !== "object") return;
    const d = m as { type?: unknown; access_token?: unknown; expires_at?: unknown; refresh_token?: unknown };
    if (d.type === "logout") {
      if (this.#state || !this.#terminal) this.#end(true);
    } else if (d.type === "resend") {
      // A tab found our marker and waits for the tokens we broadcast.
      if (this.#state && !this.#terminal) this.#broadcast(this.#state);
    } else if (d.type === "tokens" && typeof d.access_token === "string" && d.access_token !== this.#state?.accessToken && d.access_token !== this.#dead) {
      const exp = typeof d.expires_at === "number" ? d.expires_at : Infinity;
      // A late message of an older token (whose refresh token has been
      // rotated since) must not replace a newer one. An equal expiry is a
      // newer token's: its lifetime counts from when its request was sent,
      // which can be the millisecond the current one was adopted.
      if (this.#state && exp < this.#state.expiresAt) return;
      const rt = typeof d.refresh_token === "string" ? d.refresh_token : undefined;
      this.#adopt({ access_token: d.access_token }, exp, rt);
    }
  }

  #area(): StorageLike | null {
    const o = this.#o;
    if (!o.storage || o.storage === "memory") return null;
    try {
      return o.storageArea ?? (o.storage === "local" ? globalThis.localStorage : globalThis.sessionStorage) ?? null;
    } catch {
      return null;
    }
  }

  #key(): string {
    return this.#o.storageKey ?? "tokend:" + this.#o.clientId;
  }

  #save(): void {
    const a = this.#area();
    const s = this.#state;
    try {
      if (!s) a?.removeItem(this.#key());
      else a?.setItem(this.#key(), JSON.stringify({ access_token: s.accessToken, expires_at: isFinite(s.expiresAt) ? s.expiresAt : null, refresh_token: s.refreshToken }));
    } catch {
      // quota or privacy mode: memory still holds the tokens
    }
  }

  /** Adopt what storage holds if it is another token than ours and lives longer. */
  #reread(): void {
    const a = this.#area();
    let d: { access_token?: unknown; expires_at?: unknown; refresh_token?: unknown } | null = null;
    try {
      d = JSON.parse(a?.getItem(this.#key()) ?? "null");
    } catch {
      return;
    }
    if (!d || typeof d.access_token !== "string" || d.access_token === this.#state?.accessToken) return;
    const exp = typeof d.expires_at === "number" ? d.expires_at : Infinity;
    if (this.#state && exp < this.#state.expiresAt) return;
    this.#adopt({ access_token: d.access_token }, exp, typeof d.refresh_token === "string" ? d.refresh_token : undefined);
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    const s = this.#state;
    if (!s || this.#closed || !this.#started || this.#backoff !== undefined || !isFinite(s.refreshAt)) return;
    this.#timer = setTimeout(() => {
      if (this.#now() < s.refreshAt) this.#schedule();
      else this.#kick();
    }, Math.min(MAX_TIMER, Math.max(0, s.refreshAt - this.#now())));
  }

  #clearTimers(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#backoff);
    this.#timer = this.#backoff = undefined;
  }

  /** A 401 for a request we cannot replay: the token is dead, the next call refreshes. */
  #drop(token: string): void {
    const s = this.#state;
    if (s && s.accessToken === token) {
      s.expiresAt = s.refreshAt = 0;
      clearTimeout(this.#timer);
      this.#save();
    }
  }

  #onWake(ev: Event): void {
    if (this.#closed || this.#terminal || !this.#state) return;
    const doc = (globalThis as { document?: { visibilityState?: string } }).document;
    if (ev.type === "visibilitychange" && doc?.visibilityState === "hidden") return;
    if (ev.type === "online" && this.#backoff !== undefined && this.#now() >= this.#notBefore) {
      clearTimeout(this.#backoff);
      this.#backoff = undefined;
    }
    if (this.#now() >= this.#state.refreshAt) this.#kick();
    else this.#schedule();
  }
}
