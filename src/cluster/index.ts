export { startCluster, type Cluster, type ClusterOptions } from './cluster.ts'
export { ClusterError, type FeedEntry } from './change-feed.ts'
export type { ReplayMarks } from './replay-marks.ts'
export { joinCluster, type Joined, type JoinOptions } from './join.ts'
