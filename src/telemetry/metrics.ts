// The figures of stats() as OpenTelemetry metrics, when @opentelemetry/api is installed. Counters
// and gauges are observable: the SDK reads the very fields stats() reads when it collects, so the
// two always agree and a message costs nothing more. Durations also go to OpenTelemetry histograms,
// one record per duration (a no-op call until an SDK's MeterProvider is registered).
import type {
  Attributes,
  BatchObservableResult,
  Histogram,
  Meter,
  MeterProvider,
  Observable,
  ObservableCounter,
  ObservableGauge,
} from '@opentelemetry/api'
import { loadOtel, otel } from './otel.js'
import type { ConnectionCounters, ConsumerCounters, DurationHistogram, PublisherCounters } from './stats.js'

/** The version the meter is named with (the package's). */
const meterVersion = '0.1.0'
const system = 'rabbitmq'

/** @internal What the metrics read of a publisher. */
export interface PublisherSource {
  readonly counters: PublisherCounters
  buffered(): number
  inFlight(): number
  /** Its connection's name. */
  connection(): string
}

/** @internal What the metrics read of a consumer. */
export interface ConsumerSource {
  readonly counters: ConsumerCounters
  staleSettles(): number
  running(): number
  unsettled(): number
  queue(): string
  connection(): string
}

/** @internal What the metrics read of a connection. */
export interface ConnectionSource {
  readonly counters: ConnectionCounters
  connection(): string
}

interface Instruments {
  sent: ObservableCounter
  sends: ObservableCounter
  publishOutcomes: ObservableCounter
  republished: ObservableCounter
  buffered: ObservableGauge
  inFlight: ObservableGauge
  publishDuration: Histogram
  consumed: ObservableCounter
  redelivered: ObservableCounter
  settles: ObservableCounter
  retried: ObservableCounter
  deadLettered: ObservableCounter
  staleSettles: ObservableCounter
  running: ObservableGauge
  unsettled: ObservableGauge
  processDuration: Histogram
  disconnects: ObservableCounter
  reconnects: ObservableCounter
  blocks: ObservableCounter
  blockedTime: ObservableCounter
  blocked: ObservableGauge
}

const publishers = new Set<PublisherSource>()
const consumers = new Set<ConsumerSource>()
const connections = new Set<ConnectionSource>()
let instruments: Instruments | undefined
/** The provider the instruments were made from, their meter and its observables. */
let madeFrom: { provider: MeterProvider; meter: Meter; observables: Observable[] } | undefined

/** Buckets (s) OpenTelemetry's messaging conventions give for durations. */
const durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

/**
 * The instruments, made from the global MeterProvider, and made again (the histograms forwarded
 * anew) when another provider was registered since: the API has no proxy for metrics, so
 * instruments of the no-op provider would stay no-ops. Undefined without the API.
 */
