/**
 * Shared end-to-end test helpers: a whole lab ({@link withLab}), the gateway and nginx as child processes
 * in namespaces, tcpdump captures dissected by scapy, scapy-crafted TCP segments, and bounded waiting.
 *
 * @module
 */
export * from "./bytes.ts";
export * from "./capture.ts";
export * from "./gateway.ts";
export * from "./lab.ts";
export * from "./nginx.ts";
export * from "./process.ts";
export * from "./url.ts";
