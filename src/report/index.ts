/** Reports of a scenario run (src/report): console table, progress bar, JUnit XML, JSON, self-contained HTML. */
export { renderConsole, type ConsoleOptions } from './console.js';
export { createProgress, type Progress, type ProgressOptions } from './progress.js';
export { renderJUnit } from './junit.js';
export { renderJson } from './json.js';
export { renderHtml } from './html.js';
export { renderStatechart, renderTransitionTable, chartModel, type ChartModel, type ChartEdge } from './statechart.js';
export { renderTimeline, TIMELINE_LIMITS } from './timeline.js';
export { writeReports, REPORT_FILES, type ReportPaths } from './write.js';