function ensureInstruments(): Instruments | undefined {
  const api = otel()
  if (api === undefined) return undefined
  const provider = api.metrics.getMeterProvider()
  if (instruments && madeFrom?.provider === provider) return instruments
  if (madeFrom) madeFrom.meter.removeBatchObservableCallback(observe, madeFrom.observables)
  const meter = provider.getMeter('lapinmq', meterVersion)
  const counter = (name: string, description: string, unit = '{message}'): ObservableCounter =>
    meter.createObservableCounter(name, { description, unit })
  const gauge = (name: string, description: string, unit = '{message}'): ObservableGauge =>
    meter.createObservableGauge(name, { description, unit })
  const histogram = (name: string, description: string): Histogram =>
    meter.createHistogram(name, {
      description,
      unit: 's',
      advice: { explicitBucketBoundaries: durationBuckets },
    })
  const made: Instruments = {
    sent: counter('messaging.client.sent.messages', 'Messages written to a channel (stats().published)'),
    sends: counter('lapinmq.publisher.sends', 'Sends made (stats().sends)', '{send}'),
    publishOutcomes: counter(
      'lapinmq.publisher.outcomes',
      'Sends ended, by outcome: confirmed, returned, nacked, timed_out, failed',
      '{send}',
    ),
    republished: counter(
      'lapinmq.publisher.republished',
      'Sends put back to be written again on a new channel',
      '{send}',
    ),
    buffered: gauge('lapinmq.publisher.buffered', 'Sends waiting to be written', '{send}'),
    inFlight: gauge('lapinmq.publisher.in_flight', 'Messages written and not yet confirmed'),
    publishDuration: histogram(
      'messaging.client.operation.duration',
      "From a message's write to the broker's answer (stats().confirmLatency)",
    ),
    consumed: counter('messaging.client.consumed.messages', 'Messages delivered (stats().delivered)'),
    redelivered: counter('lapinmq.consumer.redelivered', 'Deliveries flagged redelivered'),
    settles: counter('lapinmq.consumer.settles', 'Deliveries settled, by outcome: ack, reject, requeue'),
    retried: counter('lapinmq.consumer.retried', 'Failed messages moved to a retry delay queue'),
    deadLettered: counter(
      'lapinmq.consumer.dead_lettered',
      "Failed messages moved to the retry ladder's dead-letter queue",
    ),
    staleSettles: counter('lapinmq.consumer.stale_settles', 'Settles dropped: their channel had closed'),
    running: gauge('lapinmq.consumer.running', 'Tasks running', '{task}'),
    unsettled: gauge('lapinmq.consumer.unsettled', 'Deliveries not yet settled'),
    processDuration: histogram('messaging.process.duration', 'Task durations (stats().taskDuration)'),
    disconnects: counter('lapinmq.connection.disconnects', 'Connections lost', '{disconnect}'),
    reconnects: counter('lapinmq.connection.reconnects', 'Connections recovered', '{reconnect}'),
    blocks: counter('lapinmq.connection.blocks', 'Times the broker blocked the connection', '{block}'),
    blockedTime: counter('lapinmq.connection.blocked.time', 'Time spent blocked by the broker', 's'),
    blocked: gauge('lapinmq.connection.blocked', '1 while the broker blocks the connection', '1'),
  }
  const observables: Observable[] = Object.values(made).filter(
    (instrument): instrument is Observable => 'addCallback' in instrument,
  )
  meter.addBatchObservableCallback(observe, observables)
  instruments = made
  madeFrom = { provider, meter, observables }
  for (const source of publishers)
    forward(source.counters.confirmLatency, made.publishDuration, publisherAttributes(source))
  for (const source of consumers)
    forward(source.counters.taskDuration, made.processDuration, consumerAttributes(source))
  return made
}

/**
 * The observations of one collection, summed where an instrument and its attributes are the same
 * (several publishers on one connection report as one).
 */
class Observations {
  readonly #rows = new Map<Observable, Map<string, { attributes: Attributes; value: number }>>()

  add(instrument: Observable, value: number, attributes: Attributes): void {
    let rows = this.#rows.get(instrument)
    if (rows === undefined) {
      rows = new Map()
      this.#rows.set(instrument, rows)
    }
    const key = JSON.stringify(attributes)
    const row = rows.get(key)
    if (row === undefined) rows.set(key, { attributes, value })
    else row.value += value
  }

  report(result: BatchObservableResult): void {
    for (const [instrument, rows] of this.#rows) {
      for (const { attributes, value } of rows.values()) result.observe(instrument, value, attributes)
    }
  }
}

/** `attributes` with `lapinmq.outcome`. */
function withOutcome(attributes: Attributes, outcome: string): Attributes {
  return { ...attributes, 'lapinmq.outcome': outcome }
}

