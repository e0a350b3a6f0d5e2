// A connection's side channel: the one channel exchange checks and topology declarations run on,
// one at a time, and what they taught the connection: the exchanges known to exist (or to refuse
// publishes) on the current AMQP connection, and the topology declared, declared again on every
// new AMQP connection before anyone else gets it.
import type { ChannelSession } from '../amqp/channel-session.js'
import type { AmqpLink } from '../amqp/connect.js'
import { LapinError } from '../errors.js'
import {
  declareTopology,
  type PlannedStep,
  planTopology,
  type Topology,
  type TopologyPlan,
  TopologyRecord,
} from '../topology/topology.js'
import { unlessAborted } from '../util/waiters.js'
import { KnownExchanges } from './known-exchanges.js'

/** What the side channel needs of its connection. */
export interface SideChannelHost {
  /** The open AMQP connection, connecting first if needed. */
  link(): Promise<AmqpLink>
  /** The AMQP connection open now, if any. */
  current(): AmqpLink | undefined
  /** How long the broker has to answer a check or a declaration: `connectionTimeout`, if any. */
  answerDeadline(): AbortSignal | undefined
}

/** What {@link SideChannel.redeclare} did on a new AMQP connection. */
export interface Redeclared {
  /** The channel it declared on, the new connection's side channel; none when the last declaration was refused. */
  session: ChannelSession | undefined
  /** The declarations the broker took. */
  plan: TopologyPlan
  /** The broker's refusals, one per declaration refused. */
  refused: LapinError[]
}

/** The side channel open now, and the connection it is on. */
interface OpenSide {
  link: AmqpLink
  opening: Promise<ChannelSession>
  session: ChannelSession
}

/** @internal A connection's side channel and what it learned (see the file's head). */
export class SideChannel {
  readonly #host: SideChannelHost
  /** Checks and declarations, one at a time. */
  #work: Promise<void> = Promise.resolve()
  /** The channel they run on, opened at the first one. */
  #session: Promise<ChannelSession> | undefined
  /** What the current AMQP connection knows of exchanges. */
  readonly #exchanges = new KnownExchanges()
  /** What declare() declared: declared again on every new AMQP connection. */
  readonly #topology = new TopologyRecord()

  constructor(host: SideChannelHost) {
    this.#host = host
  }

  /** Whether `exchange` is known to exist on the current AMQP connection. */
  exchangeKnown(exchange: string): boolean {
    return this.#exchanges.has(exchange)
  }

  /** Checks passively that an exchange exists (see `Connection.checkExchange`). */
  checkExchange(exchange: string): Promise<void> {
    const check = this.#work.then(() => this.#checkExchange(exchange))
    this.#work = check.catch(noop)
    return check
  }

