// The tab coordinator: how the tabs of one origin share one family. A
// BroadcastChannel carries new tokens (and logouts) to the other tabs; Web
// Locks give one tab at a time the right to refresh, and tell every tab
// which tokens the others hold, so that a tab that missed broadcasts
// (frozen, throttled, restored) never spends a refresh token another tab
// has already rotated.
import type { BroadcastChannelLike, LockManagerLike, TokenManagerOptions } from "./options.js";
import { OAuthError } from "./errors.js";
import type { Held } from "./schedule.js";

/** The tabs of this origin that share a client's family, as this tab sees them. */
export interface Tabs {
  /** Sends m to the other tabs. */
  post(m: Record<string, unknown>): void;
  /** Runs fn holding the origin's refresh lock: one tab at a time (at once without Web Locks). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Says that this tab holds h (nothing, for null): a shared lock named for
   * h's seq, held until the next call. Resolves once it is held.
   */
  hold(h: Held | null): Promise<void>;
  /** Whether another tab holds a later token than h (of a higher seq), so that h's refresh token may be spent. */
  newer(h: Held): Promise<boolean>;
  /** Leaves: no more messages, no lock held. */
  close(): void;
}

/**
 * Joins o's tabs (unless o.crossTab is false); onMessage receives every
 * other tab's message. The channel carries {type: "tokens", ...Token} (a
 * tab's new token), {type: "logout"} and {type: "resend"} (a tab that
 * missed broadcasts asks the others for their tokens).
 */
export function joinTabs(o: TokenManagerOptions, onMessage: (m: unknown) => void): Tabs {
  const name = "tokend:" + o.clientId;
  /** The prefix of the names of the locks that say which token a tab holds; its seq follows. */
  const holds = "tokend-holds:" + name + ":";
  const on = o.crossTab !== false;
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  const locks = !on ? null : o.locks !== undefined ? o.locks : nav?.locks;
  let channel: BroadcastChannelLike | null | undefined;
  /** Releases the lock that says which token this tab holds. */
  let release = () => {};
  /** The seq of the token this tab holds, as in its lock's name. */
  let held = "";
  if (on) {
    try {
      // Without BroadcastChannel (ReferenceError) or when it is refused: no channel.
      const ch = (o.channel !== undefined ? o.channel : (n: string) => new BroadcastChannel(n))?.(name);
      if (ch) {
        (ch as { unref?: () => void }).unref?.();
        ch.onmessage = (ev) => onMessage(ev.data);
        channel = ch;
      }
    } catch {}
  }

  const tabs: Tabs = {
    post(m) {
      channel?.postMessage(m);
    },
    exclusive: (fn) => (locks ? locks.request("tokend-refresh:" + name, fn) : fn()),
    async hold(h) {
      const t = h ? String(h.seq) : "";
      if (t === held) return;
      held = t;
      release();
      // Released when the next hold begins, even if that comes before this one is granted.
      const gone = new Promise<void>((r) => (release = r));
      if (locks && t) await new Promise<void>((ok) => void locks.request(holds + t, { mode: "shared" }, () => (ok(), gone)));
    },
    async newer(h) {
      const all = (await locks?.query?.())?.held ?? [];
      return all.some((l) => l.name?.startsWith(holds) && +l.name.slice(holds.length) > h.seq);
    },
    close() {
      tabs.hold(null);
      channel?.close();
      channel = null;
    },
  };
  return tabs;
}

/** How long a tab that found newer tokens in another tab waits for them to arrive before it gives up (and retries later). */
const ADOPT_WAIT_MS = 5_000;

/**
 * Before a tab spends the refresh token of the token it holds (held()): if
 * another tab holds a later one (this tab missed its broadcasts: frozen,
 * throttled, restored, or the message is on its way), asks the tabs to send
 * their tokens and waits until m adopts another token. Spending the held
 * refresh token would be reuse, which ends the family in every tab (RFC 9700
 * §4.14.2). Rejects with an OAuthError, spending nothing, if none comes
 * within ADOPT_WAIT_MS (that tab is asleep too): the refresh is retried.
 */
export async function catchUp(tabs: Tabs, m: { onToken(listener: (token: string) => void): () => void }, held: () => Held | null): Promise<void> {
  const h = held();
  if (!h || !(await tabs.newer(h)) || held() !== h) return;
  tabs.post({ type: "resend" });
  const old = h.access_token;
  let off = () => {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  const came = await new Promise<boolean>((resolve) => {
    off = m.onToken((t) => t !== old && resolve(true));
    timer = setTimeout(resolve, ADOPT_WAIT_MS, false);
  });
  off();
  clearTimeout(timer);
  if (!came) throw new OAuthError("tokend: newer tokens in another tab");
}
