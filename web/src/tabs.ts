// The tab coordinator: how the tabs of one origin share one login. A
// BroadcastChannel carries new tokens (and logouts) to the other tabs; Web
// Locks give one tab at a time the right to refresh, and tell every tab
// which tokens the others hold, so that a tab that missed broadcasts
// (frozen, throttled, restored) never spends a refresh token another tab
// has already rotated.
import type { BroadcastChannelLike, LockManagerLike, TokenManagerOptions } from "./options.js";
import { OAuthError } from "./errors.js";
import type { TokenManager } from "./manager.js";
import type { Held } from "./schedule.js";

/** The messages on the channel: tokens (with the Wire fields), logout, and resend (a tab asks the others for their tokens). */
export type Message = { type: "tokens" } | { type: "logout" } | { type: "resend" };

/** The tabs of this origin that share a client's login, as this tab sees them. */
export class Tabs {
  #channel: BroadcastChannelLike | null = null;
  #locks: LockManagerLike | null = null;
  readonly #name: string;
  /** Releases the lock that says which token this tab holds. */
  #release = () => {};
  /** The seq of the token this tab holds, as in its lock's name. */
  #held = "";

  /** Joins o's tabs (unless o.crossTab is false); onMessage receives every other tab's message. */
  constructor(o: TokenManagerOptions, onMessage: (m: unknown) => void) {
    this.#name = "tokend:" + o.clientId;
    if (o.crossTab === false) return;
    const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
    this.#locks = o.locks !== undefined ? o.locks : nav?.locks ?? null;
    try {
      this.#channel =
        o.channel !== undefined ? o.channel && o.channel(this.#name) : typeof BroadcastChannel === "function" ? new BroadcastChannel(this.#name) : null;
    } catch {
      this.#channel = null;
    }
    (this.#channel as { unref?: () => void } | null)?.unref?.();
    if (this.#channel) this.#channel.onmessage = (ev) => onMessage(ev.data);
  }

  /** Sends m to the other tabs. */
  post(m: Record<string, unknown>): void {
    this.#channel?.postMessage(m);
  }

  /** Runs fn holding the origin's refresh lock: one tab at a time (at once without Web Locks). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.#locks ? this.#locks.request("tokend-refresh:" + this.#name, fn) : fn();
  }

  /**
   * Says that this tab holds h (nothing, for null): a shared lock named for
   * h's seq, held until the next call. Resolves once it is held.
   */
  hold(h: Held | null): Promise<void> {
    const t = h ? String(h.seq) : "";
    if (t === this.#held) return Promise.resolve();
    this.#held = t;
    this.#release();
    const locks = this.#locks;
    if (!locks || !h) return Promise.resolve();
    // Released when the next hold begins, even if that comes before this one is granted.
    const gone = new Promise<void>((r) => (this.#release = r));
    return new Promise((held) => void locks.request(this.#prefix() + t, { mode: "shared" }, () => (held(), gone)));
  }

  /** Whether another tab holds a later token than h (of a higher seq), so that h's refresh token may be spent. */
  async newer(h: Held): Promise<boolean> {
    const prefix = this.#prefix();
    const held = (await this.#locks?.query?.())?.held ?? [];
    return held.some((l) => l.name?.startsWith(prefix) && +l.name.slice(prefix.length) > h.seq);
  }

  #prefix(): string {
    return "tokend-holds:" + this.#name + ":";
  }

  /** Leaves: no more messages, no lock held. */
  close(): void {
    this.hold(null);
    this.#channel?.close();
    this.#channel = null;
  }
}

/** How long a tab that found newer tokens in another tab waits for them to arrive before it gives up (and retries later). */
const ADOPT_WAIT_MS = 5_000;

/**
 * Before a tab spends the refresh token of the token it holds (held()): if
 * another tab holds a later one (this tab missed its broadcasts: frozen,
 * throttled, restored, or the message is on its way), asks the tabs to send
 * their tokens and waits until m adopts another token. Spending the held
 * refresh token would be reuse, which ends the login in every tab (RFC 9700
 * §4.14.2). Rejects with an OAuthError, spending nothing, if none comes
 * within ADOPT_WAIT_MS (that tab is asleep too): the refresh is retried.
 */
export async function catchUp(tabs: Tabs, m: TokenManager, held: () => Held | null): Promise<void> {
  const h = held();
  if (!h || !(await tabs.newer(h)) || held() !== h) return;
  tabs.post({ type: "resend" });
  const old = h.access_token;
  const came = await new Promise<boolean>((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      off();
      resolve(ok);
    };
    const off = m.onToken((t) => t !== old && done(true));
    const timer = setTimeout(() => done(false), ADOPT_WAIT_MS);
  });
  if (!came) throw new OAuthError("tokend: newer tokens in another tab");
}
