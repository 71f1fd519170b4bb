/**
 * An ingest node as a child process (`node --import tsx src/main.ts`, the main
 * `npm start` runs compiled), so a test can kill -9 it and start it again on
 * the same data directory. Resolves with its ports once it logs "listening".
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

export interface ChildNode { proc: ChildProcess; mqtts: number; http: number; /** The plain MQTT port (0: disabled). */ mqtt: number; /** The mutual-TLS port (0: disabled). */ mqttsMutual: number }

/** The port of a listener as the node logs it (`mqtts://host:port (…)`), 0 when it is disabled. */
const portOf = (url: string | undefined): number => url === undefined || url === 'disabled' ? 0 : Number(/:(\d+)(?: |$)/.exec(url)![1])

export async function startChildNode (dataDir: string, adminToken: string, env: Record<string, string> = {}): Promise<ChildNode> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: {
      ...process.env, VF_DATA_DIR: dataDir, VF_MQTT_PORT: '0', VF_MQTTS_PORT: '0', VF_MQTTS_HOST: '127.0.0.1', VF_MQTTS_MTLS: 'false',
      VF_HTTP_PORT: '0', VF_ADMIN_TOKEN: adminToken, VF_DEVICE_AUTH_COST: '10', VF_LOG_LEVEL: 'info', VF_PUBLISH_RATE: '10000', VF_SHUTDOWN_TIMEOUT_MS: '5000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: proc.stdout })
  for await (const line of lines) {
    const m = JSON.parse(line) as { msg?: string; mqtt?: string; mqtts?: string; mqttsMutual?: string; http?: string }
    if (m.msg === 'vitalflow ingest node listening') {
      lines.on('line', () => {}) // keep draining stdout
      return { proc, mqtts: portOf(m.mqtts), http: portOf(m.http), mqtt: portOf(m.mqtt), mqttsMutual: portOf(m.mqttsMutual) }
    }
  }
  throw new Error('node exited before listening')
}
