// The child process of delay-proxy.ts: a TcpProxy to the broker, its latency set over IPC.
import { TcpProxy } from '../../test/helpers/tcp-proxy.ts'

const target = new URL(process.argv[2] ?? 'amqp://127.0.0.1:5672/')
const proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5672) })
process.on('message', (msg: { latency?: number; close?: boolean }) => {
  if (msg.close) {
    void proxy.close().then(() => process.exit(0))
    return
  }
  proxy.latency = msg.latency ?? 0
  process.send?.({ latency: proxy.latency })
})
process.send?.({ port: proxy.port })
