// Topology: the exchanges, queues and bindings an application needs, checked at the call, mapped to
// AMQP's declare arguments, and declared in dependency order on a channel session. A connection
// keeps what was declared through it and declares it again after each recovery; publishers and
// consumers declare theirs on each channel they open.
import type { ChannelSession } from '../amqp/channel-session.js'
import { LapinError, toLapinError } from '../errors.js'
import { checkInt, checkShortString, checkTable } from '../util/validate.js'

/** The routing of an exchange: by exact key, to every queue, by pattern, or by headers. */
export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers'

/** The kind of a queue (`x-queue-type`): RabbitMQ's classic queue, a replicated quorum queue, or an append-only stream. */
export type QueueType = 'classic' | 'quorum' | 'stream'

/** What a full queue (`maxLength`) does with the next message (`x-overflow`). */
export type QueueOverflow = 'drop-head' | 'reject-publish' | 'reject-publish-dlx'

/** An exchange to declare. */
export interface ExchangeDeclaration {
  /** Its name (not `''` and not `amq.*`, which the broker reserves). */
  name: string
  /** How it routes. */
  type: ExchangeType
  /**
   * Survives a broker restart. A non-durable exchange is gone after one (lapinmq declares it again
   * after recovering the connection).
   * @default true
   */
  durable?: boolean
  /**
   * Deleted by the broker when its last binding is removed.
   * @default false
   */
  autoDelete?: boolean
  /**
   * Takes no publish from clients: only exchange-to-exchange bindings route into it.
   * @default false
   */
  internal?: boolean
  /**
   * Where messages go that this exchange cannot route (`alternate-exchange`); declared before this
   * one when it is in the same topology.
   * @default none: an unroutable message is returned (mandatory) or dropped
   */
  alternateExchange?: string
  /**
   * Other exchange arguments, as AMQP field table values.
   * @default {}
   */
  arguments?: Record<string, unknown>
}

/** A queue to declare. */
export interface QueueDeclaration {
  /** Its name (not `''` and not `amq.*`). */
  name: string
  /**
   * Its type (`x-queue-type`). Quorum queues and streams are durable, never exclusive nor auto-deleted.
   * @default none: the broker's default (classic, unless the vhost says otherwise)
   */
  type?: QueueType
  /**
   * Survives a broker restart (its persistent messages too). A non-durable queue loses its messages
   * when the broker stops.
   * @default true
   */
  durable?: boolean
  /**
   * Used by this connection only, deleted when it closes (declared again after a recovery).
   * @default false
   */
  exclusive?: boolean
  /**
   * Deleted by the broker once its last consumer is cancelled.
   * @default false
   */
  autoDelete?: boolean
  /**
   * Where rejected, expired and dropped messages go (`x-dead-letter-exchange`; `''` is the default exchange).
   * @default none
   */
  deadLetterExchange?: string
  /**
   * The routing key dead-lettered messages get (`x-dead-letter-routing-key`); needs `deadLetterExchange`.
   * @default the message's own routing key
   */
  deadLetterRoutingKey?: string
  /**
   * How long a message may wait in the queue, in ms (`x-message-ttl`).
   * @default none: no expiry
   */
  messageTtl?: number
  /**
   * Most ready messages the queue holds (`x-max-length`); see `overflow`.
   * @default none: no limit
   */
  maxLength?: number
  /**
   * What a full queue does (`x-overflow`).
   * @default 'drop-head' (the broker's)
   */
  overflow?: QueueOverflow
  /**
   * Other queue arguments, e.g. `x-delivery-limit`, `x-max-length-bytes`.
   * @default {}
   */
  arguments?: Record<string, unknown>
}

/** Routes what `exchange` matches with `routingKey` (or, on a headers exchange, `arguments`) to `queue`. */
export interface QueueBinding {
  /** The source exchange. */
  exchange: string
  /** The queue that receives. */
  queue: string
  /**
   * The binding key: an exact key (direct), a pattern with `*` and `#` (topic), ignored by fanout and headers.
   * @default ''
   */
  routingKey?: string
  /**
   * Binding arguments; a headers exchange matches on them (`x-match`: `'all'` or `'any'`).
   * @default {}
   */
  arguments?: Record<string, unknown>
}

/** An exchange-to-exchange binding: what `exchange` matches goes on to `toExchange`, which routes it again. */
export interface ExchangeBinding {
  /** The source exchange. */
  exchange: string
  /** The destination exchange. */
  toExchange: string
  /**
   * The binding key, as for a queue binding.
   * @default ''
   */
  routingKey?: string
  /**
   * Binding arguments, as for a queue binding.
   * @default {}
   */
  arguments?: Record<string, unknown>
}

