/** The live fleet dashboard (`ota-sim fleet --dashboard PORT`): start it, publish snapshots, close it. */
export { DASHBOARD_DEFAULTS, OTHER_SERIES, startDashboard, type Dashboard, type DashboardOptions, type DashboardStats } from './server.js';
export { renderDashboardPage, type PageConfig } from './page.js';
export { MAX_FAILING_ROWS, type FailingDevice, type FleetSnapshot } from './types.js';
