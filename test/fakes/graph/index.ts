export { startFakeEntra, type FakeEntra, type FakeEntraOptions, type FaultOptions, type GraphCall } from './server.ts'
export { FakeTenant, PHONE_IDS, REPORT_REFUSALS, type FakeUser, type NewFakeUser, type PerUserMfaState, type ReportRefusal, type TapPolicy } from './tenant.ts'
export { GRAPH_ORIGIN } from './graph-routes.ts'
export { AUTHORITY_ORIGIN } from './identity.ts'
