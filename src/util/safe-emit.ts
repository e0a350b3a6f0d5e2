import type { EventEmitter } from 'node:events'
import type { LapinError } from '../errors.js'
import type { Logger } from './logger.js'

/**
 * Emits `error` only when someone listens, so an error never crashes the process; otherwise it
 * goes to the logger (which is silent unless one was given).
 */
export function emitError(emitter: EventEmitter, logger: Logger, error: LapinError): void {
  if (emitter.listenerCount('error') > 0) emitSafely(emitter, 'error', error)
  else logger.error({ code: error.code, err: error.message }, 'lapinmq error (no error listener)')
}

/**
 * Emits an event from inside lapinmq's own work (a stop, a recovery, amqplib's frame handling): a
 * listener that throws does not abort that work (see {@link throwLater}).
 */
export function emitSafely(emitter: EventEmitter, event: string, ...args: unknown[]): void {
  try {
    emitter.emit(event, ...args)
  } catch (err) {
    throwLater(err)
  }
}

/**
 * Throws an error of user code (a listener, a handler) again on its own tick, as any event emitter
 * would, instead of inside lapinmq's work or amqplib's frame handling (where it would close the
 * channel without telling lapinmq first).
 */
export function throwLater(err: unknown): void {
  process.nextTick(() => {
    throw err
  })
}
