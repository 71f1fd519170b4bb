/** `npm start`: one ingest node on the configuration in the environment (VF_*), embedded defaults otherwise. */
import pino from 'pino'
import { ConfigError, loadConfig } from './config/index.ts'
import { startNode } from './pipeline/index.ts'

let config
try {
  config = loadConfig()
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`vitalflow: ${err.message}\n`)
    process.exit(2)
  }
  throw err
}
const logger = pino({ level: config.LOG_LEVEL })
// signals are handled from the first moment: one that arrives while the node starts stops it once it is up
let node: Awaited<ReturnType<typeof startNode>> | null = null
let stopWanted: NodeJS.Signals | null = null
let stopping = false
function stop (signal: NodeJS.Signals): void {
  if (node === null) { stopWanted = signal; return }
  if (stopping) return
  stopping = true
  logger.info({ signal }, 'stopping: closing listeners, flushing batches')
  node.close().then(() => { logger.info('stopped'); process.exit(0) }, (err: unknown) => {
    logger.error({ err }, 'unclean stop')
    process.exit(1)
  })
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => { stop(signal) })

node = await startNode(config, logger)
const storage = node.config.CLICKHOUSE_URL === undefined
  ? `embedded chDB in ${node.config.DATA_DIR}/chdb`
  : node.config.CLICKHOUSE_CLUSTER === undefined ? 'ClickHouse server (VF_CLICKHOUSE_URL)' : `ClickHouse cluster ${node.config.CLICKHOUSE_CLUSTER} (VF_CLICKHOUSE_URL)`
logger.info({
  mqtt: node.mqtt === null ? 'disabled' : `mqtt://${node.mqtt.address}:${node.mqtt.port}`,
  mqtts: `mqtts://${node.mqtts.address}:${node.mqtts.port}`,
  mqttsMutual: node.mqttsMutual === null ? 'disabled' : `mqtts://${node.mqttsMutual.address}:${node.mqttsMutual.port} (client certificates)`,
  http: `http://${node.http.address}:${node.http.port}`,
  storage,
  ackAfter: node.config.ACK_AFTER,
}, 'vitalflow ingest node listening')
logger.info(`simulate a device fleet against this node: npm run sim -- --devices 300 --seconds 30`)

process.on('SIGHUP', () => {
  try {
    node?.reloadTls()
    logger.info('TLS certificate and key reloaded')
  } catch (err) {
    logger.error({ error: (err as Error).name }, 'TLS reload failed; the previous certificate stays in use')
  }
})
if (stopWanted !== null) stop(stopWanted)
