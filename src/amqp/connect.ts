// The one way into amqplib's connections: open one, probe its fast path, watch its events, open
// channel sessions on it, close or drop it.
import { EventEmitter } from 'node:events'
import { readFile } from 'node:fs/promises'
import * as amqplib from 'amqplib'
import type { Endpoint, FastPath, ResolvedConfig } from '../config.js'
import { LapinError, toLapinError } from '../errors.js'
import { ChannelSession } from './channel-session.js'
import { DirectWriter, probeFastPath } from './fast-path.js'
import { type Heard, watchSilence } from './silence.js'

const clientVersion = '0.1.0'

/** Events of an {@link AmqpLink}, each emitted at most once but `blocked`/`unblocked`. */
export interface AmqpLinkEvents {
  /** The connection closed; `error` says why when it was not asked for. */
  close: [error: LapinError | undefined]
  /** The broker blocked publishing (resource alarm); `reason` is the broker's text. */
  blocked: [reason: string]
  unblocked: []
}

/** What a broker says of itself in its server properties (each when it says it). */
export interface ServerInfo {
  /** e.g. `RabbitMQ`. */
  product?: string
  /** e.g. `3.10.8`. */
  version?: string
  /** The cluster's name (RabbitMQ: by default the name of its first node). */
  clusterName?: string
}

function serverInfo(properties: unknown): ServerInfo {
  const p = (typeof properties === 'object' && properties !== null ? properties : {}) as Record<
    string,
    unknown
  >
  const text = (value: unknown): string | undefined =>
    typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : undefined
  const info: ServerInfo = {}
  const product = text(p.product)
  const version = text(p.version)
  const clusterName = text(p.cluster_name)
  if (product !== undefined) info.product = product
  if (version !== undefined) info.version = version
  if (clusterName !== undefined) info.clusterName = clusterName
  return info
}

/** One open AMQP connection. */
export class AmqpLink extends EventEmitter<AmqpLinkEvents> {
  /** What of the fast path this connection uses. */
  readonly fastPath: FastPath
  /** The heartbeat interval agreed with the broker, in seconds (0: none). */
  readonly heartbeat: number
  /** What the broker said of itself at connect (its server properties). */
  readonly server: ServerInfo
  readonly #model: amqplib.ChannelModel
  #sending = true
  readonly #heard: Heard = { at: performance.now() }
  readonly #watched: boolean

  constructor(model: amqplib.ChannelModel, config: ResolvedConfig) {
    super()
    this.#model = model
    this.fastPath = probeFastPath(model, config.fastPath)
    const heartbeat = (model as unknown as { connection?: { heartbeat?: unknown } }).connection?.heartbeat
    this.heartbeat = typeof heartbeat === 'number' ? heartbeat : config.heartbeat
    this.server = serverInfo(
      (model as unknown as { connection?: { serverProperties?: unknown } }).connection?.serverProperties,
    )
    const stopWatching = watchSilence(
      (model as unknown as { connection?: unknown }).connection,
      this.heartbeat,
      this.#heard,
    )
    this.#watched = stopWatching !== undefined
    let closeError: LapinError | undefined
    model.on('error', (err: unknown) => {
      this.#sending = false
      closeError = toLapinError(err, 'connection error')
    })
    model.on('close', (err?: unknown) => {
      this.#sending = false
      stopWatching?.()
      this.emit('close', closeError ?? (err ? toLapinError(err, 'connection closed') : undefined))
    })
    model.on('blocked', (reason: string) => this.emit('blocked', reason))
    model.on('unblocked', () => this.emit('unblocked'))
  }

  /** False once the connection began to close or failed: its channels send nothing more. */
  get sending(): boolean {
    return this.#sending
  }

  /**
   * Milliseconds since the last byte came from the broker; undefined when that is not watched (no
   * heartbeat, or an amqplib whose internals differ).
   */
  silentFor(): number | undefined {
    return this.#watched ? performance.now() - this.#heard.at : undefined
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
    const internal = this.#model as unknown as {
      connection?: { stream?: { destroy(): void }; onSocketError?: (err: Error) => void }
    }
    const connection = internal.connection
    connection?.stream?.destroy()
    // amqplib learns of a lost socket from its 'end' or 'error' events, which a destroy does not
    // emit: told nothing, it would keep the channels open and its heartbeat timer running (holding
    // the process) until the heartbeat timed out. Told now, its channels close at once.
    if (typeof connection?.onSocketError === 'function') {
      connection.onSocketError(new Error('connection destroyed by the client'))
    }
  }
}

/** Opens one AMQP connection to one endpoint. Rejects with amqplib's error (mapped by the caller). */
export async function openAmqpLink(endpoint: Endpoint, config: ResolvedConfig): Promise<AmqpLink> {
  const socketOptions: amqplib.SocketOptions = {
    noDelay: true,
    // 0: no limit (connectionTimeout: Infinity).
    ...(config.connectionTimeout > 0 ? { timeout: config.connectionTimeout } : {}),
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
      t.ca ?? readTlsFile('caFile', t.caFile),
      t.cert ?? readTlsFile('certFile', t.certFile),
      t.key ?? readTlsFile('keyFile', t.keyFile),
    ])
    if (ca !== undefined) socketOptions.ca = ca
    if (cert !== undefined) socketOptions.cert = cert
    if (key !== undefined) socketOptions.key = key
    socketOptions.rejectUnauthorized = t.rejectUnauthorized ?? true
  }
  let model: amqplib.ChannelModel
  try {
    model = await amqplib.connect(
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
  } catch (err) {
    throw permanentError(err, endpoint) ?? err
  }
  return new AmqpLink(model, config)
}

/** A TLS file, read at connect time; one that cannot be read is a configuration error no retry fixes. */
async function readTlsFile(option: string, path: string | undefined): Promise<Buffer | undefined> {
  if (path === undefined) return undefined
  try {
    return await readFile(path)
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err)
    throw new LapinError('TLS_CONFIG_INVALID', `could not read the TLS ${option} '${path}': ${reason}`, {
      cause: err,
    })
  }
}

/** Node's codes for a broker certificate that does not verify (see tls and OpenSSL's X509 errors). */
const verificationCodes = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
])

/**
 * The failures of a connect that no retry fixes, as typed errors: a certificate that does not
 * verify, and a vhost the broker will not open (it answers connection.open with a close, which
 * amqplib reports without its code: RabbitMQ sends 530 for an unknown vhost, one the user may not
 * use, or one at its connection limit).
 */
function permanentError(err: unknown, endpoint: Endpoint): LapinError | undefined {
  if (err instanceof LapinError) return err
  const e = err as { code?: unknown; message?: unknown } | undefined
  if (typeof e?.code === 'string' && verificationCodes.has(e.code)) {
    return new LapinError(
      'TLS_VERIFY_FAILED',
      `the broker's TLS certificate did not verify (${e.code}) at ${endpoint.display}`,
      { cause: err },
    )
  }
  if (typeof e?.message === 'string' && /Expected ConnectionOpenOk; got <ConnectionClose/.test(e.message)) {
    const replyText = `NOT_ALLOWED - the broker would not open vhost '${endpoint.vhost}' (it does not exist, the user may not use it, or its connection limit is reached)`
    return new LapinError('NOT_ALLOWED', `could not connect to ${endpoint.display}: ${replyText}`, {
      cause: err,
      replyCode: 530,
      replyText,
    })
  }
  return undefined
}
