/** ota-sim's public API: everything users import comes from here. */
export * from './errors.js';
