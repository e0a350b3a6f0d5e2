import type { Logger } from './util/logger.js'
import { checkInt } from './util/validate.js'

/** How reconnects and channel reopens are spaced. */
export interface BackoffOptions {
  /**
   * Delay before the first retry, in ms.
   * @default 100
   */
  initialDelay?: number
  /**
   * Longest delay between two attempts, in ms (jitter included).
   * @default 30000
   */
  maxDelay?: number
  /**
   * Growth of the delay from one attempt to the next.
   * @default 2
   */
  factor?: number
  /**
   * Random spread of each delay, as a fraction (0.2: ±20%), so many clients do not retry in step.
   * @default 0.2
   */
  jitter?: number
}

/** How a connection retries: at the first connect, and after losing an open connection. */
export interface RecoveryOptions extends BackoffOptions {
  /**
   * Reconnect attempts after an open connection is lost, before giving up (then every pending send
   * and consumer fails with `ConnectionClosedError`).
   * @default Infinity
   */
  maxRetries?: number
  /**
   * Retries of the first connect before `start()`/`connect()` rejects. Refused credentials and
   * unknown vhosts are never retried.
   * @default 10
   */
  initialMaxRetries?: number
}

/** TLS settings. Peer verification is on unless `rejectUnauthorized: false` is given explicitly. */
export interface TlsOptions {
  /** CA certificate(s), PEM. */
  ca?: string | Buffer
  /** Client certificate for mutual TLS, PEM. */
  cert?: string | Buffer
  /** Client private key for mutual TLS, PEM. */
  key?: string | Buffer
  /** Path of a PEM CA file (read at connect time). Env: `RABBITMQ_CA_FILE`. */
  caFile?: string
  /** Path of a PEM client certificate file. Env: `RABBITMQ_CERT_FILE`. */
  certFile?: string
  /** Path of a PEM client key file. Env: `RABBITMQ_KEY_FILE`. */
  keyFile?: string
  /**
   * Verify the broker's certificate. Env: `RABBITMQ_TLS_VERIFY=0` switches it off.
   * @default true
   */
  rejectUnauthorized?: boolean
}

/** Options of a {@link Connection}. Every option wins over the environment. */
export interface ConnectionOptions {
  /**
   * `amqp://` or `amqps://` URI (RabbitMQ's URI spec). Query parameters `heartbeat`, `frame_max`,
   * `channel_max` and `connection_timeout` are read.
   * @default process.env.RABBITMQ_URL, else the RABBITMQ_HOST/PORT/USERNAME/PASSWORD/VHOST variables, else `amqp://guest:guest@localhost:5672/`
   */
  url?: string
  /**
   * Several cluster nodes, tried in turn (after the last, the first again). Wins over `url`.
   * Each connection starts at a random one (see `urlOrder`).
   */
  urls?: readonly string[]
  /**
   * Where in `urls` a connection starts: `'random'` spreads a fleet's connections over the nodes
   * (each process starts at a random one, and its next connections at the following ones in turn:
   * 20 connections over 3 nodes put 6 or 7 on each), `'given'` always starts at the first URL.
   * Either way, a failed attempt moves on to the next URL.
   * @default 'random'
   */
  urlOrder?: 'random' | 'given'
  /**
   * Heartbeat interval in seconds; 0 disables heartbeats (not recommended).
   * @default 60
   */
  heartbeat?: number
  /**
   * Largest frame in bytes (negotiated down with the broker).
   * @default 131072
   */
  frameMax?: number
  /**
   * Most channels on the connection (negotiated with the broker); 0 means the broker's limit.
   * @default 0
   */
  channelMax?: number
  /**
   * How long to wait for the TCP/TLS connection and AMQP handshake, in ms; `Infinity` for no limit.
   * @default 10000
   */
  connectionTimeout?: number
  /** TLS: `true` for defaults, or settings. `amqps://` URLs turn TLS on as well. Env: `RABBITMQ_TLS=1`. */
  tls?: boolean | TlsOptions
  /**
   * Connection name shown in the management UI and `rabbitmqctl list_connections`.
   * @default 'lapinmq'
   */
  name?: string
  /** Any object with `debug/info/warn/error` (pino fits). lapinmq logs nothing without one. */
  logger?: Logger
  /** Reconnect and retry settings (capped exponential backoff with jitter). */
  recovery?: RecoveryOptions
  /**
   * Write plain publishes and acks straight to the socket from pre-encoded frames, and coalesce
   * amqplib's frame writes, where the installed amqplib allows it (see {@link FastPath}). `false`
   * sends everything through amqplib's own methods. Env: `LAPINMQ_FAST_PATH=0` turns it off.
   * @default true
   */
  fastPath?: boolean
  /**
   * Trace sends and deliveries with OpenTelemetry when `@opentelemetry/api` is installed and an
   * SDK is registered (see docs/tracing.md). `false` turns it off for everything on this
   * connection; a publisher's, consumer's or RPC client's own `tracing` option wins.
   * @default true
   */
  tracing?: boolean
}

