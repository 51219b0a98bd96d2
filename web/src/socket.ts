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

class Socket implements TokenSocket {
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  onundelivered: ((data: SocketData[]) => void) | null = null;
  readonly #url: string | URL;
  readonly #m: TokenManager;
  readonly #o: TokenSocketOptions;
  #ws?: WebSocketLike | null;
  /** The token the server holds for the current connection. */
  #token?: string;
  #renewing?: string;
  #queue: SocketData[] = [];
  /** Sent on this connection, not yet confirmed by a pong (tracked once #seen). */
  #sent: SocketData[] = [];
  /** How many of #sent the outstanding ping confirms; -1: no ping outstanding. */
  #mark = -1;
  /** The server has answered a ping. */
  #seen?: boolean;
  #open = false;
  #closed?: boolean;
  #failures = 0;
  /** A token close was answered with an immediate reconnect since the last stable connection. */
  #quickUsed?: boolean;
  #ownTokenClose?: boolean;
  /** While connected, the end of SOCKET_STABLE_MS; while disconnected, the reconnect's backoff. */
  #timer: Timer;
  #ping: Timer;
  #unsub: () => void;

  constructor(url: string | URL, manager: TokenManager, opts: TokenSocketOptions) {
    this.#url = url;
    this.#m = manager;
    this.#o = opts;
    this.#unsub = manager.onToken((t) => this.#renew(t));
    void this.#connect();
  }

  get connected(): boolean {
    return this.#open;
  }

  send(data: SocketData): void {
    if (this.#closed) throw new Error("tokenSocket: closed");
    const max = this.#o.maxQueue ?? 1024;
    if (this.#queue.length + this.#sent.length >= max) throw new Error("tokenSocket: send queue full");
    if (!this.#open || this.#queue.length) return void this.#queue.push(data);
    this.#ws!.send(data);
    // With half of maxQueue unconfirmed, ping at once rather than wait for the interval.
    if (this.#seen && this.#sent.push(data) * 2 >= max && this.#mark < 0) this.#beat();
  }

  close(code = 1000, reason?: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#open = false;
    this.#queue = this.#sent = [];
    clearTimeout(this.#timer);
    clearTimeout(this.#ping);
    this.#unsub();
    this.#ws?.close(code, reason);
  }

  async #connect(): Promise<void> {
    let token: string;
    try {
      token = await this.#m.getAccessToken();
    } catch (e) {
      return e instanceof ReauthRequiredError ? this.close() : this.#later();
    }
    if (this.#closed) return;
    let ws: WebSocketLike;
    try {
      ws = new (this.#o.WebSocket ?? WebSocket)(this.#url, ["tokend", "tokend.bearer." + token]);
    } catch {
      return this.#later();
    }
    this.#ws = ws;
    this.#token = token;
    this.#renewing = "";
    this.#ownTokenClose = false;
    if (this.#o.binaryType) ws.binaryType = this.#o.binaryType;
    /** h, for the events of this connection only (not those of one replaced since). */
    const mine =
      <E>(h: (ev: E) => void) =>
      (ev: E) =>
        ws === this.#ws && h(ev);
    ws.onopen = mine((ev) => {
      this.#open = true;
      this.#timer = setTimeout(() => {
        this.#failures = 0;
        this.#quickUsed = false;
      }, SOCKET_STABLE_MS);
      // The ping first: the sends below are confirmed by a later one.
      this.#beat();
      for (const d of this.#queue.splice(0)) this.send(d);
      this.onopen?.(ev);
      this.#m.getAccessToken().then((t) => this.#renew(t), () => {});
    });
    ws.onmessage = mine((ev) => this.#control(ev.data) || this.onmessage?.(ev));
    ws.onerror = mine((ev) => this.onerror?.(ev));
    ws.onclose = mine((ev) => {
      this.#ws = null;
      this.#open = false;
      clearTimeout(this.#timer);
      clearTimeout(this.#ping);
      this.onclose?.(ev);
      const u = this.#sent.splice(0);
      if (u.length) this.onundelivered?.(u);
      if (this.#closed) return;
      if (!this.#ownTokenClose && !TOKEN_CLOSES.includes(ev.code)) return this.#later();
      this.#m.refresh(this.#token).then(
        () => {
          if (this.#quickUsed) return this.#later();
          this.#quickUsed = true;
          void this.#connect();
        },
        (e: unknown) => (e instanceof ReauthRequiredError ? this.close() : this.#later()),
      );
    });
  }

  /** Reconnect after a backoff: SOCKET_BACKOFF_BASE_MS doubling to the cap, equal jitter. */
  #later(): void {
    if (this.#closed) return;
    const d = Math.min(SOCKET_BACKOFF_CAP_MS, SOCKET_BACKOFF_BASE_MS * 2 ** this.#failures++);
    this.#timer = setTimeout(() => void this.#connect(), (d * (1 + (this.#o.random ?? Math.random)())) / 2);
  }

  #renew(token: string): void {
    const ws = this.#ws;
    if (!this.#open || !ws || token === this.#token || token === this.#renewing) return;
    this.#renewing = token;
    ws.send(JSON.stringify({ type: "tokend.renew", token }));
    // The pong to a ping after it answers for the renewal too.
    if (this.#mark < 0) this.#beat();
  }

  /**
   * Pings; once #seen, no pong within 10 s ends the connection (onclose at
   * once: a dead path never completes the browser's closing handshake).
   */
  #beat(): void {
    const ws = this.#ws!;
    clearTimeout(this.#ping);
    ws.send('{"type":"tokend.ping"}');
    this.#mark = this.#sent.length;
    if (this.#seen)
      this.#ping = setTimeout(() => {
        ws.onclose!({ code: 4000 } as CloseEvent);
        ws.close(4000);
      }, SOCKET_PONG_TIMEOUT_MS);
  }

  /** Handles a tokend.* control message; false for application messages. */
  #control(data: unknown): boolean {
    let type: unknown;
    try {
      type = typeof data == "string" && data.includes('"tokend.') && JSON.parse(data).type;
    } catch {}
    if (!/^tokend\./.test(type as string)) return false;
    if (type === "tokend.renewed") {
      if (this.#renewing) this.#token = this.#renewing;
      this.#renewing = "";
    } else if (type === "tokend.pong" || (type === "tokend.renew_failed" && !this.#renewing)) {
      // Servers before tokend.pong answer a ping with renew_failed ("unknown control message").
      this.#seen = true;
      this.#sent.splice(0, this.#mark);
      this.#mark = -1;
      clearTimeout(this.#ping);
      this.#ping = setTimeout(() => this.#beat(), SOCKET_PING_INTERVAL_MS);
    } else if (type === "tokend.renew_failed" || type === "tokend.expiring") {
      // Stop sending (later sends queue), close for the token, reconnect with a fresh one.
      this.#open = false;
      this.#ownTokenClose = true;
      this.#renewing = "";
      this.#ws?.close(4001, "token");
    }
    return true;
  }
}

/** Opens a WebSocket to url that authenticates with manager's tokens and stays connected; see TokenSocket. */
export function tokenSocket(url: string | URL, manager: TokenManager, opts: TokenSocketOptions = {}): TokenSocket {
  return new Socket(url, manager, opts);
}
