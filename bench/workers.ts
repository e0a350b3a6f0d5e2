// Worker threads against the main thread: CPU-bound tasks of ~50 ms each, one main-thread consumer
// vs a worker-thread consumer with `workerThreads: 2`, on fresh queues of the local broker. Prints
// msg/s of each and the ratio (two workers on two cores should come close to twice the rate).
//
//   cd bench && node --import tsx workers.ts [--messages 120] [--task-ms 50] [--rounds 3]
import { parseArgs } from 'node:util'
import { Connection, Consumer, MessageStatus, Publisher } from '../src/index.ts'
import { url } from './lib/common.ts'
import { burn, doneChannel } from './workers-task.ts'

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '120' },
    'task-ms': { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
  },
})
const rounds = Number(values.rounds)
const messages = Number(values.messages)
const taskMs = Number(values['task-ms'])

/** Iterations of burn() that take `ms` on this machine (median of 5 timings). */
function calibrate(ms: number): number {
  let n = 1_000_000
  for (;;) {
    const t0 = performance.now()
    burn(n)
    const took = performance.now() - t0
    if (took > 20) break
    n *= 2
  }
  const per: number[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    burn(n)
    per.push((performance.now() - t0) / n)
  }
  per.sort((a, b) => a - b)
  return Math.round(ms / (per[2] as number))
}

async function run(mode: 'main' | 'workers', iterations: number): Promise<number> {
  const connection = new Connection({ url, name: `bench-workers-${mode}` })
  const queue = `lapinmq-bench.workers.${mode}.${process.pid}`
  let completed = 0
  let allDone: () => void = () => {}
  const all = new Promise<void>((resolve) => {
    allDone = resolve
  })
  const onDone = (): void => {
    if (++completed === messages) allDone()
  }
  // Declare the queue (a consumer started and stopped at once) and fill it before consuming: the
  // measure is the consumer's alone.
  const declarer = new Consumer({
    queueName: queue,
    connection,
    taskFunction: () => MessageStatus.FAIL_RETRY_LATER,
  })
  await declarer.start()
  await declarer.stop()
  const publisher = new Publisher({ kind: 'async', connection })
  await publisher.start()
  const body = String(iterations)
  await Promise.all(Array.from({ length: messages }, () => publisher.sendMessageToQueue(queue, body)))
  await publisher.stop()
  const listener = new BroadcastChannel(doneChannel)
  listener.onmessage = onDone
  const consumer =
    mode === 'main'
      ? new Consumer({
          queueName: queue,
          connection,
          taskFunction: (message) => {
            burn(Number(message.body.toString()))
            onDone()
            return MessageStatus.SUCCESS
          },
        })
      : new Consumer({
          queueName: queue,
          connection,
          taskModule: new URL('./workers-task.ts', import.meta.url),
          workerThreads: 2,
        })
  // Timed from the end of start(), once the workers are up and the task module loaded.
  await consumer.start()
  const t0 = performance.now()
  const before = completed
  await all
  const seconds = (performance.now() - t0) / 1000
  listener.close()
  await consumer.stop()
  await connection.deleteQueue(queue)
  await connection.close()
  return (messages - before) / seconds
}

const iterations = calibrate(taskMs)
console.log(
  `${messages} messages per run, each ${taskMs} ms of CPU (${iterations} iterations), ${rounds} interleaved rounds`,
)
const ratios: number[] = []
for (let round = 1; round <= rounds; round++) {
  const main = await run('main', iterations)
  const workers = await run('workers', iterations)
  ratios.push(workers / main)
  console.log(
    `round ${round}: main thread (concurrency 1) ${main.toFixed(1)} msg/s, workerThreads: 2 ${workers.toFixed(1)} msg/s, ratio ${(workers / main).toFixed(2)}×`,
  )
}
ratios.sort((a, b) => a - b)
console.log(`median ratio: ${(ratios[Math.floor(ratios.length / 2)] as number).toFixed(2)}×`)