function observe(result: BatchObservableResult): void {
  const i = instruments
  if (i === undefined) return
  const o = new Observations()
  for (const source of publishers) {
    const c = source.counters
    const a = publisherAttributes(source)
    o.add(i.sent, c.published, a)
    o.add(i.sends, c.sends, a)
    o.add(i.publishOutcomes, c.confirmed, withOutcome(a, 'confirmed'))
    o.add(i.publishOutcomes, c.returned, withOutcome(a, 'returned'))
    o.add(i.publishOutcomes, c.nacked, withOutcome(a, 'nacked'))
    o.add(i.publishOutcomes, c.timedOut, withOutcome(a, 'timed_out'))
    o.add(i.publishOutcomes, c.failed, withOutcome(a, 'failed'))
    o.add(i.republished, c.republished, a)
    o.add(i.buffered, source.buffered(), a)
    o.add(i.inFlight, source.inFlight(), a)
  }
  for (const source of consumers) {
    const c = source.counters
    const a = consumerAttributes(source)
    o.add(i.consumed, c.delivered, a)
    o.add(i.redelivered, c.redelivered, a)
    o.add(i.settles, c.acked, withOutcome(a, 'ack'))
    o.add(i.settles, c.rejected, withOutcome(a, 'reject'))
    o.add(i.settles, c.requeued, withOutcome(a, 'requeue'))
    o.add(i.retried, c.retried, a)
    o.add(i.deadLettered, c.deadLettered, a)
    o.add(i.staleSettles, source.staleSettles(), a)
    o.add(i.running, source.running(), a)
    o.add(i.unsettled, source.unsettled(), a)
  }
  for (const source of connections) {
    const c = source.counters
    const s = c.snapshot()
    const a = connectionAttributes(source)
    o.add(i.disconnects, s.disconnects, a)
    o.add(i.reconnects, s.reconnects, a)
    o.add(i.blocks, s.blocks, a)
    o.add(i.blockedTime, c.blockedMs / 1000, a)
    o.add(i.blocked, s.blocked ? 1 : 0, a)
  }
  o.report(result)
}

function publisherAttributes(source: PublisherSource): Attributes {
  return {
    'messaging.system': system,
    'messaging.operation.name': 'publish',
    'lapinmq.connection.name': source.connection(),
  }
}

function consumerAttributes(source: ConsumerSource): Attributes {
  return {
    'messaging.system': system,
    'messaging.operation.name': 'process',
    'messaging.destination.name': source.queue(),
    'lapinmq.connection.name': source.connection(),
  }
}

function connectionAttributes(source: ConnectionSource): Attributes {
  return { 'messaging.system': system, 'lapinmq.connection.name': source.connection() }
}

/** Records a duration histogram's values (ms) into `histogram` (s) with fixed attributes: no allocation per record. */
function forward(durations: DurationHistogram, histogram: Histogram, attributes: Attributes): void {
  durations.onRecord = (ms) => histogram.record(ms / 1000, attributes)
}

/** Runs `then` with the instruments once the API is loaded; never, without it. */
function withInstruments(then: (made: Instruments) => void): void {
  const made = ensureInstruments()
  if (made !== undefined) then(made)
  else
    loadOtel().then(
      () => {
        const loaded = ensureInstruments()
        if (loaded !== undefined) then(loaded)
      },
      () => {},
    )
}

/**
 * @internal Reports a started publisher's figures as OpenTelemetry metrics (when the API is
 * installed), until {@link unregisterPublisher}.
 */
export function registerPublisher(source: PublisherSource): void {
  publishers.add(source)
  withInstruments((made) => {
    if (publishers.has(source))
      forward(source.counters.confirmLatency, made.publishDuration, publisherAttributes(source))
  })
}

/** @internal The publisher stopped: no longer reported. */
export function unregisterPublisher(source: PublisherSource): void {
  publishers.delete(source)
  source.counters.confirmLatency.onRecord = undefined
}

/** @internal Reports a started consumer's figures, until {@link unregisterConsumer}. */
export function registerConsumer(source: ConsumerSource): void {
  consumers.add(source)
  withInstruments((made) => {
    if (consumers.has(source))
      forward(source.counters.taskDuration, made.processDuration, consumerAttributes(source))
  })
}

/** @internal The consumer stopped: no longer reported. */
export function unregisterConsumer(source: ConsumerSource): void {
  consumers.delete(source)
  source.counters.taskDuration.onRecord = undefined
}

/** @internal Reports a connection's figures, until {@link unregisterConnection}. */
export function registerConnection(source: ConnectionSource): void {
  connections.add(source)
  withInstruments(() => {})
}

/** @internal The connection closed: no longer reported. */
export function unregisterConnection(source: ConnectionSource): void {
  connections.delete(source)
}
