// The frame of a `basic.ack`, encoded by hand: the consumer sends one per settled batch, and
// amqplib's generic encoder builds a fields object and a buffer through its method table for each.
//
// AMQP 0-9-1 frame: type 1 (method), channel u16, payload size u32 = 13, then class 60, method 80,
// delivery tag u64, bits (multiple), 0xCE.

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
