/**
 * Built-in health checks of the real servers: {@link HealthMonitor} (keepalived's rise/fall model, jittered
 * schedule, live update) and the TCP and HTTP probes it runs.
 *
 * @module
 */
export * from "./monitor.ts";
export * from "./probe.ts";
