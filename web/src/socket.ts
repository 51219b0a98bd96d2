import { ReauthRequiredError, type TokenManager } from "./manager.js";

/** What a socket can send (as WebSocket.send). */
export type SocketData = string | ArrayBufferLike | Blob | ArrayBufferView;

/** The part of the browser WebSocket the token socket uses. */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType?: string;
  send(data: SocketData): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
}

export type WebSocketConstructor = new (url: string | URL, protocols?: string | string[]) => WebSocketLike;

export interface TokenSocketOptions {
  /** Default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /**
   * Sends held: queued while disconnected plus sent and not yet confirmed by
   * a tokend.pong; default 1024. A send beyond it throws.
   */
  maxQueue?: number;
  /** Passed to every underlying WebSocket. */
  binaryType?: "blob" | "arraybuffer";
  /** Test hook: uniform in [0, 1), for backoff jitter (default Math.random). */
  random?: () => number;
}

/**
 * A WebSocket that stays connected with fresh tokens. Callbacks: onopen and
 * onclose fire for every underlying connection (so an app can show
 * "reconnecting"), onmessage for every application message (tokend.*
 * control messages are hidden), onerror for the underlying errors,
 * onundelivered for sends that may not have arrived.
 *
 * Liveness (README "WebSocket"): {"type":"tokend.ping"} on open, 25 s after
 * each pong, after a renewal, and when half of maxQueue is unconfirmed; a
 * pong confirms what was sent before its ping. Once the server has answered
 * one, a ping unanswered for 10 s ends the connection as dead (onclose
 * { code: 4000 }, onundelivered, a reconnect): at most 35 s after the last pong.
 */
export interface TokenSocket {
  /** Sends now if connected, else queues (ordered, bounded by maxQueue); throws when that is full or the socket is closed. */
  send(data: SocketData): void;
  /** Closes for good: no reconnect; queued sends are dropped. */
  close(code?: number, reason?: string): void;
  /** Whether an underlying connection is open and sending. */
  readonly connected: boolean;
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
  /**
   * After onclose of a connection that ended (not by close()) with sends no
   * pong confirmed: those, in order. They may or may not have arrived; they
   * are never sent again. Tracked once the server has answered a ping.
   */
  onundelivered: ((data: SocketData[]) => void) | null;
}

/** Close codes after which the socket refreshes the token and reconnects at once. */
const TOKEN_CLOSES = [4001, 1008];
export const SOCKET_BACKOFF_BASE_MS = 250;
export const SOCKET_BACKOFF_CAP_MS = 30_000;
/** A connection resets the failure count only after it stayed open this long. */
export const SOCKET_STABLE_MS = 5_000;
/** A connection is pinged this long after the server's last pong (and when it opens). */
export const SOCKET_PING_INTERVAL_MS = 25_000;
/** A ping unanswered this long, once the server has answered one, ends the connection: dead path. */
export const SOCKET_PONG_TIMEOUT_MS = 10_000;
type Timer = ReturnType<typeof setTimeout> | undefined;

