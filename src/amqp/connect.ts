// The one way into amqplib's connections: open one, probe its fast path, watch its events, open
// channel sessions on it, close or drop it.
import { EventEmitter } from 'node:events'
import { readFile } from 'node:fs/promises'
import * as amqplib from 'amqplib'
import type { Endpoint, FastPath, ResolvedConfig } from '../config.ts'
import { type LapinError, toLapinError } from '../errors.ts'
import { ChannelSession } from './channel-session.ts'
import { DirectWriter, probeFastPath } from './fast-path.ts'

const clientVersion = '0.1.0'

/** Events of an {@link AmqpLink}, each emitted at most once but `blocked`/`unblocked`. */
export interface AmqpLinkEvents {
  /** The connection closed; `error` says why when it was not asked for. */
  close: [error: LapinError | undefined]
  /** The broker blocked publishing (resource alarm); `reason` is the broker's text. */
  blocked: [reason: string]
  unblocked: []
}

/** One open AMQP connection. */
export class AmqpLink extends EventEmitter<AmqpLinkEvents> {
  /** What of the fast path this connection uses. */
  readonly fastPath: FastPath
  /** The heartbeat interval agreed with the broker, in seconds (0: none). */
  readonly heartbeat: number
  readonly #model: amqplib.ChannelModel
  #sending = true

  constructor(model: amqplib.ChannelModel, config: ResolvedConfig) {
    super()
    this.#model = model
    this.fastPath = probeFastPath(model, config.fastPath)
    const heartbeat = (model as unknown as { connection?: { heartbeat?: unknown } }).connection?.heartbeat
    this.heartbeat = typeof heartbeat === 'number' ? heartbeat : config.heartbeat
    let closeError: LapinError | undefined
    model.on('error', (err: unknown) => {
      this.#sending = false
      closeError = toLapinError(err, 'connection error')
    })
    model.on('close', (err?: unknown) => {
      this.#sending = false
      this.emit('close', closeError ?? (err ? toLapinError(err, 'connection closed') : undefined))
    })
    model.on('blocked', (reason: string) => this.emit('blocked', reason))
    model.on('unblocked', () => this.emit('unblocked'))
  }

  /** False once the connection began to close or failed: its channels send nothing more. */
  get sending(): boolean {
    return this.#sending
  }

  /** Opens a channel: in confirm mode for publishers, plain for consumers. */
  async openChannel(confirm: boolean): Promise<ChannelSession> {
    try {
      const channel = confirm ? await this.#model.createConfirmChannel() : await this.#model.createChannel()
      return new ChannelSession(channel, this, DirectWriter.for(channel, this.fastPath, confirm))
    } catch (err) {
      throw toLapinError(err, 'could not open a channel')
    }
  }

  /** Closes gracefully (channels close with it). Never rejects. */
  async close(): Promise<void> {
    this.#sending = false
    try {
      await this.#model.close()
    } catch {
      // Already closed underneath us: nothing to do.
    }
  }

  /** Drops the socket at once, without the AMQP close handshake (amqplib has no public verb for it). */
  destroy(): void {
    this.#sending = false
    const internal = this.#model as unknown as { connection?: { stream?: { destroy(): void } } }
    internal.connection?.stream?.destroy()
  }
}

/** Opens one AMQP connection to one endpoint. Rejects with amqplib's error (mapped by the caller). */
export async function openAmqpLink(endpoint: Endpoint, config: ResolvedConfig): Promise<AmqpLink> {
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
  return new AmqpLink(model, config)
}