/** A binding: to a queue, or to another exchange. */
export type BindingDeclaration = QueueBinding | ExchangeBinding

/**
 * Exchanges, queues and bindings to declare, in that order (an exchange's alternate exchange before
 * it). A binding may name exchanges and queues declared elsewhere.
 */
export interface Topology {
  /**
   * Exchanges, declared first (each after its alternate exchange).
   * @default []
   */
  exchanges?: readonly ExchangeDeclaration[]
  /**
   * Queues, declared after the exchanges.
   * @default []
   */
  queues?: readonly QueueDeclaration[]
  /**
   * Bindings, declared last.
   * @default []
   */
  bindings?: readonly BindingDeclaration[]
}

/** @internal One declaration, checked and mapped, ready to send; `key` identifies what it declares. */
export interface PlannedStep {
  readonly key: string
  /** Names it in errors, e.g. `queue 'billing' (topology.queues[0])`. */
  readonly what: string
  /** The exchange it declares, for the connection's record of known exchanges. */
  readonly exchange?: string
  /** The alternate exchange that exchange names, declared before it. */
  readonly alternate?: string | undefined
  run(session: ChannelSession): Promise<unknown>
}

/** @internal A checked topology: its declarations in the order they go out. */
export interface TopologyPlan {
  readonly steps: readonly PlannedStep[]
}

const exchangeTypes: ReadonlySet<string> = new Set(['direct', 'fanout', 'topic', 'headers'])
const queueTypes: ReadonlySet<string> = new Set(['classic', 'quorum', 'stream'])
const overflows: ReadonlySet<string> = new Set(['drop-head', 'reject-publish', 'reject-publish-dlx'])

/**
 * @internal Checks a topology (TypeError/RangeError naming the field, e.g. `topology.queues[1].messageTtl`)
 * and orders its declarations: exchanges (alternate exchanges first), queues, bindings.
 */
export function planTopology(topology: Topology, where = 'topology'): TopologyPlan {
  if (typeof topology !== 'object' || topology === null || Array.isArray(topology)) {
    throw new TypeError(`${where} must be an object with exchanges, queues and bindings`)
  }
  for (const key of Object.keys(topology)) {
    if (key !== 'exchanges' && key !== 'queues' && key !== 'bindings') {
      throw new TypeError(`${where} has an unknown field '${key}' (exchanges, queues, bindings)`)
    }
  }
  const exchanges = listOf(topology.exchanges, `${where}.exchanges`).map((e, i) =>
    planExchange(e as ExchangeDeclaration, `${where}.exchanges[${i}]`),
  )
  const queues = listOf(topology.queues, `${where}.queues`).map((q, i) =>
    planQueue(q as QueueDeclaration, `${where}.queues[${i}]`),
  )
  const bindings = listOf(topology.bindings, `${where}.bindings`).map((b, i) =>
    planBinding(b as BindingDeclaration, `${where}.bindings[${i}]`),
  )
  return { steps: [...alternatesFirst(exchanges), ...queues, ...bindings] }
}

/** @internal Declares a plan's steps in order; a refusal names the declaration it refused. */
export async function declareTopology(session: ChannelSession, plan: TopologyPlan): Promise<void> {
  for (const step of plan.steps) {
    try {
      await step.run(session)
    } catch (err) {
      const error = toLapinError(err, `could not declare ${step.what}`)
      if (error.replyCode === undefined) throw error
      const text = error.replyText ?? error.message
      throw new LapinError(error.code, `could not declare ${step.what}: ${brokerText(text)}`, {
        cause: error,
        replyCode: error.replyCode,
        replyText: error.replyText,
      })
    }
  }
}

/**
 * @internal What a connection declared through `declare()`: each exchange, queue and binding kept
 * once (the latest declaration of it), in the order a redeclare after recovery sends them.
 */
export class TopologyRecord {
  readonly #steps = new Map<string, PlannedStep>()

  get size(): number {
    return this.#steps.size
  }

