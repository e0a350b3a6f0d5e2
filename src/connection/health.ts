import type { LapinError, LapinErrorCode } from '../errors.js'
import type { ConnectionState } from './connection.js'

/**
 * How a connection is doing, for readiness and liveness probes (see {@link Connection.health}).
 * Plain data: `JSON.stringify` shows all of it, and none of it holds a password.
 */
export interface ConnectionHealth {
  /** The connection's state. */
  state: ConnectionState
  /**
   * True when the connection can do its work now: `state` is `'open'` (not blocked, not
   * reconnecting, not closed), and the broker was heard from within the last half heartbeat and a
   * quarter. A frozen broker makes it false within one heartbeat interval, before the connection
   * itself gives up on the broker; it is true again once the broker is heard from (or the connection
   * recovered). False while blocked: the broker blocks only connections that publish, and their
   * publishes wait until it lifts the block.
   */
  ready: boolean
  /** The broker blocked publishing on this connection (a resource alarm): `state` is `'blocked'`. */
  blocked: boolean
  /** When the current state began, in ms since epoch. */
  since: number
  /** The last error the connection met (a lost connection, a failed connect attempt); undefined if none yet. */
  lastError: HealthError | undefined
}

/** An error as {@link ConnectionHealth} reports it. */
export interface HealthError {
  /** The error's stable code (see {@link LapinError.code}). */
  code: LapinErrorCode
  /** Its message (never a password). */
  message: string
  /** When it happened, in ms since epoch. */
  at: number
}

/** How a pool is doing (see {@link ConnectionPool.health}). */
export interface ConnectionPoolHealth {
  /** True when every connection of the pool is ready: each publisher and consumer stays on its own. */
  ready: boolean
  /** Each connection's health, in the order of {@link ConnectionPool.connections}. */
  connections: ConnectionHealth[]
}

/**
 * @internal How long the broker may be silent before a connection is not ready, in heartbeats: it
 * sends at least a heartbeat every half heartbeat, so a quarter more is late.
 */
export const silenceLimit = 0.75

/** @internal The error as health() reports it. */
export function healthError(error: LapinError, at = Date.now()): HealthError {
  return { code: error.code, message: error.message, at }
}

/**
 * @internal Whether a channel closed with its connection (no error of its own, and the connection
 * no longer open): the connection logs that loss, so the channel's own line is only `info`. A
 * channel closed on an open connection (a broker error, a cancel) is worth a warning.
 */
export function closedWithConnection(
  error: LapinError | undefined,
  connection: { readonly state: ConnectionState } | undefined,
): boolean {
  return (
    error === undefined &&
    connection !== undefined &&
    connection.state !== 'open' &&
    connection.state !== 'blocked'
  )
}
