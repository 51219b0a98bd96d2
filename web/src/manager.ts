// TokenManager: one family's tokens in one tab, kept fresh. It is the
// conductor of the parts: schedule.ts decides when, endpoint.ts talks to
// the token endpoint, tabs.ts shares the family with the other tabs,
// storage.ts keeps it, errors.ts names what went wrong.
import { FETCH_TIMEOUT_MS, redeem, revoke, terminal } from "./endpoint.js";
import { bearerFetch, isTokenChallenge, routes } from "./fetch.js";
import { MissingRefreshTokenError, OAuthError, ReauthRequiredError, TokenRefreshError } from "./errors.js";
import type { BroadcastChannelLike, LockManagerLike, StorageLike, TokenManagerOptions, TokenResponse } from "./options.js";
import { BACKOFF_BASE_MS, BACKOFF_CAP_MS, UNANSWERED_CAP_MS, received, refreshTime, usable, type Held, type Token } from "./schedule.js";
import { fromWire, load, save } from "./storage.js";
import { refresher, type Refresher } from "./refresher.js";
import { joinTabs, catchUp, type Tabs } from "./tabs.js";

export { FETCH_TIMEOUT_MS, isTokenChallenge, MissingRefreshTokenError, OAuthError, ReauthRequiredError, TokenRefreshError, BACKOFF_BASE_MS, BACKOFF_CAP_MS, UNANSWERED_CAP_MS };
export type { BroadcastChannelLike, LockManagerLike, StorageLike, TokenManagerOptions, TokenResponse };

const WAKE_EVENTS = ["visibilitychange", "pageshow", "online", "resume"];

/** Keeps a public client's access token fresh; see the README for the behaviour. */
export class TokenManager {
  readonly #o: TokenManagerOptions;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #revoke: string;
  readonly #routes: ReturnType<typeof routes>;
  #held: Held | null = null;
  /** Settles once the other tabs can see which token this one holds. */
  #holding: Promise<void> | undefined;
  /** Cookie mode: a refresh token handed to start() for the first exchange, used once, never stored. */
  #firstRT: string | undefined;
  readonly #refresher: Refresher;
  #terminal?: boolean;
  /** Why the family ended (the endpoint's OAuthError), the cause of every ReauthRequiredError since. */
  #cause: unknown;
  #reauthCalled?: boolean;
  #epoch = 0;
  /** The access token of the family that ended here: a late broadcast of it must not revive the family. */
  #dead: string | undefined;
  #closed?: boolean;
  /** The other tabs, joined by the first start(). */
  #tabs?: Tabs;
  #listeners = new Set<(token: string) => void>();
  /** The page is back (visible, restored from the back/forward cache or a freeze, online). */
  #wake = (ev: Event) => this.#held && this.#refresher.wake(ev.type, this.#held.refresh_at);

  constructor(opts: TokenManagerOptions) {
    this.#o = opts;
    // The global fetch as it is at each call.
    this.#fetch = opts.fetch ?? ((i, n) => fetch(i, n));
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#revoke = opts.revocationEndpoint ?? opts.tokenEndpoint.replace(/\/token(?=$|[?#])/, "/revoke");
    this.#routes = routes(opts, this.#revoke);
    this.#refresher = refresher(() => this.#attempt(), this.#now, this.#random);
  }

