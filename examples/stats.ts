import { Consumer, MessageStatus, Publisher } from 'lapinmq'
import { Counter, Gauge, Registry } from 'prom-client'

const queueName = process.env.QUEUE ?? 'stats-demo'
const count = Number(process.env.COUNT ?? 100)
const publisher = new Publisher({ kind: 'async' })
const consumer = new Consumer({
  queueName,
  concurrency: 4,
  taskFunction: (message) =>
    message.body.toString() === 'bad' ? MessageStatus.FAIL_DO_NOT_RETRY : MessageStatus.SUCCESS,
})

// Each scrape reads stats(): nothing more is counted per message.
const registry = new Registry()
new Counter({
  name: 'lapinmq_publisher_outcomes_total',
  help: 'Sends ended, by outcome',
  labelNames: ['outcome'],
  registers: [registry],
  collect() {
    const stats = publisher.stats()
    this.reset()
    for (const outcome of ['confirmed', 'returned', 'nacked', 'timedOut', 'failed'] as const) {
      this.inc({ outcome }, stats[outcome])
    }
  },
})
new Counter({
  name: 'lapinmq_consumer_settles_total',
  help: 'Deliveries settled, by outcome',
  labelNames: ['queue', 'outcome'],
  registers: [registry],
  collect() {
    const stats = consumer.stats()
    this.reset()
    for (const outcome of ['acked', 'rejected', 'requeued'] as const) {
      this.inc({ queue: consumer.queueName, outcome }, stats[outcome])
    }
  },
})
new Gauge({
  name: 'lapinmq_consumer_task_duration_seconds',
  help: 'Task durations: percentiles since start',
  labelNames: ['queue', 'quantile'],
  registers: [registry],
  collect() {
    const { p50, p90, p99 } = consumer.stats().taskDuration
    const queue = consumer.queueName
    this.set({ queue, quantile: '0.5' }, p50 / 1000)
    this.set({ queue, quantile: '0.9' }, p90 / 1000)
    this.set({ queue, quantile: '0.99' }, p99 / 1000)
  },
})

await consumer.start()
const sends = [publisher.sendMessageToQueue(queueName, 'bad')]
for (let i = 1; i < count; i++) sends.push(publisher.sendMessageToQueue(queueName, `job ${i}`))
await Promise.all(sends)
while (consumer.stats().delivered < count) await new Promise((resolve) => setTimeout(resolve, 20))
await Promise.all([publisher.stop(), consumer.stop()])

// What a /metrics endpoint would serve (`res.end(await registry.metrics())`).
console.log(await registry.metrics())
const { confirmLatency } = publisher.stats()
console.log(`confirm latency p50 ${confirmLatency.p50} ms, p99 ${confirmLatency.p99} ms`)
