// The flags that say where a message goes (a queue, or --exchange and --routing-key) and what it
// carries (headers and properties), shared by `lapinmq publish` and `lapinmq call`.
import { type Command, InvalidArgumentError } from 'commander'
import type { SendOptions } from '../index.js'
import { intFlag, quote } from './common.js'
import { UsageError } from './exit-codes.js'

/** The target flags. */
export interface TargetOptions {
  exchange?: string
  routingKey?: string
}

/** The header and property flags. */
export interface PropertyOptions {
  header: Record<string, string>
  messageId?: string
  contentType?: string
  contentEncoding?: string
  type?: string
  appId?: string
  priority?: number
  expiration?: number
}

/** Where the message goes, the body argument once the positionals are sorted out, and how to name it. */
export interface Target {
  /** The queue (through the default exchange), or undefined with --exchange. */
  queue: string | undefined
  exchange: string
  routingKey: string
  body: string | undefined
  /** `queue 'orders'`, or `exchange 'events' with routing key 'eu'`, for messages. */
  label: string
}

/** Adds [queue] [body], --exchange and --routing-key; `sendTo` is what the command does, e.g. `publish to`. */
export function withTargetOptions(command: Command, sendTo: string): Command {
  return command
    .argument('[queue]', `queue to ${sendTo} (through the default exchange); omit with --exchange`)
    .argument('[body]', 'message body (default: --file, else stdin)')
    .option('-e, --exchange <exchange>', `${sendTo} this exchange instead of a queue`)
    .option('-k, --routing-key <key>', 'routing key, with --exchange', '')
}

/**
 * The target of the positionals and the target flags: a queue, or with --exchange no queue (a
 * single positional is then the body).
 */
export function targetOf(queue: string | undefined, body: string | undefined, o: TargetOptions): Target {
  if (o.exchange !== undefined) {
    if (body !== undefined) throw new UsageError('with --exchange, give no queue argument')
    const routingKey = o.routingKey ?? ''
    return {
      queue: undefined,
      exchange: o.exchange,
      routingKey,
      body: queue,
      label: `exchange ${quote(o.exchange)} with routing key ${quote(routingKey)}`,
    }
  }
  if (queue === undefined) throw new UsageError('give a queue, or --exchange and --routing-key')
  if (o.routingKey) {
    throw new UsageError('--routing-key goes with --exchange (a queue is its own routing key)')
  }
  return { queue, exchange: '', routingKey: queue, body, label: `queue ${quote(queue)}` }
}

/** Adds -H and the property flags; `messageId` describes --message-id. */
export function withPropertyOptions(command: Command, messageId: string): Command {
  return command
    .option('-H, --header <key=value>', 'a header (repeatable)', addHeader, {})
    .option('--message-id <id>', messageId)
    .option('--content-type <type>', 'content type, e.g. application/json')
    .option('--content-encoding <encoding>', 'content encoding')
    .option('--type <type>', 'message type')
    .option('--app-id <id>', 'application id')
    .option('--priority <0-255>', 'priority', intFlag(0, 255))
    .option('--expiration <ms>', 'per-message TTL', intFlag(0, 2 ** 32 - 1))
}

function addHeader(text: string, headers: Record<string, string>): Record<string, string> {
  const at = text.indexOf('=')
  if (at < 1) throw new InvalidArgumentError(`a header is key=value, got '${text}'`)
  return { ...headers, [text.slice(0, at)]: text.slice(at + 1) }
}

/** The send options of the header and property flags (`messageId` as the caller resolved it). */
export function propertyOptions(o: PropertyOptions, messageId = o.messageId): SendOptions {
  const options: SendOptions = {}
  if (Object.keys(o.header).length > 0) options.headers = o.header
  if (messageId !== undefined) options.messageId = messageId
  if (o.contentType !== undefined) options.contentType = o.contentType
  if (o.contentEncoding !== undefined) options.contentEncoding = o.contentEncoding
  if (o.type !== undefined) options.type = o.type
  if (o.appId !== undefined) options.appId = o.appId
  if (o.priority !== undefined) options.priority = o.priority
  if (o.expiration !== undefined) options.expiration = o.expiration
  return options
}
