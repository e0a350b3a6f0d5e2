// S8's delaying TCP proxy (test/helpers/tcp-proxy.ts, one-way `latency` each direction) in a child
// process, so that its CPU is not counted as the client's and its timers do not share the
// client's event loop. The round trip it adds is twice the one-way latency.
import { fork } from 'node:child_process'
import { once } from 'node:events'

export interface DelayProxy {
  url: string
  /** Sets the round trip the proxy adds (ms), for connections opened after. */
  setRtt(ms: number): Promise<void>
  close(): Promise<void>
}

export async function startDelayProxy(target: string): Promise<DelayProxy> {
  const child = fork(new URL('./delay-proxy-child.ts', import.meta.url), [target], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const [ready] = (await once(child, 'message')) as [{ port: number }]
  const u = new URL(target)
  u.host = `127.0.0.1:${ready.port}`
  return {
    url: u.toString(),
    async setRtt(ms) {
      child.send({ latency: ms / 2 })
      await once(child, 'message')
    },
    async close() {
      child.send({ close: true })
      await once(child, 'exit')
    },
  }
}
