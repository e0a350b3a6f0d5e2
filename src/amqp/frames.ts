// Frames lapinmq encodes itself, byte for byte what amqplib would send for the same call.
//
// AMQP 0-9-1 frame: type (1 byte), channel (2), payload size (4), payload, 0xCE.
//
// A plain `basic.publish` (no properties but the delivery mode, empty headers) is encoded once per
// destination and reused: each publish then costs one buffer and two copies instead of amqplib's
// per-message encoding of method, properties and body.
//   method  payload: class 60, method 40, reserved u16, exchange shortstr, routing key shortstr, bits
//   header  payload: class 60, weight 0, body size u64, property flags u16, properties
//   body    payload: the body
// The properties are those amqplib sends for the same options: an empty headers table and the
// delivery mode (1 or 2), so a consumer sees exactly the same message either way.
//
// A publish whose only other property is a small table of string headers (a trace context, say)
// reuses the method frame and encodes its header frame per message: each entry a shortstr key, the
// tag 'S' and a longstr value, in the object's key order, as amqplib's table encoder writes them.

const FRAME_END = 0xce
const HEADERS_FLAG = 0x2000
const DELIVERY_MODE_FLAG = 0x1000
/** Bodies up to this size are copied into the frame buffer (larger ones take amqplib's path). */
export const MAX_INLINE_BODY = 2048
/** Header tables up to this size (encoded) go out from lapinmq's frames (larger ones take amqplib's path). */
export const MAX_INLINE_TABLE = 1024
const STRING_TAG = 0x53 // 'S'

/** The method and header frames of one destination, with the body size left to fill in. */
export interface PublishPrefix {
  readonly exchange: string
  readonly routingKey: string
  readonly persistent: boolean
  readonly mandatory: boolean
  readonly channel: number
  readonly bytes: Buffer
  /** Where the header frame's 64-bit body size starts. */
  readonly bodySizeAt: number
  /** The method frame's size: where the header frame starts. */
  readonly methodSize: number
}

/** Encodes the method and header frames for a destination (names already checked: ≤ 255 bytes). */
export function encodePublishPrefix(
  channel: number,
  exchange: string,
  routingKey: string,
  persistent: boolean,
  mandatory: boolean,
): PublishPrefix {
  const exchangeBytes = Buffer.byteLength(exchange)
  const routingKeyBytes = Buffer.byteLength(routingKey)
  const methodPayload = 2 + 2 + 2 + 1 + exchangeBytes + 1 + routingKeyBytes + 1
  const headerPayload = 2 + 2 + 8 + 2 + 4 + 1
  const bytes = Buffer.alloc(7 + methodPayload + 1 + 7 + headerPayload + 1)
  let at = bytes.writeUInt8(1, 0)
  at = bytes.writeUInt16BE(channel, at)
  at = bytes.writeUInt32BE(methodPayload, at)
  at = bytes.writeUInt16BE(60, at)
  at = bytes.writeUInt16BE(40, at)
  at = bytes.writeUInt16BE(0, at)
  at = bytes.writeUInt8(exchangeBytes, at)
  at += bytes.write(exchange, at)
  at = bytes.writeUInt8(routingKeyBytes, at)
  at += bytes.write(routingKey, at)
  at = bytes.writeUInt8(mandatory ? 1 : 0, at)
  at = bytes.writeUInt8(FRAME_END, at)
  const methodSize = at
  at = bytes.writeUInt8(2, at)
  at = bytes.writeUInt16BE(channel, at)
  at = bytes.writeUInt32BE(headerPayload, at)
  at = bytes.writeUInt16BE(60, at)
  at = bytes.writeUInt16BE(0, at)
  const bodySizeAt = at
  at += 8
  at = bytes.writeUInt16BE(HEADERS_FLAG | DELIVERY_MODE_FLAG, at)
  at = bytes.writeUInt32BE(0, at)
  at = bytes.writeUInt8(persistent ? 2 : 1, at)
  bytes.writeUInt8(FRAME_END, at)
  return { exchange, routingKey, persistent, mandatory, channel, bytes, bodySizeAt, methodSize }
}

