// A work queue: two workers compete for the jobs of one durable queue, and the broker hands each
// job to one of them only. A worker takes one job at a time (concurrency 1, so prefetch 1): the
// broker sends the next job to whichever worker is free, never a queue of jobs to a busy one. In
// production each worker is a process of its own running the same Consumer; here the two workers
// and the producer share one process.
import { Consumer, type Message, MessageStatus, Publisher, waitForSigterm } from 'lapinmq'

const queue = process.env.QUEUE ?? 'jobs'
const count = Number(process.env.COUNT ?? 10)

let left = count
let allDone!: () => void
const finished = new Promise<void>((resolve) => {
  allDone = resolve
})

function worker(name: string): Consumer {
  return new Consumer({
    queueName: queue, // declared durable by start() if it does not exist
    taskFunction: async (message: Message) => {
      await new Promise((resolve) => setTimeout(resolve, 20)) // the work
      console.log(`${name} did ${message.body}`)
      if (--left === 0) allDone()
      return MessageStatus.SUCCESS // ack: the job is done and leaves the queue
    },
  })
}

const workers = [worker('worker-1'), worker('worker-2')]
for (const w of workers) await w.start() // before the first send: a send to a missing queue is UNROUTABLE
const publisher = new Publisher({ kind: 'async' }) // persistent messages, confirmed
await Promise.all(Array.from({ length: count }, (_, i) => publisher.sendMessageToQueue(queue, `job ${i}`)))
console.log(`sent ${count} jobs`)
await Promise.race([finished, waitForSigterm()]) // every job done (or Ctrl-C)
await Promise.all([publisher.stop(), ...workers.map((w) => w.stop())])
