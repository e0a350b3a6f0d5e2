// Spans of sends and deliveries, after OpenTelemetry's semantic conventions for messaging
// (RabbitMQ, v1.44.0). Everything here runs only when `@opentelemetry/api` was found and an SDK
// registered a tracer provider: with the API alone (its no-op provider), `tracer()` answers
// undefined and a send stays exactly what it is untraced, plain options and fast path included.
import type { Context, Span, TextMapGetter, Tracer, TracerProvider } from '@opentelemetry/api'
import type { LapinError } from '../errors.js'
import { type OtelApi, otel } from './otel.js'

/** The name of lapinmq's tracer (its instrumentation scope). */
export const tracerName = 'lapinmq'

/** How a delivery ended, as its process span says (`lapinmq.settle.outcome`). */
export type TracedOutcome = 'ack' | 'reject' | 'requeue' | 'retried' | 'dead-lettered'

/** The provider the API answers when no SDK registered one. */
let noopProvider: TracerProvider | undefined
let lastProvider: TracerProvider | undefined
let lastTracer: Tracer | undefined

/**
 * @internal lapinmq's tracer, or undefined when nothing would record a span: the API not
 * installed (or not loaded yet: see `loadOtel`), or no SDK registered. A few property reads.
 */
export function tracer(): Tracer | undefined {
  const api = otel()
  if (api === undefined) return undefined
  let provider = api.trace.getTracerProvider()
  if (provider instanceof api.ProxyTracerProvider) {
    // No SDK: the proxy delegates to the API's no-op provider.
    noopProvider ??= new api.ProxyTracerProvider().getDelegate()
    provider = provider.getDelegate()
    if (provider === noopProvider) return undefined
  }
  if (provider !== lastProvider) {
    lastProvider = provider
    lastTracer = provider.getTracer(tracerName)
  }
  return lastTracer
}

/** What a span needs of a message's properties. */
export interface TracedProperties {
  readonly messageId?: string | undefined
  readonly correlationId?: string | undefined
  readonly headers?: Record<string, unknown> | undefined
}

/**
 * @internal A span of one send (or one RPC call), and the headers that carry its context, or
 * undefined when tracing is off. `node` is the connection's `host:port`.
 */
export function startSendSpan(
  exchange: string,
  routingKey: string,
  properties: TracedProperties,
  bodySize: number,
  node: string | undefined,
): { span: Span; headers: Record<string, unknown> | undefined } | undefined {
  const t = tracer()
  if (t === undefined) return undefined
  const api = otel() as OtelApi
  const temporary = exchange === '' && isServerNamed(routingKey)
  const destination = sendDestination(exchange, routingKey)
  const attributes = common('send', 'publish', destination, properties, bodySize, node)
  if (routingKey !== '') attributes['messaging.rabbitmq.destination.routing_key'] = routingKey
  if (temporary) {
    attributes['messaging.destination.temporary'] = true
    attributes['messaging.destination.anonymous'] = true
  }
  const name = temporary ? 'publish' : `publish ${destination}`
  const parent = api.context.active()
  const span = t.startSpan(name, { kind: api.SpanKind.PRODUCER, attributes }, parent)
  const carrier: Record<string, unknown> = {}
  api.propagation.inject(api.trace.setSpan(parent, span), carrier)
  // Something was injected (a propagator is registered): the message carries it.
  const own = properties.headers
  const headers = !hasKeys(carrier) ? undefined : own === undefined ? carrier : { ...own, ...carrier }
  return { span, headers }
}

function hasKeys(object: Record<string, unknown>): boolean {
  for (const _ in object) return true
  return false
}

/** @internal Ends a send's span with its outcome: the error's code as `error.type`. */
export function endSendSpan(span: Span, error: LapinError | undefined): void {
  if (error !== undefined) {
    const api = otel() as OtelApi
    span.setAttribute('error.type', error.code)
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: `${error.code}: ${error.message}` })
  }
  span.end()
}

/** Reads a context from AMQP headers, whose long strings may arrive as Buffers. */
const headerGetter: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key]
    if (typeof value === 'string') return value
    if (Buffer.isBuffer(value)) return value.toString('utf8')
    return undefined
  },
}

/** @internal What a process span needs of a delivery. */
export interface TracedDelivery {
  readonly exchange: string
  readonly routingKey: string
  readonly deliveryTag: number
  readonly body: Buffer
  readonly properties: TracedProperties
}

/**
 * @internal The span of one delivery's processing, from its arrival to its settle. Its task runs
 * in {@link ProcessSpan.context}, so what the task publishes is its child.
 */
export class ProcessSpan {
  readonly span: Span
  readonly context: Context
  #ended = false

  constructor(span: Span, context: Context) {
    this.span = span
    this.context = context
  }

  /** Runs `fn(arg)` in the span's context. */
  run<A, R>(fn: (arg: A) => R, arg: A): R {
    return (otel() as OtelApi).context.with(this.context, fn, undefined, arg)
  }

