import type { EventEmitter } from 'node:events'
import type { LapinError } from '../errors.ts'
import type { Logger } from './logger.ts'

/**
 * Emits `error` only when someone listens, so an error never crashes the process; otherwise it
 * goes to the logger (which is silent unless one was given).
 */
export function emitError(emitter: EventEmitter, logger: Logger, error: LapinError): void {
  if (emitter.listenerCount('error') > 0) emitter.emit('error', error)
  else logger.error({ code: error.code, err: error.message }, 'lapinmq error (no error listener)')
}
