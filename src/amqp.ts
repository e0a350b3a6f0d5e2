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
