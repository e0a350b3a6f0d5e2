import type { EventEmitter } from 'node:events'
import type { LapinError } from '../errors.ts'
import type { Logger } from './logger.ts'

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
 * listener that throws does not abort that work; its error is thrown again on its own tick, as it
 * would be from any event emitter outside such work.
 */
export function emitSafely(emitter: EventEmitter, event: string, ...args: unknown[]): void {
  try {
    emitter.emit(event, ...args)
  } catch (err) {
    process.nextTick(() => {
      throw err
    })
  }
}
