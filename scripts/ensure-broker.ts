// Makes sure a RabbitMQ answers AMQP at the configured URL before `npm start` / `npm test`.
// A local broker on the default port is installed (Debian's package, as root) and started when
// missing; anything else fails with the exact command to run. Never prints a password.
import { spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { isIP, connect as tcpConnect } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect as tlsConnect } from 'node:tls'
import { type Endpoint, resolveConfig } from '../src/config.ts'

/** What a probe of host:port found. */
type Probe = 'amqp' | 'refused' | 'silent' | 'not-amqp' | 'unreachable'

const probeTimeoutMs = 3_000
const startTimeoutMs = 120_000
const defaultPort = 5672

/**
 * Sends the AMQP 0-9-1 protocol header and waits for the broker's first frame. A RabbitMQ answers
 * with a method frame (type 1, connection.start). No credentials are sent.
 */
function probe(endpoint: Endpoint): Promise<Probe> {
  return new Promise((resolve) => {
    const { hostname: host, port } = endpoint
    const socket =
      endpoint.protocol === 'amqps'
        ? // Only the AMQP header goes over it: no secret to protect, so the certificate is not checked.
          tlsConnect({ host, port, rejectUnauthorized: false, ...(isIP(host) ? {} : { servername: host }) })
        : tcpConnect({ host, port })
    let connected = false
    const done = (result: Probe): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(result)
    }
    const timer = setTimeout(() => done(connected ? 'silent' : 'unreachable'), probeTimeoutMs)
    socket.once('connect', () => {
      connected = true
    })
    socket.once(endpoint.protocol === 'amqps' ? 'secureConnect' : 'connect', () => {
      socket.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'))
    })
    socket.once('data', (data: Buffer) => done(data[0] === 1 ? 'amqp' : 'not-amqp'))
    socket.once('end', () => done(connected ? 'not-amqp' : 'unreachable'))
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done(err.code === 'ECONNREFUSED' ? 'refused' : connected ? 'not-amqp' : 'unreachable'),
    )
  })
}

/** localhost, 127.0.0.0/8 and ::1: where a broker started on this machine would answer. */
function isLocal(hostname: string): boolean {
  return /^(localhost|127(\.\d{1,3}){3}|::1|::ffff:127(\.\d{1,3}){3})$/i.test(hostname)
}

/** The full path of `command` on PATH or in the sbin directories (not on a user's PATH), if any. */
function findCommand(command: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin']
  for (const dir of dirs.filter(Boolean)) {
    try {
      accessSync(join(dir, command), constants.X_OK)
      return join(dir, command)
    } catch {
      // Not here.
    }
  }
  return undefined
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): boolean {
  console.error(`ensure-broker: running ${command} ${args.join(' ')}`)
  const result = spawnSync(command, args, { stdio: 'inherit', env })
  return result.status === 0
}

function fail(message: string): never {
  console.error(`ensure-broker: ${message}`)
  process.exit(1)
}

async function waitForAmqp(endpoint: Endpoint): Promise<boolean> {
  const end = Date.now() + startTimeoutMs
  while (Date.now() < end) {
    if ((await probe(endpoint)) === 'amqp') return true
    await sleep(1_000)
  }
  return false
}

const found: Record<Exclude<Probe, 'amqp'>, string> = {
  refused: 'nothing listens there',
  silent: 'something listens there but sent nothing back to the AMQP header',
  'not-amqp': 'something listens there but does not speak AMQP 0-9-1',
  unreachable: 'the host cannot be reached (or did not answer in time)',
}
const useUrl = 'Or point the project at a running broker: RABBITMQ_URL=amqp://user:password@host:5672/vhost'

