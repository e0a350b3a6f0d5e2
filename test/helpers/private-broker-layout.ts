// The files and environment of a PrivateBroker node (test/helpers/private-broker.ts): everything in
// its data directory, nothing read from /etc/rabbitmq or /var/lib/rabbitmq, nothing of the test
// process's environment (a RABBITMQ_NODENAME there must not redirect it).
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chownTree, type OwnerRecord, startTicks } from './private-broker-os.ts'

/** Where a node lives. */
export interface NodeLayout {
  nodeName: string
  dataDir: string
  port: number
  distPort: number
}

/**
 * Creates the data directory: config (no plugins, file log only, plus `extraConfig` lines), an env
 * file naming this node, a private Erlang cookie, owner.json for the stale-node clean-up, and
 * `advancedConfig` as advanced.config when given (and `cookie`, e.g. one shared by a cluster's nodes); owned by `account` (the `rabbitmq` user) when given.
 */
export function prepareDataDir(
  layout: NodeLayout,
  extraConfig: string,
  account: { uid: number; gid: number } | undefined,
  advancedConfig?: string,
  cookie: string = randomBytes(24).toString('hex').toUpperCase(),
): void {
  const dir = layout.dataDir
  mkdirSync(join(dir, 'log'), { recursive: true, mode: 0o750 })
  mkdirSync(join(dir, 'mnesia'), { mode: 0o750 })
  const owner: OwnerRecord = {
    ownerPid: process.pid,
    ownerStart: startTicks(process.pid),
    nodeName: layout.nodeName,
  }
  writeFileSync(join(dir, 'owner.json'), `${JSON.stringify(owner)}\n`)
  // No plugins: the node boots faster and listens on the AMQP port only.
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n')
  const config = ['log.console = false', 'log.file.level = info', 'loopback_users.guest = true', extraConfig]
  writeFileSync(join(dir, 'rabbitmq.conf'), `${config.join('\n').trim()}\n`)
  if (advancedConfig) writeFileSync(join(dir, 'advanced.config'), `${advancedConfig.trim()}\n`)
  // Read by the server and by rabbitmqctl instead of /etc/rabbitmq/rabbitmq-env.conf, whose NODENAME
  // is the shared broker's: a rabbitmqctl without -n still reaches this node.
  writeFileSync(join(dir, 'rabbitmq-env.conf'), `NODENAME=${layout.nodeName}\n`)
  writeFileSync(join(dir, '.erlang.cookie'), cookie, { mode: 0o400 })
  if (account) chownTree(dir, account)
}

/** The environment of the node's rabbitmq-server (`server`) or of a rabbitmqctl aimed at it. */
export function nodeEnv(layout: NodeLayout, server: boolean): NodeJS.ProcessEnv {
  const dir = layout.dataDir
  const common = {
    PATH: `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}`,
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    HOME: dir, // the private .erlang.cookie
    RABBITMQ_NODENAME: layout.nodeName,
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  }
  if (!server) {
    // rabbitmqctl's own Erlang node takes any free port (default: 35672-35682, shared by every CLI).
    return { ...common, RABBITMQ_CTL_DIST_PORT_MIN: '0', RABBITMQ_CTL_DIST_PORT_MAX: '0' }
  }
  return {
    ...common,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(layout.port),
    RABBITMQ_DIST_PORT: String(layout.distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_CONFIG_FILES: join(dir, 'conf.d'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_PID_FILE: join(dir, 'pid'),
  }
}

/** A file's text, '' when it cannot be read. */
export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

/** The last `lines` lines of a file. */
export function tail(path: string, lines: number): string {
  return readText(path).split('\n').slice(-lines).join('\n').trim()
}