/**
 * Which parts of the fast path a connection uses, as probed on its AMQP connection. Each part is
 * off when `fastPath: false` is given or when amqplib's internals are not the ones it was written
 * for: then that traffic goes through amqplib's own methods, unchanged but slower.
 */
export interface FastPath {
  /** The frames of one pass of amqplib's writer leave the socket in one system call. */
  readonly corkedWrites: boolean
  /**
   * Plain publishes (no properties but persistence and string-valued headers, small bodies) go
   * from pre-encoded frames straight to the socket.
   */
  readonly rawPublish: boolean
  /** Acks go from hand-encoded frames straight to the socket. */
  readonly rawAck: boolean
}

/** @internal One broker node to connect to. Holds the password: never log or show it; use `display`. */
export interface Endpoint {
  protocol: 'amqp' | 'amqps'
  hostname: string
  port: number
  username: string
  password: string
  vhost: string
  /** The URL with its password replaced by `***`. */
  display: string
}

/** @internal Everything a connection needs, resolved from options and the environment. */
export interface ResolvedConfig {
  endpoints: Endpoint[]
  /** Where in `endpoints` the first attempt goes: random, or the first. */
  urlOrder: 'random' | 'given'
  heartbeat: number
  frameMax: number
  channelMax: number
  connectionTimeout: number
  tls: TlsOptions | undefined
  name: string
  recovery: Required<RecoveryOptions>
  /** False when the fast path was switched off by option or environment. */
  fastPath: boolean
  /** False: nothing on this connection is traced unless its own option says so. */
  tracing: boolean
}

type Env = Readonly<Record<string, string | undefined>>

const defaults = { heartbeat: 60, frameMax: 131072, channelMax: 0, connectionTimeout: 10_000 }

/**
 * @internal
 * Resolves connection options against the environment, without side effects.
 * Throws `TypeError`/`RangeError` for a bad URL or option; the error never contains the password.
 */
