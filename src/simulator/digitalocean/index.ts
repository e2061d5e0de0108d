export { startDoSimulator } from './server.js';
export type { DoSimulator, DoSimulatorOptions, MigrationView, RecordedRequest, SimulatedCluster } from './server.js';
export type { Fault, FaultInput } from './faults.js';