async function main(): Promise<void> {
  let endpoint: Endpoint | undefined
  try {
    endpoint = resolveConfig().endpoints[0]
  } catch (err) {
    fail(`bad broker configuration: ${(err as Error).message}`)
  }
  if (!endpoint) fail('no broker configured')
  const where = endpoint.display

  const result = await probe(endpoint)
  if (result === 'amqp') return
  const tls = endpoint.protocol === 'amqps' && result !== 'refused' ? ' (over TLS)' : ''
  const problem = `no RabbitMQ answers at ${where}: ${found[result]}${tls}.`

  if (!isLocal(endpoint.hostname)) {
    fail(`${problem}\nStart RabbitMQ on ${endpoint.hostname}, or check the URL and the network.\n${useUrl}`)
  }
  // Only the default, plain-AMQP port is ours to fill: a broker started here listens on 5672 without
  // TLS, and a port that is taken belongs to someone else.
  if (endpoint.protocol !== 'amqp' || endpoint.port !== defaultPort || result !== 'refused') {
    fail(
      `${problem}\nThis script starts a local broker only when nothing listens on port ${defaultPort} ` +
        `and the URL uses amqp:// on that port. Start your broker on ${endpoint.hostname}:${endpoint.port}, ` +
        `or unset RABBITMQ_URL/RABBITMQ_PORT to use a local broker on ${defaultPort}.\n${useUrl}`,
    )
  }

  // A broker that listens on 127.0.0.1 only does not answer on 127.0.0.2 or an IPv6 localhost:
  // starting another one would clash with it.
  if (endpoint.hostname !== '127.0.0.1' && (await probe({ ...endpoint, hostname: '127.0.0.1' })) === 'amqp') {
    fail(
      `${problem}\nA RabbitMQ answers at 127.0.0.1:${defaultPort}, though: use ` +
        `RABBITMQ_URL=amqp://user:password@127.0.0.1:${defaultPort}/ or make it listen on ${endpoint.hostname}.`,
    )
  }
  const root = process.getuid?.() === 0
  let server = findCommand('rabbitmq-server')
  if (!root) {
    const install = server ? '' : 'sudo apt-get install -y rabbitmq-server && '
    fail(`${problem}\nStart one with:\n  ${install}sudo rabbitmq-server -detached\n${useUrl}`)
  }
  console.error(`ensure-broker: ${problem}`)
  if (!server) {
    if (!findCommand('apt-get')) {
      fail(
        `${problem}\nrabbitmq-server is not installed and this is not a Debian/Ubuntu system: install ` +
          `RabbitMQ (https://www.rabbitmq.com/docs/download) and start it.\n${useUrl}`,
      )
    }
    console.error('ensure-broker: installing rabbitmq-server (Debian package)...')
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    run('apt-get', ['update'], env)
    // Without systemd the package's postinst may fail to start the service and apt-get exit
    // non-zero though the package is in place: what counts is whether the command is there now.
    const installed = run('apt-get', ['install', '-y', 'rabbitmq-server'], env)
    server = findCommand('rabbitmq-server')
    if (!server) {
      fail(
        installed
          ? 'apt-get installed rabbitmq-server but the rabbitmq-server command is not found.'
          : 'installing rabbitmq-server failed (see apt-get output above).',
      )
    }
  }

  // The package's install script may have started the broker already (invoke-rc.d): then it
  // answers, or, still booting, makes `-detached` report that the node runs and exit non-zero,
  // which is fine; the AMQP check decides.
  if ((await probe(endpoint)) !== 'amqp' && !run(server, ['-detached'])) {
    console.error('ensure-broker: rabbitmq-server -detached did not succeed; it may be running already.')
  }
  console.error(`ensure-broker: waiting up to ${startTimeoutMs / 1000} s for RabbitMQ at ${where}...`)
  if (!(await waitForAmqp(endpoint))) {
    fail(
      `RabbitMQ did not answer at ${where} within ${startTimeoutMs / 1000} s. ` +
        'See /var/log/rabbitmq/ and `rabbitmq-diagnostics status`.',
    )
  }
  console.error(`ensure-broker: RabbitMQ is up at ${where}.`)
}

await main()
