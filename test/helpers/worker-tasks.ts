// What tasks in worker threads did: test/fixtures/worker-task.ts announces each call's start and
// end on a BroadcastChannel; this listens to it.
import { workerTaskChannel } from '../fixtures/worker-task.ts'

/** The path of the worker task module the worker-thread tests use. */
export const workerTaskModule = new URL('../fixtures/worker-task.ts', import.meta.url)

export interface WorkerTaskCall {
  messageId: string | undefined
  redelivered: boolean
  attempt: number
  /** The body as text, or null if the task did not get a Buffer. */
  body: string | null
  routingKey: string
  threadId: number
  event: 'start' | 'end'
}

/** Records the calls of worker-task.ts in any worker thread until close(). */
export function listenToWorkerTasks(): { calls: WorkerTaskCall[]; close(): void } {
  const calls: WorkerTaskCall[] = []
  const channel = new BroadcastChannel(workerTaskChannel)
  channel.onmessage = (event) => calls.push((event as unknown as { data: WorkerTaskCall }).data)
  channel.unref()
  return { calls, close: () => channel.close() }
}

/** Threads of this process now (the main thread, libuv's pool, V8's, and every worker thread). */
export async function threadCount(): Promise<number> {
  const { readdir } = await import('node:fs/promises')
  return (await readdir('/proc/self/task')).length
}
