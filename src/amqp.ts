// The only file that imports amqplib. Everything else uses the names re-exported here, so the
// dependency stays visible and swappable.
import { readFile } from 'node:fs/promises'
import * as amqplib from 'amqplib'
import type { Endpoint, ResolvedConfig } from './config.ts'

export type {
  Channel as AmqpChannel,
  ChannelModel as AmqpConnection,
  ConfirmChannel as AmqpConfirmChannel,
  ConsumeMessage as AmqpDelivery,
  Message as AmqpMessage,
  MessageProperties as AmqpProperties,
  Options as AmqpOptions,
} from 'amqplib'

const clientVersion = '0.1.0'

/** Opens one AMQP connection to one endpoint. Rejects with amqplib's error (mapped by the caller). */
export async function openAmqpConnection(
  endpoint: Endpoint,
  config: ResolvedConfig,
): Promise<amqplib.ChannelModel> {
  const socketOptions: amqplib.SocketOptions = {
    noDelay: true,
    timeout: config.connectionTimeout,
    clientProperties: {
      connection_name: config.name,
      product: 'lapinmq',
      version: clientVersion,
      platform: `Node.js ${process.version}`,
    },
  }
  if (endpoint.protocol === 'amqps' && config.tls) {
    const t = config.tls
    const [ca, cert, key] = await Promise.all([
      t.ca ?? (t.caFile ? readFile(t.caFile) : undefined),
      t.cert ?? (t.certFile ? readFile(t.certFile) : undefined),
      t.key ?? (t.keyFile ? readFile(t.keyFile) : undefined),
    ])
    if (ca !== undefined) socketOptions.ca = ca
    if (cert !== undefined) socketOptions.cert = cert
    if (key !== undefined) socketOptions.key = key
    socketOptions.rejectUnauthorized = t.rejectUnauthorized ?? true
  }
  const model = await amqplib.connect(
    {
      protocol: endpoint.protocol,
      hostname: endpoint.hostname,
      port: endpoint.port,
      username: endpoint.username,
      password: endpoint.password,
      vhost: endpoint.vhost,
      heartbeat: config.heartbeat,
      frameMax: config.frameMax,
      channelMax: config.channelMax,
    },
    socketOptions,
  )
  coalesceWrites(model)
  return model
}

/**
 * amqplib's multiplexer writes each frame to the socket on its own: one system call per publish,
 * ack or confirm-mode frame. Corking the socket around one pass of the multiplexer hands the
 * frames of that pass to the kernel in one write. Frames and their order are unchanged. Guarded:
 * if amqplib's internals differ (another version), nothing is patched.
 */
function coalesceWrites(model: amqplib.ChannelModel): void {
  const connection = (model as unknown as { connection?: { stream?: unknown; muxer?: unknown } }).connection
  const stream = connection?.stream as { cork?: () => void; uncork?: () => void } | undefined
  const muxer = connection?.muxer as { _readIncoming?: () => void } | undefined
  const readIncoming = muxer?._readIncoming
  if (!stream?.cork || !stream.uncork || !muxer || typeof readIncoming !== 'function') return
  muxer._readIncoming = () => {
    stream.cork?.()
    try {
      readIncoming.call(muxer)
    } finally {
      stream.uncork?.()
    }
  }
}

/** Drops the socket at once, without the AMQP close handshake (amqplib has no public verb for it). */
export function destroyAmqpConnection(model: amqplib.ChannelModel): void {
  const internal = model as unknown as { connection?: { stream?: { destroy(): void } } }
  internal.connection?.stream?.destroy()
}

/** The heartbeat interval agreed with the broker, in seconds (0: none); the configured one if unknown. */
export function negotiatedHeartbeat(model: amqplib.ChannelModel, configured: number): number {
  const heartbeat = (model as unknown as { connection?: { heartbeat?: unknown } }).connection?.heartbeat
  return typeof heartbeat === 'number' ? heartbeat : configured
}

/** The parts of amqplib's channel and connection that a pre-encoded publish touches. */
interface RawPublishInternals {
  ch?: unknown
  sendMessage?: unknown
  pushConfirmCallback?: (cb: false) => void
  connection?: {
    frameMax?: unknown
    sendMessage?: unknown
    sentSinceLastCheck?: boolean
    channels?: ({ buffer?: { write(chunk: Buffer): boolean } } | null)[]
  }
}

/** The channel number and largest body frame payload of a confirm channel, or undefined if amqplib's internals differ. */
export function rawPublishTarget(
  ch: amqplib.ConfirmChannel,
): { channel: number; maxBody: number } | undefined {
  const c = ch as unknown as RawPublishInternals
  const frameMax = c.connection?.frameMax
  if (typeof c.ch !== 'number' || typeof frameMax !== 'number' || typeof c.pushConfirmCallback !== 'function')
    return undefined
  if (!Array.isArray(c.connection?.channels)) return undefined
  return { channel: c.ch, maxBody: frameMax - 8 }
}

/**
 * Writes a publish's pre-encoded frames where amqplib would have written them (the channel's
 * outgoing buffer, so frame order is kept), with the same bookkeeping (one confirm slot, traffic
 * seen for heartbeats). Returns what amqplib's publish returns (false: wait for 'drain'), or
 * undefined when the channel or connection no longer sends: the caller then publishes through
 * amqplib, which throws its usual error.
 */
export function writeRawPublish(ch: amqplib.ConfirmChannel, frames: Buffer): boolean | undefined {
  const c = ch as unknown as RawPublishInternals
  const connection = c.connection
  // amqplib marks a closing channel or connection by shadowing its send methods on the instance.
  if (!connection || Object.hasOwn(c, 'sendMessage') || Object.hasOwn(connection, 'sendMessage'))
    return undefined
  const buffer = connection.channels?.[c.ch as number]?.buffer
  if (!buffer) return undefined
  connection.sentSinceLastCheck = true
  const ok = buffer.write(frames)
  c.pushConfirmCallback?.(false)
  return ok
}