  /** Adds a plan's steps; returns an undo that removes the ones that were not there before. */
  add(plan: TopologyPlan): () => void {
    const before = new Map<string, PlannedStep | undefined>()
    for (const step of plan.steps) {
      if (!before.has(step.key)) before.set(step.key, this.#steps.get(step.key))
      // Deleted first so that a step moves to the end: after what it depends on.
      this.#steps.delete(step.key)
      this.#steps.set(step.key, step)
    }
    return () => {
      for (const [key, step] of before) {
        if (step === undefined) this.#steps.delete(key)
        else this.#steps.set(key, step)
      }
    }
  }

  /**
   * Forgets an exchange or queue that was deleted, and the bindings that named it (the broker
   * dropped them with it): a recovery must not bring back what the user deleted.
   */
  forget(kind: 'exchange' | 'queue', name: string): void {
    this.#steps.delete(`${kind === 'exchange' ? 'e' : 'q'}:${name}`)
    for (const key of [...this.#steps.keys()]) {
      if (!key.startsWith('b:')) continue
      const [, source = '', destination = ''] = /^b:[qe]:([^\0]*)\0([^\0]*)\0/.exec(key) ?? []
      const destinationKind = key.startsWith('b:q:') ? 'queue' : 'exchange'
      const named =
        (kind === 'exchange' && source === name) || (kind === destinationKind && destination === name)
      if (named) this.#steps.delete(key)
    }
  }

  /** Everything recorded, in dependency order: exchanges, queues, then bindings. */
  plan(): TopologyPlan {
    const steps = [...this.#steps.values()]
    const rank = (s: PlannedStep): number => (s.key.startsWith('e:') ? 0 : s.key.startsWith('q:') ? 1 : 2)
    const exchanges = alternatesFirst(steps.filter((s) => rank(s) === 0))
    return {
      steps: [...exchanges, ...steps.filter((s) => rank(s) === 1), ...steps.filter((s) => rank(s) === 2)],
    }
  }
}

function listOf(value: unknown, where: string): readonly unknown[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new TypeError(`${where} must be an array`)
  return value
}

function checkObject(value: unknown, where: string): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${where} must be an object`)
  }
}

function checkBoolean(value: unknown, where: string): void {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new TypeError(`${where} must be true or false, got ${typeof value}`)
  }
}

/** @internal A name the broker lets a client declare: not empty, at most 255 bytes, not `amq.*`. */
export function checkDeclarableName(value: unknown, where: string): asserts value is string {
  checkShortString(where, value)
  if (value === '') throw new TypeError(`${where} must not be empty`)
  if (value.startsWith('amq.'))
    throw new RangeError(`${where} must not start with 'amq.' (reserved by the broker)`)
}

function checkOneOf(value: unknown, allowed: ReadonlySet<string>, where: string): void {
  if (typeof value !== 'string' || !allowed.has(value)) {
    const names = [...allowed].map((a) => `'${a}'`).join(', ')
    throw new TypeError(`${where} must be one of ${names}, got ${String(value)}`)
  }
}

/** The declaration's own arguments, with a named field's argument set; the same argument given both ways must agree. */
function withArgument(args: Record<string, unknown>, key: string, value: unknown, where: string): void {
  if (value === undefined) return
  if (key in args && args[key] !== value) {
    throw new TypeError(`${where}.arguments['${key}'] contradicts the field that sets it (${String(value)})`)
  }
  args[key] = value
}

function copyArguments(value: unknown, where: string): Record<string, unknown> {
  if (value === undefined) return {}
  checkTable(`${where}.arguments`, value)
  return { ...(value as Record<string, unknown>) }
}

function planExchange(e: ExchangeDeclaration, where: string): PlannedStep {
  checkObject(e, where)
  checkDeclarableName(e.name, `${where}.name`)
  checkOneOf(e.type, exchangeTypes, `${where}.type`)
  checkBoolean(e.durable, `${where}.durable`)
  checkBoolean(e.autoDelete, `${where}.autoDelete`)
  checkBoolean(e.internal, `${where}.internal`)
  const args = copyArguments(e.arguments, where)
  if (e.alternateExchange !== undefined) checkShortString(`${where}.alternateExchange`, e.alternateExchange)
  withArgument(args, 'alternate-exchange', e.alternateExchange, where)
  const { name, type } = e
  const options = {
    durable: e.durable ?? true,
    autoDelete: e.autoDelete ?? false,
    internal: e.internal ?? false,
    arguments: args,
  }
  const alternate = args['alternate-exchange']
  return {
    key: `e:${name}`,
    what: `exchange '${name}' (${where})`,
    exchange: name,
    alternate: typeof alternate === 'string' ? alternate : undefined,
    run: (session) => session.assertExchange(name, type, options),
  }
}

function planQueue(q: QueueDeclaration, where: string): PlannedStep {
  checkObject(q, where)
  checkDeclarableName(q.name, `${where}.name`)
  if (q.type !== undefined) checkOneOf(q.type, queueTypes, `${where}.type`)
  checkBoolean(q.durable, `${where}.durable`)
  checkBoolean(q.exclusive, `${where}.exclusive`)
  checkBoolean(q.autoDelete, `${where}.autoDelete`)
  const args = copyArguments(q.arguments, where)
  withArgument(args, 'x-queue-type', q.type, where)
  if (q.deadLetterExchange !== undefined)
    checkShortString(`${where}.deadLetterExchange`, q.deadLetterExchange)
  withArgument(args, 'x-dead-letter-exchange', q.deadLetterExchange, where)
  if (q.deadLetterRoutingKey !== undefined) {
    checkShortString(`${where}.deadLetterRoutingKey`, q.deadLetterRoutingKey)
    if (q.deadLetterExchange === undefined && !('x-dead-letter-exchange' in args)) {
      throw new TypeError(
        `${where}.deadLetterRoutingKey needs deadLetterExchange ('' for the default exchange)`,
      )
    }
  }
  withArgument(args, 'x-dead-letter-routing-key', q.deadLetterRoutingKey, where)
  if (q.messageTtl !== undefined) checkInt(`${where}.messageTtl`, q.messageTtl, 0, 2 ** 32 - 1)
  withArgument(args, 'x-message-ttl', q.messageTtl, where)
  if (q.maxLength !== undefined) checkInt(`${where}.maxLength`, q.maxLength, 0, Number.MAX_SAFE_INTEGER)
  withArgument(args, 'x-max-length', q.maxLength, where)
  if (q.overflow !== undefined) checkOneOf(q.overflow, overflows, `${where}.overflow`)
  withArgument(args, 'x-overflow', q.overflow, where)
  const durable = q.durable ?? true
  const exclusive = q.exclusive ?? false
  const autoDelete = q.autoDelete ?? false
  const type = args['x-queue-type']
  if ((type === 'quorum' || type === 'stream') && (!durable || exclusive || autoDelete)) {
    throw new RangeError(`${where}: a ${type} queue is durable, never exclusive nor autoDelete`)
  }
  const { name } = q
  const options = { durable, exclusive, autoDelete, arguments: args }
  return {
    key: `q:${name}`,
    what: `queue '${name}' (${where})`,
    run: (session) => session.assertQueue(name, options),
  }
}

function planBinding(b: BindingDeclaration, where: string): PlannedStep {
  checkObject(b, where)
  checkShortString(`${where}.exchange`, b.exchange)
  // The default exchange binds every queue by its name and takes no bindings of its own.
  if (b.exchange === '')
    throw new TypeError(`${where}.exchange must not be empty (the default exchange takes no bindings)`)
  const routingKey = b.routingKey ?? ''
  checkShortString(`${where}.routingKey`, routingKey)
  const args = copyArguments(b.arguments, where)
  const toQueue = 'queue' in b && b.queue !== undefined
  const toExchange = 'toExchange' in b && b.toExchange !== undefined
  if (toQueue === toExchange) throw new TypeError(`${where} must have either queue or toExchange`)
  const { exchange } = b
  const argsKey = JSON.stringify(Object.entries(args).sort(([a], [c]) => (a < c ? -1 : 1)))
  if (toQueue) {
    const { queue } = b as QueueBinding
    checkShortString(`${where}.queue`, queue)
    if (queue === '') throw new TypeError(`${where}.queue must not be empty`)
    return {
      key: `b:q:${exchange}\0${queue}\0${routingKey}\0${argsKey}`,
      what: `the binding of queue '${queue}' to exchange '${exchange}' (${where})`,
      run: (session) => session.bindQueue(queue, exchange, routingKey, args),
    }
  }
  const destination = (b as ExchangeBinding).toExchange
  checkShortString(`${where}.toExchange`, destination)
  if (destination === '') throw new TypeError(`${where}.toExchange must not be empty`)
  return {
    key: `b:e:${exchange}\0${destination}\0${routingKey}\0${argsKey}`,
    what: `the binding of exchange '${destination}' to exchange '${exchange}' (${where})`,
    run: (session) => session.bindExchange(destination, exchange, routingKey, args),
  }
}

/** Exchanges in their order, each after the alternate exchange it names (when that is in the list; cycles are cut). */
function alternatesFirst(exchanges: readonly PlannedStep[]): PlannedStep[] {
  const byName = new Map(exchanges.map((e) => [e.exchange, e]))
  const out: PlannedStep[] = []
  const placed = new Set<PlannedStep>()
  const place = (e: PlannedStep, visiting: Set<PlannedStep>): void => {
    if (placed.has(e) || visiting.has(e)) return
    visiting.add(e)
    const alternate = e.alternate === undefined ? undefined : byName.get(e.alternate)
    if (alternate) place(alternate, visiting)
    placed.add(e)
    out.push(e)
  }
  for (const e of exchanges) place(e, new Set())
  return out
}

/** The broker's reason without amqplib's wrapping ("Channel closed by server: 406 (...) with message"). */
function brokerText(text: string): string {
  const quoted = /with message "(.*)"$/s.exec(text)
  return quoted ? (quoted[1] as string) : text
}