/** Opens a WebSocket to url that authenticates with manager's tokens and stays connected; see TokenSocket. */
export function tokenSocket(url: string | URL, manager: TokenManager, opts: TokenSocketOptions = {}): TokenSocket {
  let ws: WebSocketLike | null | undefined;
  /** The token the server holds for the current connection. */
  let token: string | undefined;
  let renewing: string | undefined;
  let queue: SocketData[] = [];
  /** Sent on this connection, not yet confirmed by a pong (tracked once seen). */
  let sent: SocketData[] = [];
  /** How many of sent the outstanding ping confirms; -1: no ping outstanding. */
  let mark = -1;
  /** The server has answered a ping. */
  let seen: boolean | undefined;
  let open = false;
  let closed: boolean | undefined;
  let failures = 0;
  /** A token close was answered with an immediate reconnect since the last stable connection. */
  let quickUsed: boolean | undefined;
  let ownTokenClose: boolean | undefined;
  /** While connected, the end of SOCKET_STABLE_MS; while disconnected, the reconnect's backoff. */
  let timer: Timer;
  let ping: Timer;

  const s: TokenSocket = {
    onopen: null,
    onmessage: null,
    onclose: null,
    onerror: null,
    onundelivered: null,

    get connected() {
      return open;
    },

    send(data: SocketData): void {
      if (closed) throw new Error("tokenSocket: closed");
      const max = opts.maxQueue ?? 1024;
      if (queue.length + sent.length >= max) throw new Error("tokenSocket: send queue full");
      if (!open || queue.length) return void queue.push(data);
      ws!.send(data);
      // With half of maxQueue unconfirmed, ping at once rather than wait for the interval.
      if (seen && sent.push(data) * 2 >= max && mark < 0) beat();
    },

    close(code = 1000, reason?: string): void {
      if (closed) return;
      closed = true;
      open = false;
      queue = sent = [];
      clearTimeout(timer);
      clearTimeout(ping);
      unsub();
      ws?.close(code, reason);
    },
  };

  async function connect(): Promise<void> {
    let t: string;
    try {
      t = await manager.getAccessToken();
    } catch (e) {
      return e instanceof ReauthRequiredError ? s.close() : later();
    }
    if (closed) return;
    let w: WebSocketLike;
    try {
      w = new (opts.WebSocket ?? WebSocket)(url, ["tokend", "tokend.bearer." + t]);
    } catch {
      return later();
    }
    ws = w;
    token = t;
    renewing = "";
    ownTokenClose = false;
    if (opts.binaryType) w.binaryType = opts.binaryType;
    /** h, for the events of this connection only (not those of one replaced since). */
    const mine =
      <E>(h: (ev: E) => void) =>
      (ev: E) =>
        w === ws && h(ev);
    w.onopen = mine((ev) => {
      open = true;
      timer = setTimeout(() => {
        failures = 0;
        quickUsed = false;
      }, SOCKET_STABLE_MS);
      // The ping first: the sends below are confirmed by a later one.
      beat();
      for (const d of queue.splice(0)) s.send(d);
      s.onopen?.(ev);
      manager.getAccessToken().then(renew, () => {});
    });
    w.onmessage = mine((ev) => control(ev.data) || s.onmessage?.(ev));
    w.onerror = mine((ev) => s.onerror?.(ev));
    w.onclose = mine((ev) => {
      ws = null;
      open = false;
      clearTimeout(timer);
      clearTimeout(ping);
      s.onclose?.(ev);
      const u = sent.splice(0);
      if (u.length) s.onundelivered?.(u);
      if (closed) return;
      if (!ownTokenClose && !TOKEN_CLOSES.includes(ev.code)) return later();
      manager.refresh(token).then(
        () => {
          if (quickUsed) return later();
          quickUsed = true;
          void connect();
        },
        (e: unknown) => (e instanceof ReauthRequiredError ? s.close() : later()),
      );
    });
  }

  /** Reconnect after a backoff: SOCKET_BACKOFF_BASE_MS doubling to the cap, equal jitter. */
  function later(): void {
    if (closed) return;
    const d = Math.min(SOCKET_BACKOFF_CAP_MS, SOCKET_BACKOFF_BASE_MS * 2 ** failures++);
    timer = setTimeout(() => void connect(), (d * (1 + (opts.random ?? Math.random)())) / 2);
  }

  function renew(t: string): void {
    // Open, there is a connection.
    if (!open || t === token || t === renewing) return;
    renewing = t;
    ws!.send(JSON.stringify({ type: "tokend.renew", token: t }));
    // The pong to a ping after it answers for the renewal too.
    if (mark < 0) beat();
  }

  /**
   * Pings; once seen, no pong within 10 s ends the connection (onclose at
   * once: a dead path never completes the browser's closing handshake).
   */
  function beat(): void {
    const w = ws!;
    clearTimeout(ping);
    w.send('{"type":"tokend.ping"}');
    mark = sent.length;
    if (seen)
      ping = setTimeout(() => {
        w.onclose!({ code: 4000 } as CloseEvent);
        w.close(4000);
      }, SOCKET_PONG_TIMEOUT_MS);
  }

  /** Handles a tokend.* control message; false for application messages. */
  function control(data: unknown): boolean {
    let type: unknown;
    try {
      type = typeof data == "string" && data.includes('"tokend.') && JSON.parse(data).type;
    } catch {}
    if (!/^tokend\./.test(type as string)) return false;
    if (type === "tokend.renewed") {
      if (renewing) token = renewing;
      renewing = "";
    } else if (type === "tokend.pong" || (type === "tokend.renew_failed" && !renewing)) {
      // Servers before tokend.pong answer a ping with renew_failed ("unknown control message").
      seen = true;
      sent.splice(0, mark);
      mark = -1;
      clearTimeout(ping);
      ping = setTimeout(beat, SOCKET_PING_INTERVAL_MS);
    } else if (type === "tokend.renew_failed" || type === "tokend.expiring") {
      // Stop sending (later sends queue), close for the token, reconnect with a fresh one.
      open = false;
      ownTokenClose = true;
      renewing = "";
      ws!.close(4001, "token"); // a message of the current connection
    }
    return true;
  }

  const unsub = manager.onToken(renew);
  void connect();
  return s;
}
