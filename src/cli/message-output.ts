// How `lapinmq consume` prints a message: its body as is, or one JSON object per line (--json)
// with the properties and headers. A body that is not valid UTF-8 is shown in base64 in JSON.
import type { Message } from '../index.ts'

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** The body, with a newline after it unless it ends with one. */
export function plainLine(message: Message): Buffer {
  const body = message.body
  return body.at(-1) === 0x0a ? body : Buffer.concat([body, Buffer.from('\n')])
}

/** One line of JSON: body (UTF-8, else base64 with `bodyEncoding`), properties, headers, delivery. */
export function jsonLine(message: Message): string {
  const { headers: _headers, ...properties } = message.properties
  let body: string
  let bodyEncoding: 'utf8' | 'base64' = 'utf8'
  try {
    body = utf8.decode(message.body)
  } catch {
    body = message.body.toString('base64')
    bodyEncoding = 'base64'
  }
  const line = {
    body,
    bodyEncoding,
    properties,
    headers: message.headers,
    exchange: message.exchange,
    routingKey: message.routingKey,
    redelivered: message.redelivered,
  }
  return `${JSON.stringify(line, jsonValue)}\n`
}

/** Header values JSON cannot show as they are: byte arrays (after Buffer's toJSON) and bigints. */
function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  const v = value as { type?: unknown; data?: unknown } | null
  if (v !== null && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data)) {
    return Buffer.from(v.data as number[]).toString('utf8')
  }
  return value
}
