export {
  TokenManager,
  MissingRefreshTokenError,
  OAuthError,
  ReauthRequiredError,
  TokenRefreshError,
  isTokenChallenge,
  BACKOFF_BASE_MS,
  BACKOFF_CAP_MS,
  UNANSWERED_CAP_MS,
  FETCH_TIMEOUT_MS,
  type TokenResponse,
  type TokenManagerOptions,
  type LockManagerLike,
  type BroadcastChannelLike,
  type StorageLike,
} from "./manager.js";
export {
  tokenSocket,
  SOCKET_BACKOFF_BASE_MS,
  SOCKET_BACKOFF_CAP_MS,
  SOCKET_STABLE_MS,
  SOCKET_PING_INTERVAL_MS,
  SOCKET_PONG_TIMEOUT_MS,
  type TokenSocket,
  type TokenSocketOptions,
  type WebSocketLike,
  type WebSocketConstructor,
  type SocketData,
} from "./socket.js";
export { jwtClaims, jwtExpiry } from "./jwt.js";
export type { OAuthErrorInit } from "./errors.js";
