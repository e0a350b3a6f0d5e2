// What a consumer does with a task's outcome: the status decides the settle; a throw, a rejected
// promise or anything that is not a MessageStatus means "retry later" (logged).
import { type Message, MessageStatus } from '../message.ts'
import { type Logger, warnSafely } from './logger.ts'

/** A task threw or its promise rejected: logged, and the message is retried later. */
export function taskFailed(message: Message, err: unknown, logger: Logger): MessageStatus {
  const fields = { err: (err as Error)?.message, deliveryTag: message.deliveryTag }
  warnSafely(logger, fields, 'lapinmq: task failed')
  return MessageStatus.FAIL_RETRY_LATER
}

/** Settles `message` as `status` says; HANDLED_VIA_CALLBACK leaves it to the task's callbacks. */
export function settleByStatus(message: Message, status: unknown, logger: Logger): void {
  if (status === MessageStatus.SUCCESS) message.ack()
  else if (status === MessageStatus.HANDLED_VIA_CALLBACK) return
  else if (status === MessageStatus.FAIL_DO_NOT_RETRY) message.reject()
  else {
    if (status !== MessageStatus.FAIL_RETRY_LATER) {
      const text = 'lapinmq: task returned no MessageStatus; retrying later'
      warnSafely(logger, { status: String(status) }, text)
    }
    message.rejectRetry()
  }
}
