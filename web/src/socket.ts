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
  /** Sends held while disconnected; default 1024. A send beyond it throws. */
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
 * control messages are hidden), onerror for the underlying errors.
 */
export interface TokenSocket {
  /** Sends now if connected, else queues (ordered, bounded); throws when the queue is full or the socket is closed. */
  send(data: SocketData): void;
  /** Closes for good: no reconnect; queued sends are dropped. */
  close(code?: number, reason?: string): void;
  /** Whether an underlying connection is open and sending. */
  readonly connected: boolean;
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
}

/** Close codes after which the socket refreshes the token and reconnects at once. */
const TOKEN_CLOSES = [4001, 1008];
export const SOCKET_BACKOFF_BASE_MS = 250;
export const SOCKET_BACKOFF_CAP_MS = 30_000;
/** A connection resets the failure count only after it stayed open this long. */
export const SOCKET_STABLE_MS = 5_000;

class Socket implements TokenSocket {
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  readonly #url: string | URL;
  readonly #m: TokenManager;
  readonly #o: TokenSocketOptions;
  #ws: WebSocketLike | null = null;
  /** The token the server holds for the current connection. */
  #token = "";
  #renewing = "";
  #queue: SocketData[] = [];
  #open = false;
  #closed = false;
  #failures = 0;
  /** A token close was answered with an immediate reconnect since the last stable connection. */
  #quickUsed = false;
  #ownTokenClose = false;
  #stable: ReturnType<typeof setTimeout> | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
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
    if (this.#open && this.#ws && this.#queue.length === 0) return this.#ws.send(data);
    if (this.#queue.length >= (this.#o.maxQueue ?? 1024)) throw new Error("tokenSocket: send queue full");
    this.#queue.push(data);
  }

  close(code = 1000, reason?: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#open = false;
    this.#queue = [];
    clearTimeout(this.#retry);
    clearTimeout(this.#stable);
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
    const Ctor = this.#o.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketConstructor);
    let ws: WebSocketLike;
    try {
      ws = new Ctor(this.#url, ["tokend", "tokend.bearer." + token]);
    } catch {
      return this.#later();
    }
    this.#ws = ws;
    this.#token = token;
    this.#renewing = "";
    this.#ownTokenClose = false;
    if (this.#o.binaryType) ws.binaryType = this.#o.binaryType;
    ws.onopen = (ev) => {
      if (ws !== this.#ws) return;
      this.#open = true;
      this.#stable = setTimeout(() => {
        this.#failures = 0;
        this.#quickUsed = false;
      }, SOCKET_STABLE_MS);
      while (this.#open && this.#queue.length) ws.send(this.#queue.shift()!);
      this.onopen?.(ev);
      this.#m.getAccessToken().then((t) => this.#renew(t), () => {});
    };
    ws.onmessage = (ev) => {
      if (ws === this.#ws && !this.#control(ev.data)) this.onmessage?.(ev);
    };
    ws.onerror = (ev) => {
      if (ws === this.#ws) this.onerror?.(ev);
    };
    ws.onclose = (ev) => {
      if (ws !== this.#ws) return;
      this.#ws = null;
      this.#open = false;
      clearTimeout(this.#stable);
      this.onclose?.(ev);
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
    };
  }

  /** Reconnect after a backoff: SOCKET_BACKOFF_BASE_MS doubling to the cap, equal jitter. */
  #later(): void {
    if (this.#closed) return;
    const d = Math.min(SOCKET_BACKOFF_CAP_MS, SOCKET_BACKOFF_BASE_MS * 2 ** this.#failures++);
    this.#retry = setTimeout(() => void this.#connect(), d / 2 + (this.#o.random ?? Math.random)() * (d / 2));
  }

  #renew(token: string): void {
    const ws = this.#ws;
    if (!this.#open || !ws || token === this.#token || token === this.#renewing) return;
    this.#renewing = token;
    ws.send(JSON.stringify({ type: "tokend.renew", token }));
  }

  /** Handles a tokend.* control message; false for application messages. */
  #control(data: unknown): boolean {
    if (typeof data !== "string" || !data.includes('"tokend.')) return false;
    let type: unknown;
    try {
      type = JSON.parse(data)?.type;
    } catch {
      return false;
    }
    if (typeof type !== "string" || !type.startsWith("tokend.")) return false;
    if (type === "tokend.renewed") {
      if (this.#renewing) this.#token = this.#renewing;
      this.#renewing = "";
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
