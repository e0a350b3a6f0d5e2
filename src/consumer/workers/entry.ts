// Runs inside a worker thread of a worker-mode Consumer's pool (piscina loads it as the pool's
// `filename`): imports the user's task module once, rebuilds the message from what the main thread
// sent (the body moved as an ArrayBuffer), calls the task and sends back its status. Nothing here
// settles the message: the main thread acks it according to the status.
import { Piscina } from 'piscina'
import type { WorkerMessage, WorkerReply, WorkerTaskFunction } from '../options.js'
import type { WorkerJob, WorkerResult } from './pool.js'

let loading: Promise<WorkerTaskFunction> | undefined

/** The task module's default export; rejects (and keeps rejecting) if it is not a function. */
function taskFunction(): Promise<WorkerTaskFunction> {
  loading ??= (async () => {
    const href = (Piscina.workerData as { taskModule?: unknown } | undefined)?.taskModule
    if (typeof href !== 'string') throw new TypeError('lapinmq worker started without a taskModule')
    const mod = (await importModule(href)) as { default?: unknown }
    if (typeof mod.default !== 'function') {
      throw new TypeError(
        `taskModule ${href} has no default export that is a function (got ${typeof mod.default})`,
      )
    }
    return mod.default as WorkerTaskFunction
  })()
  return loading
}

/**
 * Imports the task module. A TypeScript module that Node cannot load here (an app run through
 * tsx, whose loader Node 20 does not extend to worker threads) is retried once tsx's loader is
 * registered in this thread, when tsx is installed.
 */
async function importModule(href: string): Promise<unknown> {
  try {
    return await import(href)
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code
    if (code !== 'ERR_UNKNOWN_FILE_EXTENSION' || !/\.[cm]?tsx?$/.test(href)) throw err
    const tsxApi: string = 'tsx/esm/api'
    const tsx = (await import(tsxApi).catch(() => undefined)) as { register?: () => unknown } | undefined
    if (typeof tsx?.register !== 'function') throw err
    tsx.register()
    // A new specifier: the failed load is cached under the old one.
    return await import(`${href}${href.includes('?') ? '&' : '?'}lapinmq-worker`)
  }
}

/**
 * One job: `'probe'` loads the task module (the start-time check) and answers `'ok'`; a message
 * runs the task and answers its status, its reply (an object with `reply` or `replyJson`), or
 * `undefined` for anything else (junk is retried later by the main thread, like a non-status from
 * a main-thread task).
 */
export default async function runJob(job: WorkerJob): Promise<WorkerResult> {
  const task = await taskFunction()
  if (job === 'probe') return 'ok'
  const message: WorkerMessage = {
    body: Buffer.from(job.body),
    properties: job.properties,
    headers: (job.properties.headers as Record<string, unknown> | undefined) ?? {},
    redelivered: job.redelivered,
    routingKey: job.routingKey,
    exchange: job.exchange,
    deliveryTag: job.deliveryTag,
    attempt: job.attempt,
  }
  const result: unknown = await task(message)
  if (typeof result === 'string') return result
  if (typeof result !== 'object' || result === null) return undefined
  const { reply, replyJson, status, options } = result as WorkerReply
  if (reply === undefined && replyJson === undefined) return undefined
  // Only what the main thread reads crosses back (the rest of the object may not be cloneable).
  return { reply, replyJson, status, options } as WorkerReply
}