  /** Declares a topology now and keeps it (see `Connection.declare`). */
  declare(topology: Topology): Promise<void> {
    const plan = planTopology(topology)
    const declared = this.#work.then(async () => {
      // Kept before it is sent: a recovery in the meantime declares it on the new connection too.
      const undo = this.#topology.add(plan)
      try {
        const side = await this.#open()
        const declaring = unlessAborted(
          declareTopology(side.session, plan),
          this.#host.answerDeadline(),
          () => {
            // No answer: the side channel is given up on, and the next use opens another.
            side.session.close().catch(noop)
            return new LapinError('CONNECTION_FAILED', 'no answer to the declaration of the topology')
          },
        )
        await this.#await(side, declaring)
        if (this.#host.current() === side.link) this.#exchanges.learnPlan(plan)
      } catch (err) {
        undo()
        throw err
      }
    })
    this.#work = declared.catch(noop)
    return declared
  }

  /** Stops declaring `name` again (deleted); an exchange is no longer known either. */
  forgetDeclared(kind: 'exchange' | 'queue', name: string): void {
    this.#topology.forget(kind, name)
    if (kind === 'exchange') this.forgetExchange(name)
  }

  /** An exchange the broker said is missing after all (deleted since its check). */
  forgetExchange(exchange: string): void {
    this.#exchanges.forget(exchange)
  }

  /** An exchange that exists but takes no publish: its checks fail with `error` until the connection is lost. */
  refuseExchange(exchange: string, error: LapinError): void {
    this.#exchanges.refuse(exchange, error)
  }

  /**
   * Declares what declare() declared on a new AMQP connection, before it is handed to anyone, on
   * the channel that becomes its side channel; undefined when nothing was declared. A declaration
   * the broker refuses is counted in `refused` and the rest still goes out; no answer before the
   * deadline or `abort`, or the connection failing meanwhile, rejects (and closes `model`).
   */
  async redeclare(model: AmqpLink, abort: AbortSignal): Promise<Redeclared | undefined> {
    if (this.#topology.size === 0) return undefined
    const plan = this.#topology.plan()
    const refused: LapinError[] = []
    const declared: PlannedStep[] = []
    let session: ChannelSession | undefined
    try {
      for (const step of plan.steps) {
        session ??= await model.openChannel(false)
        const signal = this.#host.answerDeadline()
        const declaring = declareTopology(session, { steps: [step] })
        const deadline = signal ? AbortSignal.any([signal, abort]) : abort
        try {
          await unlessAborted(
            declaring,
            deadline,
            () =>
              new LapinError(
                'CONNECTION_FAILED',
                `no answer to the declaration of ${step.what} after recovery`,
              ),
          )
          declared.push(step)
        } catch (err) {
          // The broker refused this one (its channel is closed): the rest still goes out, on a new channel.
          if (!(err instanceof LapinError && err.replyCode !== undefined) || !model.sending) throw err
          refused.push(err)
          session.close().catch(noop)
          session = undefined
        }
      }
    } catch (err) {
      // No answer, or the connection failed meanwhile: a failed connect, retried like any other.
      session?.close().catch(noop)
      await model.close().catch(noop)
      throw err
    }
    return { session, plan: { steps: declared }, refused }
  }

  /**
   * A new AMQP connection is in place: what was known of exchanges is forgotten (they can be gone
   * after a recovery) but for what `redeclared` declared, whose channel becomes the side channel
   * (without one, the next check or declaration opens it).
   */
  attach(redeclared: Redeclared | undefined): void {
    this.#exchanges.reset()
    this.#session = redeclared?.session ? Promise.resolve(redeclared.session) : undefined
    if (redeclared) this.#exchanges.learnPlan(redeclared.plan)
  }

  async #checkExchange(exchange: string): Promise<void> {
    if (this.exchangeKnown(exchange)) return
    const refused = this.#exchanges.refusal(exchange)
    if (refused) throw refused
    const side = await this.#open()
    const { link, session } = side
    const check = unlessAborted(session.checkExchange(exchange), this.#host.answerDeadline(), () => {
      // No answer: the side channel is given up on, and the next check opens another.
      session.close().catch(noop)
      return new LapinError('CONNECTION_FAILED', `no answer to the check of exchange '${exchange}'`)
    })
    await this.#await(side, check)
    if (this.#host.current() === link) this.#exchanges.learn(exchange)
  }

  /** The side channel (opened at its first use), and the connection it is on. */
  async #open(): Promise<OpenSide> {
    const link = await this.#host.link()
    this.#session ??= link.openChannel(false)
    const opening = this.#session
    try {
      return { link, opening, session: await opening }
    } catch (err) {
      if (this.#session === opening) this.#session = undefined
      throw err
    }
  }

  /**
   * Waits for work on the side channel. A failure that closed it (404, 406) has the next use open
   * another; so does one the broker did not answer (a frame amqplib could not encode leaves a
   * request waiting for a reply that never comes, and every later one would queue behind it).
   */
  async #await(side: OpenSide, work: Promise<unknown>): Promise<void> {
    try {
      await work
    } catch (err) {
      const answered = err instanceof LapinError && err.replyCode !== undefined
      if ((!side.session.open || !answered) && this.#session === side.opening) {
        this.#session = undefined
        side.session.close().catch(noop)
      }
      throw err
    }
  }
}

const noop = (): void => {}
