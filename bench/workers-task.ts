// The CPU-bound task of bench/workers.ts: `iterations` rounds of integer arithmetic (no timers, no
// I/O), the same work on the main thread and in a worker. As a `taskModule` its default export
// reads the count from the body and announces each completion on a BroadcastChannel.
import { threadId } from 'node:worker_threads'

/** Burns CPU: `iterations` rounds of a xorshift; returns the result so nothing is optimised away. */
export function burn(iterations: number): number {
  let x = 2463534242
  for (let i = 0; i < iterations; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
  }
  return x
}

export const doneChannel = 'lapinmq-bench-workers'
const done = new BroadcastChannel(doneChannel)
done.unref()

export default function task(message: { body: Buffer }): string {
  burn(Number(message.body.toString()))
  done.postMessage(threadId)
  return 'success'
}
