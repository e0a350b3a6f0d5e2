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

const FRAME_END = 0xce
const HEADERS_FLAG = 0x2000
const DELIVERY_MODE_FLAG = 0x1000
/** Bodies up to this size are copied into the frame buffer (larger ones take amqplib's path). */
export const MAX_INLINE_BODY = 2048

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
  return { exchange, routingKey, persistent, mandatory, channel, bytes, bodySizeAt }
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