export function resolveConfig(options: ConnectionOptions = {}, env: Env = process.env): ResolvedConfig {
  const urls = options.urls ?? (options.url === undefined ? undefined : [options.url])
  const source = urls ? 'the url option' : 'RABBITMQ_URL'
  const rawUrls = urls ?? (env.RABBITMQ_URL ? [env.RABBITMQ_URL] : undefined)
  if (rawUrls !== undefined && rawUrls.length === 0) throw new TypeError('urls must name at least one broker')
  const parsed = rawUrls ? rawUrls.map((u) => parseUrl(u, source)) : [fromEnv(env)]
  const query = parsed[0]?.query ?? new URLSearchParams()

  const envTls = env.RABBITMQ_TLS === '1' || env.RABBITMQ_TLS === 'true'
  const wantsTls = options.tls !== undefined ? options.tls !== false : envTls
  const tlsOption = typeof options.tls === 'object' ? options.tls : undefined
  const anyAmqps = parsed.some((p) => p.endpoint.protocol === 'amqps')
  let tls: TlsOptions | undefined
  if (wantsTls || anyAmqps) {
    tls = tlsOption ?? tlsFromEnv(env)
    checkClientCertificate(tls)
  }
  const endpoints = parsed.map((p) => {
    if (!tls || p.endpoint.protocol === 'amqps') return p.endpoint
    // TLS asked for by option or env on an amqp:// URL: switch the scheme, keep an explicit port.
    const port = p.explicitPort ? p.endpoint.port : 5671
    return withDisplay({ ...p.endpoint, protocol: 'amqps', port })
  })

  const urlOrder = options.urlOrder ?? 'random'
  if (urlOrder !== 'random' && urlOrder !== 'given') {
    throw new TypeError(`urlOrder must be 'random' or 'given', got ${String(urlOrder)}`)
  }
  return {
    endpoints,
    urlOrder,
    heartbeat: intOption(
      'heartbeat',
      options.heartbeat ?? queryInt(query, 'heartbeat') ?? defaults.heartbeat,
      0,
      65535,
    ),
    frameMax: intOption(
      'frameMax',
      options.frameMax ?? queryInt(query, 'frame_max') ?? defaults.frameMax,
      4096,
      2 ** 32 - 1,
    ),
    channelMax: intOption(
      'channelMax',
      options.channelMax ?? queryInt(query, 'channel_max') ?? defaults.channelMax,
      0,
      65535,
    ),
    connectionTimeout: timeoutOption(
      'connectionTimeout',
      options.connectionTimeout ?? queryInt(query, 'connection_timeout') ?? defaults.connectionTimeout,
    ),
    tls,
    name: options.name ?? 'lapinmq',
    recovery: resolveRecovery(options.recovery ?? {}),
    fastPath: resolveFastPath(options.fastPath, env.LAPINMQ_FAST_PATH),
    tracing: booleanOption('tracing', options.tracing) ?? true,
  }
}

function booleanOption(name: string, value: unknown): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') throw new TypeError(`${name} must be true or false`)
  return value
}

function resolveFastPath(option: boolean | undefined, env: string | undefined): boolean {
  if (option !== undefined) {
    if (typeof option !== 'boolean') throw new TypeError('fastPath must be true or false')
    return option
  }
  return !(env === '0' || env === 'false')
}

function resolveRecovery(r: RecoveryOptions): Required<RecoveryOptions> {
  const out = {
    initialDelay: r.initialDelay ?? 100,
    maxDelay: r.maxDelay ?? 30_000,
    factor: r.factor ?? 2,
    jitter: r.jitter ?? 0.2,
    maxRetries: r.maxRetries ?? Number.POSITIVE_INFINITY,
    initialMaxRetries: r.initialMaxRetries ?? 10,
  }
  checkInt('recovery.initialDelay', out.initialDelay, 0, 2 ** 31 - 1)
  checkInt('recovery.maxDelay', out.maxDelay, 1, 2 ** 31 - 1)
  if (!(out.factor >= 1)) throw new RangeError('recovery.factor must be at least 1')
  if (!(out.jitter >= 0 && out.jitter <= 1)) throw new RangeError('recovery.jitter must be between 0 and 1')
  for (const name of ['maxRetries', 'initialMaxRetries'] as const) {
    const v = out[name]
    if (v !== Number.POSITIVE_INFINITY) checkInt(`recovery.${name}`, v, 0, 2 ** 31 - 1)
  }
  return out
}

/** `amqp://user:***@host:port/vhost` for any URL-ish text; an unparsable one becomes `<invalid url>`. */
export function redactUrl(url: string): string {
  try {
    return parseUrl(url, 'url').endpoint.display
  } catch {
    return '<invalid url>'
  }
}

interface Parsed {
  endpoint: Endpoint
  query: URLSearchParams
  explicitPort: boolean
}