  /**
   * Ends the span once with the settle's outcome; `stale`: the settle was dropped (its channel
   * had closed, the broker requeued the message). Later calls do nothing.
   */
  end(outcome: TracedOutcome, stale: boolean): void {
    if (this.#ended) return
    this.#ended = true
    const span = this.span
    span.setAttribute('lapinmq.settle.outcome', outcome)
    if (stale) span.setAttribute('lapinmq.settle.stale', true)
    if (outcome !== 'ack') {
      span.setAttribute('error.type', outcome)
      span.setStatus({ code: (otel() as OtelApi).SpanStatusCode.ERROR, message: `settled as ${outcome}` })
    }
    span.end()
  }
}

/**
 * @internal A process span for a delivery from `queue`, its parent the context its headers carry,
 * or undefined when tracing is off.
 */
export function startProcessSpan(
  delivery: TracedDelivery,
  queue: string,
  node: string | undefined,
  temporary = false,
): ProcessSpan | undefined {
  const t = tracer()
  if (t === undefined) return undefined
  const api = otel() as OtelApi
  const { exchange, routingKey, properties } = delivery
  const headers = properties.headers
  const parent =
    headers === undefined
      ? api.ROOT_CONTEXT
      : api.propagation.extract(api.ROOT_CONTEXT, headers, headerGetter)
  if (isServerNamed(queue)) temporary = true
  const destination = processDestination(exchange, routingKey, queue)
  const attributes = common('process', 'process', destination, properties, delivery.body.length, node)
  if (routingKey !== '') attributes['messaging.rabbitmq.destination.routing_key'] = routingKey
  attributes['messaging.rabbitmq.message.delivery_tag'] = delivery.deliveryTag
  if (temporary) {
    attributes['messaging.destination.temporary'] = true
    attributes['messaging.destination.anonymous'] = true
  }
  const name = temporary ? 'process' : `process ${destination}`
  const span = t.startSpan(name, { kind: api.SpanKind.CONSUMER, attributes }, parent)
  return new ProcessSpan(span, api.trace.setSpan(parent, span))
}

/** The attributes every span has. */
function common(
  type: 'send' | 'process',
  name: string,
  destination: string,
  properties: TracedProperties,
  bodySize: number,
  node: string | undefined,
): Record<string, string | number | boolean> {
  const attributes: Record<string, string | number | boolean> = {
    'messaging.system': 'rabbitmq',
    'messaging.operation.type': type,
    'messaging.operation.name': name,
    'messaging.destination.name': destination,
    'messaging.message.body.size': bodySize,
  }
  const { messageId, correlationId } = properties
  if (typeof messageId === 'string') attributes['messaging.message.id'] = messageId
  if (typeof correlationId === 'string') attributes['messaging.message.conversation_id'] = correlationId
  if (node !== undefined) {
    const server = serverOf(node)
    attributes['server.address'] = server.address
    if (server.port !== undefined) attributes['server.port'] = server.port
  }
  return attributes
}

/** A queue the broker named (`amq.gen-…`) or a direct reply-to address: temporary and anonymous, never a span's name. */
function isServerNamed(queue: string): boolean {
  return queue.startsWith('amq.gen-') || queue.startsWith('amq.rabbitmq.reply-to')
}

/** `{exchange}:{routing key}`, the one that is not empty, or `amq.default` (semconv RabbitMQ, send). */
export function sendDestination(exchange: string, routingKey: string): string {
  if (exchange !== '' && routingKey !== '') return `${exchange}:${routingKey}`
  return exchange || routingKey || 'amq.default'
}

/**
 * `{exchange}:{routing key}:{queue}` with the empty ones left out, and the queue left out when it is
 * the routing key (semconv RabbitMQ, process).
 */
export function processDestination(exchange: string, routingKey: string, queue: string): string {
  const parts: string[] = []
  if (exchange !== '') parts.push(exchange)
  if (routingKey !== '') parts.push(routingKey)
  if (queue !== '' && queue !== routingKey) parts.push(queue)
  return parts.length > 0 ? parts.join(':') : 'amq.default'
}

let lastNode: string | undefined
let lastServer: { address: string; port: number | undefined } = { address: '', port: undefined }

/** `host:port` (an IPv6 host in brackets) as `server.address` and `server.port`. */
export function serverOf(node: string): { address: string; port: number | undefined } {
  if (node === lastNode) return lastServer
  const colon = node.lastIndexOf(':')
  const port = colon === -1 ? undefined : Number(node.slice(colon + 1))
  let address = colon === -1 ? node : node.slice(0, colon)
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1)
  lastNode = node
  lastServer = { address, port: Number.isInteger(port) ? port : undefined }
  return lastServer
}

/** @internal Whether a component traces: its own option, else its connection's. */
export function tracingWanted(own: boolean | undefined, connection: boolean | undefined): boolean {
  return own ?? connection ?? true
}

/** @internal Checks a `tracing` option. */
export function checkTracing(value: unknown): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') throw new TypeError('tracing must be true or false')
  return value
}
