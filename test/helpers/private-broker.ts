// A private RabbitMQ node for destructive fault tests: its own node name, ports, data directory and
// Erlang cookie, so nothing done to it can reach the shared broker on 5672. Debian's /usr/sbin
// wrappers are bypassed: as root they `su rabbitmq`, which puts
// the node and every rabbitmqctl on the shared broker's cookie (/var/lib/rabbitmq/.erlang.cookie) and
// working directory. Here RabbitMQ's own scripts run directly as the `rabbitmq` user (when we are
// root), with HOME = the data directory holding a private cookie.
//
//   const broker = await PrivateBroker.start({ config: 'consumer_timeout = 5000' })
//   after(() => broker.stop())
//   await broker.closeConnections('my-connection')  // 320 CONNECTION_FORCED to the client
//   await broker.kill9(); await broker.restart()     // crash, then recovery from the data directory
//
// A process 'exit' hook (and SIGINT/SIGTERM/SIGHUP, when nothing else handles them) kill -9 every
// node still running; nodes and directories left by a test process that died anyway are removed by
// the next start().
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { chmodSync, closeSync, mkdirSync, openSync, rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { nodeEnv, prepareDataDir, readText, tail } from './private-broker-layout.ts'
import {
  amqpAnswers,
  beamsOf,
  cleanStaleNodes,
  forgetOnExit,
  freePort,
  isAlive,
  isBeamOf,
  killOnExit,
  killQuietly,
  nodeAccount,
  processState,
  rabbitmqScriptsDir,
  removeTree,
  sleepSync,
} from './private-broker-os.ts'
import {
  type BrokerChannel,
  type BrokerConnection,
  type BrokerConsumer,
  parseChannels,
  parseConnections,
  parseConsumers,
  parsePidsByAddress,
  type QueueMessages,
} from './rabbitmqctl-output.ts'

export type { BrokerChannel, BrokerConnection, BrokerConsumer, QueueMessages }

/** Where private nodes keep their data directories, one per node, named after the node. */
export const privateBrokersRoot = join(tmpdir(), 'lapinmq-private-brokers')

export interface PrivateBrokerOptions {
  /** Extra rabbitmq.conf lines, e.g. `consumer_timeout = 5000`. @default '' */
  config?: string
  /** The node's advanced.config (Erlang terms), for settings rabbitmq.conf lacks, e.g. `[{rabbit, [{channel_tick_interval, 1000}]}].` @default none */
  advancedConfig?: string
  /** How long start() and restart() may take, in ms. @default 120000 */
  startTimeoutMs?: number
  /** The Erlang cookie: nodes given the same one can form a cluster (see LocalCluster). @default a random one */
  cookie?: string
}

/** Set PRIVATE_BROKER_KEEP_DATA=1 to keep data directories (logs, mnesia) after stop() for a post-mortem. */
const keepData = Boolean(process.env.PRIVATE_BROKER_KEEP_DATA)
const ctlTimeoutMs = 30_000
const stopTimeoutMs = 30_000
let sequence = 0

export class PrivateBroker {
  /** The Erlang node name, `lapinmq-fault-<pid>-<n>@localhost`. */
  readonly nodeName: string
  /** The AMQP port, on 127.0.0.1 only. */
  readonly port: number
  /** The Erlang distribution port (for rabbitmqctl), on 127.0.0.1 only. */
  readonly distPort: number
  /** `amqp://guest:guest@127.0.0.1:<port>/` (guest may connect from localhost). */
  readonly url: string
  /** The node's data directory (mnesia, logs, config, cookie), removed by stop(). */
  readonly dataDir: string
  /** The node's log file (appended to across restarts). */
  readonly logFile: string
  readonly #scripts: string
  readonly #account: { uid: number; gid: number } | undefined
  readonly #startTimeoutMs: number
  #launcher: ChildProcess | undefined
  #beamPid: number | undefined
  #frozen = false
  #appRunning = false
  #stopping: Promise<void> | undefined

  private constructor(port: number, distPort: number, options: PrivateBrokerOptions) {
    const short = `lapinmq-fault-${process.pid}-${++sequence}`
    this.nodeName = `${short}@localhost`
    this.port = port
    this.distPort = distPort
    this.url = `amqp://guest:guest@127.0.0.1:${port}/`
    this.dataDir = join(privateBrokersRoot, short)
    this.logFile = join(this.dataDir, 'log', `${this.nodeName}.log`)
    this.#scripts = rabbitmqScriptsDir()
    this.#account = nodeAccount()
    this.#startTimeoutMs = options.startTimeoutMs ?? 120_000
    prepareDataDir(this, options.config ?? '', this.#account, options.advancedConfig, options.cookie)
  }

  /**
   * Starts a fresh node on free ports and waits until it accepts AMQP connections. A port taken in
   * the meantime by someone else is retried with new ports.
   */
  static async start(options: PrivateBrokerOptions = {}): Promise<PrivateBroker> {
    // Sticky and world-writable like /tmp, for runs as root and as other users alike.
    if (mkdirSync(privateBrokersRoot, { recursive: true }) !== undefined)
      chmodSync(privateBrokersRoot, 0o1777)
    cleanStaleNodes(privateBrokersRoot)
    let lastError: unknown
    for (let attempt = 1; attempt <= 3; attempt++) {
      const port = await freePort()
      const broker = new PrivateBroker(port, await freePort(new Set([port])), options)
      try {
        await broker.#boot()
        return broker
      } catch (err) {
        lastError = err
        await broker.stop().catch(() => undefined)
        if (!/eaddrinuse|dist_port_already_used/i.test(String(err))) throw err
      }
    }
    throw lastError
  }

  /** The OS pid of the node's beam.smp, while it runs. */
  get osPid(): number | undefined {
    return this.#beamPid
  }

  /** Runs `rabbitmqctl -n <node> ...args` and returns its stdout. */
  ctl(...args: string[]): Promise<string> {
    return this.#cli('rabbitmqctl', args)
  }

  /** Runs `rabbitmq-diagnostics -n <node> ...args` and returns its stdout. */
  diagnostics(...args: string[]): Promise<string> {
    return this.#cli('rabbitmq-diagnostics', args)
  }

  /** `rabbitmqctl stop_app`: every client connection is closed (320), the Erlang node stays up. */
  async stopApp(): Promise<void> {
    await this.ctl('stop_app')
    this.#appRunning = false
  }

  /** `rabbitmqctl start_app`, then waits until AMQP answers again. */
  async startApp(): Promise<void> {
    await this.ctl('start_app')
    this.#appRunning = true
    await this.#until(Date.now() + ctlTimeoutMs, 'AMQP to answer after start_app', () =>
      amqpAnswers(this.port),
    )
  }

  /** kill -9 the node (a crash: no goodbye to clients, nothing flushed) and waits until it is gone. */
  async kill9(): Promise<void> {
    const pid = this.#requireBeam('kill9')
    killQuietly(pid)
    await this.#until(Date.now() + 15_000, 'beam.smp to die after kill -9', () => !isAlive(pid))
    await this.#launcherExited(10_000)
    this.#beamPid = undefined
    this.#frozen = false
    this.#appRunning = false
  }

  /**
   * Starts the node again on the same ports and data directory (after kill9(), or a graceful stop
   * first if it still runs) and waits until it accepts AMQP connections.
   */
  async restart(): Promise<void> {
    if (this.#stopping) throw new Error(`PrivateBroker ${this.nodeName}: restart() after stop()`)
    await this.#halt()
    await this.#boot()
  }

  /** SIGSTOP the node: connections stay open but nothing answers (heartbeats then time out). */
  async freeze(): Promise<void> {
    const pid = this.#requireBeam('freeze')
    killQuietly(pid, 'SIGSTOP')
    this.#frozen = true
    await this.#until(Date.now() + 5_000, 'beam.smp to stop', () => processState(pid) === 'T')
  }

  /** SIGCONT the node, then waits until AMQP answers again (unless the app was stopped). */
  async thaw(): Promise<void> {
    const pid = this.#requireBeam('thaw')
    killQuietly(pid, 'SIGCONT')
    this.#frozen = false
    if (this.#appRunning) {
      await this.#until(Date.now() + ctlTimeoutMs, 'AMQP to answer after thaw', () => amqpAnswers(this.port))
    }
  }

  /**
   * Closes (from the broker side: 320 CONNECTION_FORCED) every connection whose client-provided
   * `connection_name` matches: a string must equal it, a RegExp must match it. Returns how many.
   */
  async closeConnections(namePattern: RegExp | string, reason = 'closed by PrivateBroker'): Promise<number> {
    const matches = (name: string): boolean =>
      typeof namePattern === 'string' ? name === namePattern : namePattern.test(name)
    const [connections, pids] = await Promise.all([
      this.listConnections(),
      this.ctl('-q', 'list_connections', 'pid', 'name').then(parsePidsByAddress),
    ])
    let closed = 0
    for (const connection of connections.filter((c) => matches(c.name))) {
      const pid = pids.get(connection.address)
      if (pid === undefined) continue // closed in between
      await this.ctl('close_connection', pid, reason)
      closed++
    }
    return closed
  }

  /** The node's client connections, with their `connection_name`. */
  async listConnections(): Promise<BrokerConnection[]> {
    return parseConnections(
      await this.ctl(
        '-q',
        'list_connections',
        ...['name', 'user', 'state', 'channels', 'peer_port', 'client_properties', '--formatter', 'json'],
      ),
    )
  }

  /** The node's channels, each with its connection's `connection_name`. */
  async listChannels(): Promise<BrokerChannel[]> {
    const [connections, channels] = await Promise.all([
      this.listConnections(),
      this.ctl(
        '-q',
        'list_channels',
        ...['name', 'number', 'consumer_count', 'messages_unacknowledged', 'messages_unconfirmed'],
        ...['prefetch_count', 'confirm', '--formatter', 'json'],
      ),
    ])
    return parseChannels(channels, connections)
  }

  /** The node's consumers, each with its channel number and connection's `connection_name`. */
  async listConsumers(): Promise<BrokerConsumer[]> {
    // Pids are only comparable across two rabbitmqctl runs in the table format (<node.n.n.n>).
    const [connections, channels, consumers] = await Promise.all([
      this.listConnections(),
      this.ctl('-q', 'list_channels', 'pid', 'name', 'number'),
      this.ctl(
        '-q',
        'list_consumers',
        ...['channel_pid', 'queue_name', 'consumer_tag', 'ack_required', 'prefetch_count', 'active'],
      ),
    ])
    return parseConsumers(consumers, channels, connections)
  }

  /** Ready and unacknowledged messages in a queue of the default vhost; throws if there is no such queue. */
  async queueMessages(name: string): Promise<QueueMessages> {
    const out = await this.ctl(
      '-q',
      'list_queues',
      ...['name', 'messages_ready', 'messages_unacknowledged', '--formatter', 'json'],
    )
    const rows = JSON.parse(out || '[]') as {
      name: string
      messages_ready: number
      messages_unacknowledged: number
    }[]
    const row = rows.find((r) => r.name === name)
    if (!row)
      throw this.#failure(`no queue '${name}' (found: ${rows.map((r) => r.name).join(', ') || 'none'})`)
    return { ready: row.messages_ready, unacked: row.messages_unacknowledged }
  }

  /**
   * Raises (watermark 0.0000001) or clears (0.4) the memory alarm and waits until the node reports it
   * so: publishing connections get connection.blocked, then connection.unblocked.
   */
  async setMemoryAlarm(on: boolean): Promise<void> {
    await this.ctl('set_vm_memory_high_watermark', on ? '0.0000001' : '0.4')
    await this.#until(
      Date.now() + 15_000,
      `the memory alarm to be ${on ? 'raised' : 'cleared'}`,
      async () => {
        const alarms = await this.diagnostics('-q', 'alarms', '--formatter', 'json')
        return /memory/i.test(alarms) === on
      },
    )
  }

  /**
   * The node's log file so far, across restarts. The harness's own readiness probes (start,
   * startApp, thaw) show in it as connections from 127.0.0.1 that the client "unexpectedly
   * closed": they send the AMQP header and hang up once the broker answers. Throws when the log
   * cannot be read: an empty text would let every check for a line in it pass.
   */
  async logText(): Promise<string> {
    try {
      return await readFile(this.logFile, 'utf8')
    } catch (err) {
      throw new Error(`cannot read the private node's log ${this.logFile}`, { cause: err })
    }
  }

  /**
   * Stops the node (`rabbitmqctl stop`, kill -9 if it does not go, also when frozen or killed), waits
   * until its OS process is gone and removes its data directory (kept with PRIVATE_BROKER_KEEP_DATA=1
   * until the next run's start()). Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#halt().finally(() => {
      forgetOnExit(this)
      if (keepData) process.stderr.write(`PrivateBroker: kept ${this.dataDir} (PRIVATE_BROKER_KEEP_DATA)\n`)
      else removeTree(this.dataDir)
    })
    return this.#stopping
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  /** Launches rabbitmq-server and waits for the pid file, `await_startup`, then an AMQP answer. */
  async #boot(): Promise<void> {
    const deadline = Date.now() + this.#startTimeoutMs
    const pidFile = join(this.dataDir, 'pid')
    rmSync(pidFile, { force: true })
    const out = openSync(join(this.dataDir, 'stdout.log'), 'a')
    let launcher: ChildProcess
    try {
      launcher = spawn(join(this.#scripts, 'rabbitmq-server'), [], {
        cwd: this.dataDir, // where erl_crash.dump goes
        env: nodeEnv(this, true),
        detached: true, // its own process group: a Ctrl-C to the tests does not reach it
        stdio: ['ignore', out, out],
        ...this.#account,
      })
    } finally {
      closeSync(out)
    }
    launcher.unref()
    this.#launcher = launcher
    killOnExit(this, () => this.#killAndRemoveSync())
    let exited: string | undefined
    launcher.once('exit', (code, signal) => {
      exited = `exited (${signal ?? code})`
    })
    launcher.once('error', (err) => {
      exited = `could not be started (${err.message})`
    })
    await this.#until(deadline, 'the node to write its pid file', () => {
      if (exited) throw this.#failure(`rabbitmq-server ${exited} during startup`)
      const pid = Number(readText(pidFile).trim())
      if (!(pid > 0 && isBeamOf(pid, this.nodeName))) return false
      this.#beamPid = pid
      return true
    })
    const left = Math.max(1, Math.ceil((deadline - Date.now()) / 1000))
    await this.#cli('rabbitmqctl', ['await_startup', '--timeout', String(left)], left * 1000 + 5_000)
    await this.#until(deadline, 'AMQP to answer', () => amqpAnswers(this.port))
    this.#appRunning = true
  }

  /** Stops the node gracefully if it runs (kill -9 if that fails), keeping its data directory. */
  async #halt(): Promise<void> {
    const pids = new Set(this.#beamPid !== undefined ? [this.#beamPid] : [])
    for (const pid of beamsOf(this.nodeName)) pids.add(pid)
    const running = [...pids].filter(isAlive)
    if (running.length > 0) {
      for (const pid of running) killQuietly(pid, 'SIGCONT')
      this.#frozen = false
      await this.#cli('rabbitmqctl', ['stop'], stopTimeoutMs).catch(() => undefined)
      const gone = await this.#waitGone(running, stopTimeoutMs)
      if (!gone) {
        this.#killSync()
        await this.#waitGone(running, 10_000)
      }
    }
    await this.#launcherExited(10_000)
    // Port programs (erl_child_setup, inet_gethost) go with beam.smp; make sure.
    if (this.#launcher?.pid !== undefined) killQuietly(-this.#launcher.pid)
    this.#beamPid = undefined
    this.#appRunning = false
  }

  async #waitGone(pids: number[], timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs
    while (pids.some(isAlive)) {
      if (Date.now() > end) return false
      await sleep(50)
    }
    return true
  }

  async #launcherExited(timeoutMs: number): Promise<void> {
    const launcher = this.#launcher
    if (!launcher || launcher.exitCode !== null || launcher.signalCode !== null) return
    const pid = launcher.pid
    if (pid === undefined) return
    if (!(await this.#waitGone([pid], timeoutMs))) killQuietly(-pid)
  }

  /** kill -9 the node's whole process group and beam.smp, synchronously (exit hook). */
  #killSync(): void {
    if (this.#launcher?.pid !== undefined) killQuietly(-this.#launcher.pid)
    const pids = new Set(this.#beamPid !== undefined ? [this.#beamPid] : [])
    for (const pid of beamsOf(this.nodeName)) pids.add(pid)
    for (const pid of pids) killQuietly(pid)
  }

  /** Exit hook: kill -9, wait briefly for the process to go, remove the data directory. */
  #killAndRemoveSync(): void {
    this.#killSync()
    for (let i = 0; i < 20 && beamsOf(this.nodeName).length > 0; i++) sleepSync(50)
    try {
      removeTree(this.dataDir)
    } catch {
      // The next start() removes it.
    }
  }

  #requireBeam(what: string): number {
    const pid = this.#beamPid
    if (pid === undefined || !isAlive(pid)) {
      throw new Error(`PrivateBroker ${this.nodeName}: ${what}() needs a running node (killed or stopped?)`)
    }
    return pid
  }

  #cli(tool: string, args: string[], timeoutMs = ctlTimeoutMs): Promise<string> {
    const command = `${tool} -n ${this.nodeName} ${args.join(' ')}`
    if (this.#frozen) {
      return Promise.reject(
        new Error(`PrivateBroker ${this.nodeName}: ${command} while frozen would hang; thaw() first`),
      )
    }
    return new Promise((resolve, reject) => {
      execFile(
        join(this.#scripts, tool),
        ['-n', this.nodeName, ...args],
        {
          cwd: this.dataDir,
          env: nodeEnv(this, false),
          timeout: timeoutMs,
          killSignal: 'SIGKILL',
          maxBuffer: 64 * 1024 * 1024,
          ...this.#account,
        },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout)
          const why = err.killed ? `timed out after ${timeoutMs} ms` : `exit code ${err.code ?? err.signal}`
          reject(this.#failure(`${command} failed (${why})`, `${stdout}${stderr}`))
        },
      )
    })
  }

  /** Polls `check` every 100 ms until it holds, failing with the node's log tail at `deadline`. */
  async #until(deadline: number, what: string, check: () => boolean | Promise<boolean>): Promise<void> {
    for (;;) {
      if (await check()) return
      if (Date.now() > deadline) throw this.#failure(`timed out waiting for ${what}`)
      await sleep(100)
    }
  }

  /** An error naming the node, with the command's output and the tails of its log and stdout. */
  #failure(what: string, output = ''): Error {
    return new Error(
      [
        `PrivateBroker ${this.nodeName} (AMQP ${this.port}, dist ${this.distPort}): ${what}`,
        output.trim(),
        `--- end of ${this.logFile} ---`,
        tail(this.logFile, 30) || '(empty)',
        `--- end of ${join(this.dataDir, 'stdout.log')} ---`,
        tail(join(this.dataDir, 'stdout.log'), 15) || '(empty)',
      ]
        .filter(Boolean)
        .join('\n'),
    )
  }
}
