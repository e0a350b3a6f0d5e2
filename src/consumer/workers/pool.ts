// The worker threads of a worker-mode Consumer: a piscina pool (an optional peer dependency,
// imported only here and only when `workerThreads` is given) running entry.ts, which calls
// the user's task module. Bodies are moved to the workers, statuses come back; acks stay on the
// main thread. A task past its deadline is aborted, which makes piscina terminate its worker (and
// start a fresh one).
import { fileURLToPath } from 'node:url'
import { ConnectionClosedError, LapinError } from '../../errors.js'
import type { MessageProperties } from '../../properties.js'
import { type Message, MessageStatus } from '../message.js'
import type { WorkerReply } from '../options.js'

/** What the main thread sends a worker: `'probe'` (load the task module) or a message. */
export type WorkerJob =
  | 'probe'
  | {
      body: ArrayBuffer
      properties: MessageProperties
      redelivered: boolean
      routingKey: string
      exchange: string
      deliveryTag: number
      attempt: number
    }

/** What a worker answers for a message: a status, a reply, or `undefined` for junk. */
export type WorkerResult = string | WorkerReply | undefined

/** The part of piscina's API used here (its types stay out of lapinmq's declarations). */
interface Pool {
  run(job: WorkerJob, options?: { transferList?: ArrayBuffer[]; signal?: AbortSignal }): Promise<unknown>
  destroy(): Promise<void>
  on(event: 'error', listener: (err: unknown) => void): unknown
  readonly threads: readonly unknown[]
}
type PoolClass = new (options: Record<string, unknown>) => Pool

// The worker file next to this one: .js once built; .ts when lapinmq runs from its own sources
// (its tests, through tsx). Node 20 runs a worker with the parent's execArgv, but tsx registers its
// ESM loader in the main thread only: there the worker file loads through tsx's require hook, the
// task module through the loader worker-entry registers, and a `--import` of a .ts file (the test
// suite's setup) cannot load at all, so it is left out of the workers' execArgv.
const fromSources = import.meta.url.endsWith('.ts')
const entry = fileURLToPath(new URL(fromSources ? './entry.ts' : './entry.js', import.meta.url))

/** The workers' execArgv: the parent's (Node's default), less `--import <file.ts>` when run from sources. */
function workerExecArgv(): string[] | undefined {
  if (!fromSources) return undefined
  const argv: string[] = []
  const args = process.execArgv
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    if (arg === '--import' && /\.[cm]?ts$/.test(args[i + 1] ?? '')) i++
    else if (!/^--import=.*\.[cm]?ts$/.test(arg)) argv.push(arg)
  }
  return argv
}

export interface WorkerPoolOptions {
  threads: number
  /** `file:` URL of the task module. */
  taskModule: string
  /** Errors no task reports: a worker crashing while idle, a task returning HANDLED_VIA_CALLBACK. */
  onError: (error: LapinError) => void
}

/** A pool of worker threads running one task module: started by start(), terminated by stop(). */
export class WorkerPool {
  readonly #options: WorkerPoolOptions
  readonly #aborts = new Map<Message, AbortController>()
  #pool: Pool | undefined
  #starting: Promise<void> | undefined

  constructor(options: WorkerPoolOptions) {
    this.#options = options
  }

