// `lapinmq publish --json-lines`: each input line is one message written as JSON,
// `{"body": …, "headers": {…}, "properties": {…}, "routingKey": "…"}`. Header values keep their JSON
// types (a number stays a number in the AMQP table), and a body that is not a string is sent as
// its JSON text, marked application/json.
import type { SendOptions } from '../index.js'
import { UsageError } from './exit-codes.js'

/** What one line asks for: the body's bytes, its send options, and a routing key of its own. */
export interface JsonLineMessage {
  body: Buffer
  options: SendOptions
  routingKey: string | undefined
}

const fields = new Set(['body', 'headers', 'properties', 'routingKey'])

/** The send options a line may set in `properties` (headers have their own field; callbacks make no sense here). */
const properties = new Set([
  'messageId',
  'correlationId',
  'contentType',
  'contentEncoding',
  'replyTo',
  'type',
  'appId',
  'userId',
  'priority',
  'expiration',
  'timestamp',
  'persistent',
  'mandatory',
])

/**
 * Reads one line. `defaults` are the flags' send options: the line's own properties win, and its
 * headers are merged over the flags' headers. Throws a UsageError naming the line, never quoting
 * its body.
 */
export function parseJsonLine(text: Buffer, line: number, defaults: SendOptions): JsonLineMessage {
  const fail = (why: string): never => {
    throw new UsageError(`--json-lines: line ${line}: ${why}`)
  }
  let value: unknown
  try {
    value = JSON.parse(text.toString('utf8'))
  } catch {
    return fail('not valid JSON')
  }
  if (!isObject(value)) return fail('not a JSON object ({"body": …, "headers": {…}, "properties": {…}})')
  for (const key of Object.keys(value)) {
    if (!fields.has(key)) fail(`unknown field '${key}' (fields: ${[...fields].join(', ')})`)
  }
  if (!('body' in value)) fail("no 'body'")
  const { body, headers, properties: props, routingKey } = value
  if (headers !== undefined && !isObject(headers)) fail("'headers' must be an object")
  if (props !== undefined && !isObject(props)) fail("'properties' must be an object")
  if (routingKey !== undefined && typeof routingKey !== 'string') fail("'routingKey' must be a string")
  const options: SendOptions = { ...defaults }
  for (const [key, v] of Object.entries((props ?? {}) as Record<string, unknown>)) {
    if (!properties.has(key))
      fail(`unknown property '${key}' (properties: ${[...properties].join(', ')})`)
      // The publisher checks each value's type and range at the send, naming the option.
    ;(options as Record<string, unknown>)[key] = v
  }
  if (headers !== undefined)
    options.headers = { ...defaults.headers, ...(headers as Record<string, unknown>) }
  const isText = typeof body === 'string'
  if (!isText && options.contentType === undefined) options.contentType = 'application/json'
  return {
    body: Buffer.from(isText ? body : JSON.stringify(body)),
    options,
    routingKey: routingKey as string | undefined,
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
