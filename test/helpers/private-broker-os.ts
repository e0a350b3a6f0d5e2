// Operating-system plumbing for PrivateBroker (test/helpers/private-broker.ts): who runs the node,
// which ports are free, whether a process is alive, which beam.smp belongs to which node, and the
// clean-up of nodes and data directories left behind by test processes that died. Linux only (/proc).
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync, type Stats, statSync } from 'node:fs'
import { createServer, connect as tcpConnect } from 'node:net'
import { join } from 'node:path'

/** Where RabbitMQ's own scripts live (not Debian's /usr/sbin wrappers, which `su` to the shared cookie). */
export function rabbitmqScriptsDir(): string {
  const candidates = [
    process.env.PRIVATE_RABBITMQ_SCRIPTS_DIR,
    '/usr/lib/rabbitmq/bin',
    '/usr/local/lib/rabbitmq/bin',
  ].filter((d): d is string => typeof d === 'string' && d !== '')
  const found = candidates.find((d) => existsSync(join(d, 'rabbitmq-server')))
  if (!found) {
    throw new Error(
      `PrivateBroker: RabbitMQ's scripts (rabbitmq-server, rabbitmqctl) were not found in ${candidates.join(', ')}; ` +
        'install rabbitmq-server or set PRIVATE_RABBITMQ_SCRIPTS_DIR',
    )
  }
  return found
}

/** The account the node runs as: `rabbitmq` when we are root (as Debian runs it), else ourselves. */
export function nodeAccount(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('rabbitmq:'))
  const [, , uid, gid] = line?.split(':') ?? []
  if (uid === undefined || gid === undefined) {
    throw new Error('PrivateBroker: running as root but there is no `rabbitmq` user to run the node as')
  }
  return { uid: Number(uid), gid: Number(gid) }
}

/** Ports the machine's usual brokers and CLI tools use (5672, 15672, 25672, 35672-35682, 4369...). */
const reserved = new Set([4369, 5671, 5672, 15672, 15692, 25672, 61613, 1883, 5552])

/**
 * A free TCP port on 127.0.0.1 below the kernel's ephemeral range (32768+), so no outgoing connection
 * can take it between a kill -9 and the restart that binds it again.
 */
export async function freePort(exclude: ReadonlySet<number> = new Set()): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    if (reserved.has(port) || exclude.has(port)) continue
    if (await canListen(port)) return port
  }
  throw new Error('PrivateBroker: no free port found in 20000-31999')
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/**
 * Sends the AMQP 0-9-1 protocol header and waits for connection.start (a method frame, type 1).
 * True only when a broker really answers, not when a port is merely open.
 */
export function amqpAnswers(port: number, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port })
    const done = (ok: boolean): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.once('connect', () => socket.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1')))
    socket.once('data', (data: Buffer) => done(data[0] === 1))
    socket.once('error', () => done(false))
    socket.once('close', () => done(false))
  })
}

/** The fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, ...]. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** The process's state letter (R, S, D, T when stopped, Z...), or undefined when it is gone. */
export function processState(pid: number): string | undefined {
  return procStat(pid)?.[0]
}

/** True while the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const stat = procStat(pid)
  if (stat) return stat[0] !== 'Z' && stat[0] !== 'X'
  if (existsSync('/proc/self/stat')) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The process's start time in clock ticks since boot (tells a live owner from a recycled pid). */
export function startTicks(pid: number): string | undefined {
  return procStat(pid)?.[19]
}

/** True when `pid` is a beam.smp started for `nodeName` (read from its environment). */
export function isBeamOf(pid: number, nodeName: string): boolean {
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('beam')) return false
    return readFileSync(`/proc/${pid}/environ`, 'latin1')
      .split('\0')
      .includes(`RABBITMQ_NODENAME=${nodeName}`)
  } catch {
    return false
  }
}

