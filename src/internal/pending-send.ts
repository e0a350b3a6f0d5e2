import type { AmqpOptions } from '../amqp.ts'
import type { LapinError, UnroutableError } from '../errors.ts'
import type { PublishCallbacks } from '../publish-options.ts'
import type { Logger } from './logger.ts'

/** One send on its way: its message, deadline, and how to settle it. */
export interface PendingSend {
  readonly exchange: string
  readonly routingKey: string
  readonly body: Buffer
  readonly options: AmqpOptions.Publish
  /** `Date.now()` value past which the send fails with a timeout. */
  readonly deadline: number
  readonly callbacks: PublishCallbacks | undefined
  readonly resolve: () => void
  readonly reject: (error: LapinError) => void
  /** Set by `basic.return`; the send rejects with it when its confirm arrives. */
  returned: UnroutableError | undefined
  /** Published at least once (it may then have been put back to be republished after a drop). */
  sent: boolean
  done: boolean
}

const noop = (): void => {}

/** Creates a send and its promise; the promise is pre-handled, so an unawaited failure is never unhandled. */
export function createPendingSend(
  fields: Pick<PendingSend, 'exchange' | 'routingKey' | 'body' | 'options' | 'deadline' | 'callbacks'>,
): [PendingSend, Promise<void>] {
  let resolve: () => void = noop
  let reject: (error: LapinError) => void = noop
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(noop)
  return [{ ...fields, resolve, reject, returned: undefined, sent: false, done: false }, promise]
}

/** Settles a send exactly once: promise first, then its callback (a throwing callback is logged, not spread). */
export function settleSend(pending: PendingSend, error: LapinError | undefined, logger: Logger): void {
  if (pending.done) return
  pending.done = true
  const cb = pending.callbacks
  try {
    if (error) {
      pending.reject(error)
      cb?.nackCallback?.(error)
    } else {
      pending.resolve()
      cb?.ackCallback?.()
    }
  } catch (err) {
    logger.error({ err: (err as Error)?.message }, 'lapinmq: a publish callback threw')
  }
}
