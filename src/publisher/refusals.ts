// Which sends a channel error refused. The broker closes the publishing channel when it refuses a
// publish (a missing exchange, an internal one, a body over its size limit, a user id that is not
// the login's). The send it refused must fail with the broker's reason: republished, it would
// close every channel it went out on until its deadline. The error names what it refused; every
// other unconfirmed send on the channel is only in doubt.
import { LapinError } from '../errors.ts'
import type { PendingSend } from './pending-send.ts'

/** What a channel error refused: the sends it matches fail with `error`. */
export interface Refusal {
  /** The exchange named in a 404 (deleted since it was checked), to check again before the next send. */
  readonly missingExchange: string | undefined
  /** At most `limit` sends match, oldest first (one for a body size: other sends may be as large). */
  readonly limit: number
  readonly error: LapinError
  matches(pending: PendingSend): boolean
}

/** The refusal `error` (the channel's close) describes, if it names what it refused. */
export function refusalOf(error: LapinError | undefined): Refusal | undefined {
  const text = error?.replyText
  if (!error || text === undefined) return undefined
  const exchange = /exchange '((?:[^']|'(?! in vhost))*)' in vhost/.exec(text)?.[1]
  if ((error.replyCode === 404 || error.replyCode === 403) && exchange !== undefined) {
    return {
      missingExchange: error.replyCode === 404 ? exchange : undefined,
      limit: Number.POSITIVE_INFINITY,
      error,
      matches: (pending) => pending.exchange === exchange,
    }
  }
  if (error.replyCode !== 406) return undefined
  const size = /message size (\d+) is larger than/.exec(text)?.[1]
  if (size !== undefined) {
    const tooLarge = new LapinError('MESSAGE_TOO_LARGE', error.message, {
      replyCode: error.replyCode,
      replyText: text,
      cause: error,
    })
    return {
      missingExchange: undefined,
      limit: 1,
      error: tooLarge,
      matches: (pending) => pending.body.length === Number(size),
    }
  }
  const userId = /user_id property set to '((?:[^']|'(?! but))*)' but/.exec(text)?.[1]
  if (userId !== undefined) {
    return {
      missingExchange: undefined,
      limit: Number.POSITIVE_INFINITY,
      error,
      matches: (pending) => pending.options.userId === userId,
    }
  }
  return undefined
}