/** The frames of one publish: the prefix with the body size filled in, then the body frame (none for an empty body). */
export function encodePublish(prefix: PublishPrefix, body: Buffer): Buffer {
  const head = prefix.bytes.length
  const size = body.length
  const out = Buffer.allocUnsafe(size > 0 ? head + 8 + size : head)
  prefix.bytes.copy(out, 0)
  // Bodies here are small (MAX_INLINE_BODY): the high 32 bits of the size are 0.
  out.writeUInt32BE(0, prefix.bodySizeAt)
  out.writeUInt32BE(size, prefix.bodySizeAt + 4)
  if (size > 0) {
    let at = out.writeUInt8(3, head)
    at = out.writeUInt16BE(prefix.channel, at)
    at = out.writeUInt32BE(size, at)
    at += body.copy(out, at)
    out.writeUInt8(FRAME_END, at)
  }
  return out
}

/**
 * The encoded size of a headers table's entries when every value is a string, every key fits a
 * shortstr and the whole is at most {@link MAX_INLINE_TABLE} bytes; otherwise undefined (amqplib
 * encodes it).
 */
export function stringTableSize(headers: Record<string, unknown>): number | undefined {
  let size = 0
  for (const key in headers) {
    const value = headers[key]
    if (typeof value !== 'string') return undefined
    const keyBytes = Buffer.byteLength(key)
    if (keyBytes > 255) return undefined
    size += 1 + keyBytes + 1 + 4 + Buffer.byteLength(value)
    if (size > MAX_INLINE_TABLE) return undefined
  }
  return size
}

/**
 * The frames of one publish with string headers: the prefix's method frame, a header frame with
 * the table (`tableSize` from {@link stringTableSize}) and the delivery mode, then the body frame.
 */
export function encodePublishWithHeaders(
  prefix: PublishPrefix,
  headers: Record<string, string>,
  tableSize: number,
  body: Buffer,
): Buffer {
  const methodSize = prefix.methodSize
  const headerPayload = 2 + 2 + 8 + 2 + 4 + tableSize + 1
  const headerEnd = methodSize + 7 + headerPayload + 1
  const size = body.length
  const out = Buffer.allocUnsafe(size > 0 ? headerEnd + 8 + size : headerEnd)
  prefix.bytes.copy(out, 0, 0, methodSize)
  let at = out.writeUInt8(2, methodSize)
  at = out.writeUInt16BE(prefix.channel, at)
  at = out.writeUInt32BE(headerPayload, at)
  at = out.writeUInt32BE(0x003c0000, at) // class 60, weight 0
  at = out.writeUInt32BE(0, at)
  at = out.writeUInt32BE(size, at)
  at = out.writeUInt16BE(HEADERS_FLAG | DELIVERY_MODE_FLAG, at)
  at = out.writeUInt32BE(tableSize, at)
  for (const key in headers) {
    const value = headers[key] as string
    const keyBytes = out.write(key, at + 1)
    out[at] = keyBytes
    at += 1 + keyBytes
    out[at] = STRING_TAG
    const valueBytes = out.write(value, at + 5)
    out.writeUInt32BE(valueBytes, at + 1)
    at += 5 + valueBytes
  }
  at = out.writeUInt8(prefix.persistent ? 2 : 1, at)
  at = out.writeUInt8(FRAME_END, at)
  if (size > 0) {
    at = out.writeUInt8(3, at)
    at = out.writeUInt16BE(prefix.channel, at)
    at = out.writeUInt32BE(size, at)
    at += body.copy(out, at)
    out.writeUInt8(FRAME_END, at)
  }
  return out
}

// A `basic.ack` (type 1, payload size 13: class 60, method 80, delivery tag u64, bits): the
// consumer sends one per settled batch, and amqplib's generic encoder builds a fields object and a
// buffer through its method table for each.
const ACK_FRAME_SIZE = 7 + 13 + 1

/** One `basic.ack` frame for `channel`. Delivery tags are integers below 2^53. */
export function encodeAck(channel: number, deliveryTag: number, multiple: boolean): Buffer {
  const out = Buffer.allocUnsafe(ACK_FRAME_SIZE)
  out[0] = 1
  out.writeUInt16BE(channel, 1)
  out.writeUInt32BE(13, 3)
  out.writeUInt32BE(0x003c0050, 7)
  out.writeUInt32BE(Math.floor(deliveryTag / 2 ** 32), 11)
  out.writeUInt32BE(deliveryTag >>> 0, 15)
  out[19] = multiple ? 1 : 0
  out[20] = 0xce
  return out
}