  /**
   * Adopt tokens the app has (e.g. from its backend's mint); with none, in cookie mode, the first getAccessToken refreshes from the cookie.
   * Throws MissingRefreshTokenError, changing nothing, if tokens has no refresh_token outside cookie mode.
   */
  start(tokens?: TokenResponse): void {
    if (this.#closed) return;
    const o = this.#o;
    if (tokens && !o.cookie && !tokens.refresh_token) throw new MissingRefreshTokenError();
    if (!this.#tabs) {
      this.#tabs = joinTabs(o, (m) => this.#onMessage(m));
      this.#listen("add");
    }
    if (tokens) {
      if (o.cookie) this.#firstRT = tokens.refresh_token;
      this.#broadcast(this.#adopt(received(tokens, this.#now(), this.#held)));
    } else if (!this.#held) {
      this.#reread();
    }
  }

  /** A valid access token, refreshing first if it is expired or about to be. Rejects with ReauthRequiredError after a terminal failure. */
  async getAccessToken(): Promise<string> {
    this.start();
    const h = this.#held;
    const now = this.#now();
    // Before refresh_at a token is always usable; after a terminal failure none is held.
    if (!h || !usable(h, now)) return this.refresh();
    if (now >= h.refresh_at) this.#refresher.kick();
    return h.access_token;
  }

  /** Single-flight refresh; if `rejected` is given and is no longer the current token, resolves with the current one without a request. */
  refresh(rejected?: string): Promise<string> {
    this.start();
    if (this.#terminal) return Promise.reject(this.#reauth());
    const h = this.#held;
    if (rejected !== undefined && h && h.access_token !== rejected && usable(h, this.#now())) return Promise.resolve(h.access_token);
    return this.#refresher.run();
  }

  /** fetch with Authorization: Bearer; on 401 (and 403 if refreshOn403) refreshes once and replays once. Never touches the token endpoint. */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    return bearerFetch(this, this.#fetch, (t) => this.#drop(t), input, init);
  }

  /**
   * Revoke the family at the server and forget the tokens (all tabs). Rejects with an OAuthError if the
   * revocation request failed (not retried; the error carries the answer's Retry-After); the tokens are forgotten anyway.
   */
  async logout(): Promise<void> {
    this.start();
    const rt = this.#held?.refresh_token;
    this.#end(false);
    this.#tabs?.post({ type: "logout" });
    if (this.#o.cookie || rt) await revoke(this.#fetch, this.#o, this.#revoke, rt, this.#now);
  }

  /** Stop timers and listeners. */
  close(): void {
    this.#closed = true;
    this.#refresher.stop();
    this.#tabs?.close();
    this.#listen("remove");
    this.#listeners.clear();
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
    return this.#routes[1](url);
  }

  /** Is url the token or revocation endpoint (never given a bearer, never intercepted)? */
  isEndpoint(url: string): boolean {
    return this.#routes[0](url);
  }

  /** Whether a response with this status and WWW-Authenticate warrants refresh-and-replay under these options. */
  isChallenge(status: number, wwwAuthenticate: string | null): boolean {
    return isTokenChallenge(status, wwwAuthenticate, !!this.#o.refreshOn403);
  }

  /** One refresh, holding the refresh lock of the origin's tabs. */
  #attempt(): Promise<string> {
    const wanted = this.#held?.access_token;
    const epoch = this.#epoch;
    const tabs = this.#tabs!;
    return tabs.exclusive(async () => {
      const fresh = () => this.#held && this.#held.access_token !== wanted && usable(this.#held, this.#now());
      this.#reread();
      if (!fresh()) await catchUp(tabs, this, () => this.#held);
      if (!fresh()) {
        await this.#request(epoch);
        await this.#holding;
      }
      // Never hand out a token that is, or is about to be, past its expiry:
      // an answer that came too late for its own token is retried.
      const h = this.#held;
      if (!h || !usable(h, this.#now())) throw new OAuthError("tokend: token expired in transit");
      return h.access_token;
    });
  }

  async #request(epoch: number): Promise<void> {
    const o = this.#o;
    // Only cookie mode has a #firstRT; only outside it do tokens keep their refresh_token.
    const rt = this.#firstRT ?? this.#held?.refresh_token;
    if (!o.cookie && !rt) throw this.#end(true);
    // The lifetime counts from when the request was sent: expires_in is what was left when the server answered.
    const sent = this.#now();
    const a = await redeem(this.#fetch, o, rt, this.#now);
    if (epoch !== this.#epoch) throw this.#reauth();
    if (a instanceof OAuthError) throw terminal(a) ? this.#end(true, a) : a;
    this.#firstRT = undefined;
    this.#broadcast(this.#adopt(received(a, sent, this.#held)));
  }

  #reauth(): ReauthRequiredError {
    return new ReauthRequiredError(undefined, { cause: this.#cause });
  }

  /**
   * The family is over (cause: the endpoint's answer, if any): forget
   * everything; after a terminal failure (tell), tell the app once. Returns
   * the error to reject with.
   */
  #end(tell: boolean, cause?: unknown): ReauthRequiredError {
    this.#epoch++;
    this.#terminal = true;
    this.#cause = cause;
    this.#dead = this.#held?.access_token ?? this.#dead;
    this.#held = null;
    this.#holding = this.#tabs?.hold(null);
    this.#firstRT = undefined;
    this.#refresher.stop();
    save(this.#o, null);
    if (tell && !this.#reauthCalled) {
      this.#reauthCalled = true;
      try {
        this.#o.onReauthRequired?.(this.#reauth());
      } catch {
        // the app's callback must not break the manager
      }
    }
    return this.#reauth();
  }

  /** Adopt a token (from the endpoint, another tab or storage), schedule its refresh, tell the listeners. */
  #adopt(t: Token): Held {
    const h: Held = { ...t, refresh_at: refreshTime(t.issued_at, t.expires_at, this.#o.refreshLeadMs ?? 60_000, this.#random) };
    if (this.#o.cookie) delete h.refresh_token;
    this.#held = h;
    this.#terminal = false;
    this.#reauthCalled = false;
    this.#refresher.reset();
    save(this.#o, h);
    this.#holding = this.#tabs?.hold(h);
    if (!this.#closed) this.#refresher.at(h.refresh_at);
    for (const l of this.#listeners) {
      try {
        l(h.access_token);
      } catch {
        // a listener's error is its own
      }
    }
    return h;
  }

  /**
   * Adopt t, another tab's token or the stored one, unless it is ours, the
   * ended family's, or older than ours: of a lower seq (a late message of a
   * token whose refresh token has been rotated since), or of the same seq
   * (another family) and an earlier expiry. A later token can expire first:
   * the server may give a refreshed token a shorter lifetime than a minted one.
   */
  #offer(t: Token | undefined): void {
    const h = this.#held;
    if (!t || t.access_token === h?.access_token || t.access_token === this.#dead) return;
    if (!h || t.seq > h.seq || (t.seq === h.seq && t.expires_at >= h.expires_at)) this.#adopt(t);
  }

  #broadcast(h: Held): void {
    this.#tabs?.post({ type: "tokens", ...h });
  }

  #onMessage(m: unknown): void {
    if (this.#closed) return;
    const type = (m as { type?: unknown } | null)?.type;
    // No token is held after a terminal failure.
    if (type === "logout") {
      if (this.#held || !this.#terminal) this.#end(true);
    } else if (type === "resend") {
      // A tab that missed our broadcasts asks for the tokens before it refreshes.
      if (this.#held) this.#broadcast(this.#held);
    } else if (type === "tokens") {
      this.#offer(fromWire(m, this.#now()));
    }
  }

  /** Adopt what storage holds (session and local modes), as another tab's broadcast. */
  #reread(): void {
    this.#offer(fromWire(load(this.#o), this.#now()));
  }

  /** A 401 for a request we cannot replay: the token is dead, the next call refreshes. */
  #drop(token: string): void {
    const h = this.#held;
    if (h && h.access_token === token) {
      h.expires_at = h.refresh_at = 0;
      this.#refresher.at(Infinity);
      save(this.#o, h);
    }
  }

  #listen(how: "add" | "remove"): void {
    const target = this.#o.events !== undefined ? this.#o.events : (globalThis as unknown as EventTarget);
    for (const t of WAKE_EVENTS) target?.[`${how}EventListener`]?.(t, this.#wake);
  }
}
