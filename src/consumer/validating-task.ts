// A consumer's task behind a schema: each body is parsed and validated before the task runs.
import { isThenable } from '../util/thenable.js'
import { type Message, MessageStatus } from './message.js'
import type { TaskFunction } from './options.js'
import {
  type InvalidMessageInfo,
  type InvalidMessageIssue,
  notJsonIssues,
  type StandardSchemaResult,
  type StandardSchemaV1,
  toIssues,
  validatorThrewIssues,
} from './schema.js'

/** Told of a message refused before its task, with why. */
export type OnInvalid = (
  message: Message,
  reason: InvalidMessageInfo['reason'],
  issues: readonly InvalidMessageIssue[],
) => void

/**
 * @internal The task behind a schema: the body is parsed and validated first; a message that fails is
 * rejected without requeue (FAIL_DO_NOT_RETRY) and reported, and `task` is not called.
 */
export function validatingTask(
  schema: StandardSchemaV1,
  task: TaskFunction,
  onInvalid: OnInvalid,
): TaskFunction {
  const validate = schema['~standard'].validate
  const settle = (message: Message, result: StandardSchemaResult<unknown>) => {
    if (result.issues !== undefined) {
      const issues = toIssues(result.issues)
      onInvalid(message, 'invalid', issues)
      message.setFailureReason(`invalid message: the schema found ${issues.length} issue(s)`, 'none')
      return MessageStatus.FAIL_DO_NOT_RETRY
    }
    message.setData(result.value)
    return task(message)
  }
  return (message) => {
    let value: unknown
    try {
      value = message.json()
    } catch {
      onInvalid(message, 'unparsable', notJsonIssues)
      message.setFailureReason('invalid message: the body is not JSON', 'none')
      return MessageStatus.FAIL_DO_NOT_RETRY
    }
    // A validator runs on untrusted input: one that throws on it would throw again on every
    // redelivery, so the message is refused like an invalid one (and its error, which may quote
    // the value, is never logged).
    const refuse = (): MessageStatus => {
      onInvalid(message, 'invalid', validatorThrewIssues)
      message.setFailureReason('invalid message: the validator threw', 'none')
      return MessageStatus.FAIL_DO_NOT_RETRY
    }
    let result: ReturnType<typeof validate>
    try {
      result = validate(value)
    } catch {
      return refuse()
    }
    return isThenable(result)
      ? Promise.resolve(result).then((r) => settle(message, r as StandardSchemaResult<unknown>), refuse)
      : settle(message, result)
  }
}