function parseUrl(raw: string, source: string): Parsed {
  if (typeof raw !== 'string') throw new TypeError(`${source} must be a string`)
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    // Never echo the input: it may hold a password.
    throw new TypeError(`${source} is not a valid URL; expected amqp://user:password@host:port/vhost`)
  }
  const protocol = url.protocol.slice(0, -1).toLowerCase()
  if (protocol !== 'amqp' && protocol !== 'amqps') {
    throw new TypeError(`${source} must use the amqp:// or amqps:// scheme, not ${protocol}://`)
  }
  // amqp: is not a "special" scheme for WHATWG URL, so its host is not checked: do it here.
  if (!/^([A-Za-z0-9_-]+\.)*[A-Za-z0-9_-]+\.?$|^\[[0-9A-Fa-f:.]+\]$/.test(url.hostname)) {
    throw new TypeError(`${source} has no valid host; expected amqp://user:password@host:port/vhost`)
  }
  const path = url.pathname.startsWith('/') ? url.pathname.slice(1) : url.pathname
  if (path.includes('/')) throw new TypeError(`${source}: a vhost with '/' must be percent-encoded as %2F`)
  const explicitPort = url.port !== ''
  const endpoint = withDisplay({
    protocol,
    hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: explicitPort ? Number(url.port) : protocol === 'amqps' ? 5671 : 5672,
    username: url.username ? decode(url.username, source) : 'guest',
    password: url.password ? decode(url.password, source) : url.username ? '' : 'guest',
    vhost: path ? decode(path, source) : '/',
  })
  return { endpoint, query: url.searchParams, explicitPort }
}

function fromEnv(env: Env): Parsed {
  const tls = env.RABBITMQ_TLS === '1' || env.RABBITMQ_TLS === 'true'
  const portText = env.RABBITMQ_PORT
  const port = portText ? Number(portText) : tls ? 5671 : 5672
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError('RABBITMQ_PORT must be an integer between 1 and 65535')
  }
  const endpoint = withDisplay({
    protocol: tls ? 'amqps' : 'amqp',
    hostname: env.RABBITMQ_HOST || 'localhost',
    port,
    username: env.RABBITMQ_USERNAME ?? 'guest',
    password: env.RABBITMQ_PASSWORD ?? 'guest',
    vhost: env.RABBITMQ_VHOST || '/',
  })
  return { endpoint, query: new URLSearchParams(), explicitPort: portText !== undefined }
}

/** Mutual TLS needs both halves: a certificate without its key would be sent as no certificate at all. */
function checkClientCertificate(tls: TlsOptions): void {
  const cert = tls.cert !== undefined || tls.certFile !== undefined
  const key = tls.key !== undefined || tls.keyFile !== undefined
  if (cert && !key)
    throw new TypeError(
      'tls: a client certificate (cert/certFile, RABBITMQ_CERT_FILE) needs its key (key/keyFile, RABBITMQ_KEY_FILE)',
    )
  if (key && !cert)
    throw new TypeError(
      'tls: a client key (key/keyFile, RABBITMQ_KEY_FILE) needs its certificate (cert/certFile, RABBITMQ_CERT_FILE)',
    )
}

function tlsFromEnv(env: Env): TlsOptions {
  const tls: TlsOptions = {}
  if (env.RABBITMQ_CA_FILE) tls.caFile = env.RABBITMQ_CA_FILE
  if (env.RABBITMQ_CERT_FILE) tls.certFile = env.RABBITMQ_CERT_FILE
  if (env.RABBITMQ_KEY_FILE) tls.keyFile = env.RABBITMQ_KEY_FILE
  if (env.RABBITMQ_TLS_VERIFY === '0' || env.RABBITMQ_TLS_VERIFY === 'false') tls.rejectUnauthorized = false
  return tls
}

function withDisplay(e: Omit<Endpoint, 'display'>): Endpoint {
  const host = e.hostname.includes(':') ? `[${e.hostname}]` : e.hostname
  const display = `${e.protocol}://${encodeURIComponent(e.username)}:***@${host}:${e.port}/${encodeURIComponent(e.vhost)}`
  return { ...e, display }
}

function decode(text: string, source: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    throw new TypeError(`${source} has a malformed percent-encoding`)
  }
}

function queryInt(query: URLSearchParams, name: string): number | undefined {
  const v = query.get(name)
  if (v === null) return undefined
  const n = Number(v)
  if (v.trim() === '' || !Number.isInteger(n)) throw new TypeError(`URL parameter ${name} must be an integer`)
  return n
}

/** A timeout in ms: 1..2^31-1, or `Infinity` for none (resolved as 0). */
function timeoutOption(name: string, value: number): number {
  if (value === Number.POSITIVE_INFINITY) return 0
  return intOption(name, value, 1, 2 ** 31 - 1)
}

function intOption(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer between ${min} and ${max}, got ${String(value)}`)
  }
  return value
}
