// Which sends a channel error refused. The broker closes the publishing channel when it refuses a
// publish (a missing exchange, an internal one, a body over its size limit, a user id that is not
// the login's). The send it refused must fail with the broker's reason: republished, it would
// close every channel it went out on until its deadline. The error names what it refused; every
// other unconfirmed send on the channel is only in doubt. AMQP cuts a reply text at 255 bytes
// (RabbitMQ ends it with '...'): a name cut short is matched by its beginning.
import { LapinError } from '../errors.js'
import type { PendingSend } from './pending-send.js'

/** What a refusal is matched on: a send's, or an RPC request's, exchange, body and options. */
export type Refused = Pick<PendingSend, 'exchange' | 'body' | 'options'>

/** What a channel error refused: the sends it matches fail with `error`. */
export interface Refusal {
  /** 404: the exchange is gone (deleted since it was checked); 403: the exchange takes no publish. */
  readonly exchange: { readonly missing: boolean } | undefined
  /** At most `limit` sends match, oldest first (one for a body size: other sends may be as large). */
  readonly limit: number
  readonly error: LapinError
  matches(pending: Refused): boolean
}

/** The refusal `error` (the channel's close) describes, if it names what it refused. */
export function refusalOf(error: LapinError | undefined): Refusal | undefined {
  const text = error?.replyText
  if (!error || text === undefined) return undefined
  if (error.replyCode === 404 || error.replyCode === 403) {
    const exchange = quoted(text, /exchange '/, "' in vhost")
    if (exchange === undefined) return undefined
    return {
      exchange: { missing: error.replyCode === 404 },
      limit: Number.POSITIVE_INFINITY,
      error,
      matches: (pending) => exchange(pending.exchange),
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
      exchange: undefined,
      limit: 1,
      error: tooLarge,
      matches: (pending) => pending.body.length === Number(size),
    }
  }
  const userId = quoted(text, /user_id property set to '/, "' but")
  if (userId === undefined) return undefined
  return {
    exchange: undefined,
    limit: Number.POSITIVE_INFINITY,
    error,
    matches: (pending) => pending.options.userId !== undefined && userId(pending.options.userId),
  }
}

/**
 * A test for the name quoted in `text` after `before` and up to `after`; when the text was cut
 * ('...' at its end, no `after`), for a name that begins with what is left of it.
 */
function quoted(text: string, before: RegExp, after: string): ((name: string) => boolean) | undefined {
  const start = before.exec(text)
  if (!start) return undefined
  // amqplib's message quotes the broker's text: "... with message \"ACCESS_REFUSED - ...\"".
  const rest = text.slice(start.index + start[0].length).replace(/"$/, '')
  const end = rest.lastIndexOf(after)
  if (end >= 0) {
    const name = rest.slice(0, end)
    return (candidate) => candidate === name
  }
  if (!rest.endsWith('...')) return undefined
  const prefix = rest.slice(0, -3)
  return (candidate) => candidate.startsWith(prefix)
}