  /**
   * Loads piscina, starts the pool and loads the task module in a worker, so that a missing
   * piscina (`PISCINA_NOT_INSTALLED`) or a bad module (`TASK_MODULE_INVALID`) fails the start.
   */
  start(): Promise<void> {
    this.#starting ??= this.#start().catch((err: unknown) => {
      this.#starting = undefined
      throw err
    })
    return this.#starting
  }

  async #start(): Promise<void> {
    const options = this.#options
    let Piscina: PoolClass
    try {
      const mod = (await import('piscina')) as unknown as { Piscina?: PoolClass; default?: PoolClass }
      Piscina = (mod.Piscina ?? mod.default) as PoolClass
    } catch (err) {
      throw new LapinError(
        'PISCINA_NOT_INSTALLED',
        "workerThreads needs the optional peer dependency 'piscina': run `npm install piscina`",
        { cause: err },
      )
    }
    const pool = new Piscina({
      filename: entry,
      minThreads: options.threads,
      maxThreads: options.threads,
      concurrentTasksPerWorker: 1,
      // Tasks may keep handles open (timers, sockets): no Atomics.wait between tasks.
      atomics: 'disabled',
      workerData: { taskModule: options.taskModule },
      ...(fromSources ? { execArgv: workerExecArgv() } : {}),
    })
    pool.on('error', (err) =>
      options.onError(
        new LapinError('WORKER_FAILED', `a worker thread failed: ${errorText(err)}`, { cause: err }),
      ),
    )
    this.#pool = pool
    try {
      await pool.run('probe')
    } catch (err) {
      await this.stop()
      throw new LapinError(
        'TASK_MODULE_INVALID',
        `could not load taskModule ${options.taskModule}: ${errorText(err)}`,
        { cause: err },
      )
    }
  }

  /** Worker threads alive now. */
  get threads(): number {
    return this.#pool?.threads.length ?? 0
  }

  /**
   * Runs the task on `message` in a worker. Resolves to the status the task returned (or
   * `undefined` for junk); rejects if the task threw, its worker died, or it was aborted.
   */
  async run(message: Message): Promise<unknown> {
    const pool = this.#pool
    if (!pool) throw new ConnectionClosedError('the worker pool is stopped')
    const content = message.body
    // amqplib's content may be a view into a larger buffer: copy it into one of its own, then move it.
    const body = new ArrayBuffer(content.length)
    new Uint8Array(body).set(content)
    const abort = new AbortController()
    this.#aborts.set(message, abort)
    const job: WorkerJob = {
      body,
      properties: message.properties,
      redelivered: message.redelivered,
      routingKey: message.routingKey,
      exchange: message.exchange,
      deliveryTag: message.deliveryTag,
      attempt: message.attempt,
    }
    try {
      const result = (await pool.run(job, { transferList: [body], signal: abort.signal })) as WorkerResult
      const status = typeof result === 'object' ? (result.status ?? MessageStatus.SUCCESS) : result
      if (status !== MessageStatus.HANDLED_VIA_CALLBACK) {
        return typeof result === 'object' ? await this.#reply(message, result, status) : status
      }
      this.#options.onError(
        new LapinError(
          'WORKER_CALLBACK_UNSUPPORTED',
          'a task in a worker thread returned HANDLED_VIA_CALLBACK, which a worker cannot honour (it cannot settle the message); the message is requeued',
        ),
      )
      return MessageStatus.FAIL_RETRY_LATER
    } finally {
      this.#aborts.delete(message)
    }
  }

  /**
   * Sends a worker's reply to `message`, then gives its status. A message without
   * `replyTo` is reported and settled by the status: no retry would give it one.
   */
  async #reply(message: Message, result: WorkerReply, status: unknown): Promise<unknown> {
    try {
      const sent =
        result.reply === undefined
          ? message.replyJson(result.replyJson, result.options)
          : message.reply(result.reply, result.options)
      await sent
    } catch (err) {
      if (!(err instanceof LapinError && err.code === 'NO_REPLY_TO')) throw err
      this.#options.onError(err)
    }
    return status
  }

  /** Aborts the task running on `message`: piscina terminates its worker and starts another. True if there was one. */
  abort(message: Message): boolean {
    const abort = this.#aborts.get(message)
    abort?.abort()
    return abort !== undefined
  }

  /** Terminates every worker (a running task is rejected). Idempotent; start() may follow. */
  async stop(): Promise<void> {
    const pool = this.#pool
    this.#pool = undefined
    this.#starting = undefined
    try {
      await pool?.destroy()
    } catch (err) {
      this.#options.onError(
        new LapinError('WORKER_FAILED', `the worker pool did not stop cleanly: ${errorText(err)}`, {
          cause: err,
        }),
      )
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