/** Every live beam.smp started for `nodeName` (a /proc scan; the pid file may not be written yet). */
export function beamsOf(nodeName: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry)
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid) && isBeamOf(pid, nodeName)) pids.push(pid)
  }
  return pids
}

/** SIGKILLs a pid or a process group (negative pid), ignoring ones already gone. */
export function killQuietly(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (pid === undefined || pid === 0) return
  try {
    process.kill(pid, signal)
  } catch {
    // Already gone.
  }
}

/**
 * SIGKILLs the process group `pid` leads or belongs to (the node's launcher script, beam.smp and its
 * port programs), unless it is this process's own group.
 */
export function killGroupOf(pid: number): void {
  const group = Number(procStat(pid)?.[2])
  const own = Number(procStat(process.pid)?.[2])
  if (Number.isInteger(group) && group > 1 && group !== own) killQuietly(-group)
}

/** Sleeps synchronously (for the exit hook, where nothing asynchronous runs any more). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** Removes a directory tree, retrying briefly (a dying node may still be closing files). */
export function removeTree(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 })
}

/** What PrivateBroker writes into each data directory, so a later run can tell whose it is. */
export interface OwnerRecord {
  ownerPid: number
  ownerStart: string | undefined
  nodeName: string
}

/**
 * Removes the data directories under `root` whose owning test process is gone, first killing (-9)
 * any node of theirs still running (an orphan from a test process that was itself killed). Directories
 * of live test processes, including other files running in parallel, are left alone.
 */
export function cleanStaleNodes(root: string): string[] {
  const removed: string[] = []
  let entries: string[]
  try {
    entries = readdirSync(root)
  } catch {
    return removed
  }
  for (const entry of entries) {
    const dir = join(root, entry)
    let owner: OwnerRecord | undefined
    try {
      owner = JSON.parse(readFileSync(join(dir, 'owner.json'), 'utf8')) as OwnerRecord
    } catch {
      owner = undefined
    }
    if (owner === undefined) {
      // Being created right now, or unreadable: only old ones are taken for dead.
      const age = Date.now() - (statSafe(dir)?.mtimeMs ?? Date.now())
      if (age < 10 * 60_000) continue
    } else if (isAlive(owner.ownerPid) && startTicks(owner.ownerPid) === owner.ownerStart) {
      continue
    }
    const nodeName = owner?.nodeName ?? `${entry}@localhost`
    const beams = beamsOf(nodeName)
    for (const pid of beams) {
      killGroupOf(pid)
      killQuietly(pid)
    }
    for (let i = 0; i < 50 && beams.some(isAlive); i++) sleepSync(100)
    try {
      removeTree(dir)
      removed.push(dir)
    } catch {
      // Another user's directory (sticky root) or still busy: the next run tries again.
    }
  }
  return removed
}

function statSafe(path: string): Stats | undefined {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

/** Changes the owner of a directory tree (the node runs as `rabbitmq` and writes there). */
export function chownTree(dir: string, account: { uid: number; gid: number }): void {
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, dir])
}

/** Nodes that may be running, with how to kill -9 them synchronously. */
const exitKills = new Map<object, () => void>()
let hooked = false

/**
 * Has `kill` run when the process exits, however it exits short of SIGKILL: on 'exit', and on a
 * SIGINT, SIGTERM or SIGHUP that would end the process (nobody else listens for it), after which the
 * process ends by that signal as it would have.
 */
export function killOnExit(key: object, kill: () => void): void {
  exitKills.set(key, kill)
  if (hooked) return
  hooked = true
  const killAll = (): void => {
    for (const k of exitKills.values()) k()
    exitKills.clear()
  }
  process.on('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(signal) > 1) return // someone else decides whether the process ends
      killAll()
      process.removeListener(signal, onSignal)
      process.kill(process.pid, signal)
    }
    process.on(signal, onSignal)
  }
}

/** The node `key` is gone: nothing to kill on exit. */
export function forgetOnExit(key: object): void {
  exitKills.delete(key)
}
