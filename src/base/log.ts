// Structured logs (JSON lines on stderr) for the controller and agents, via pino.
import { pino, destination, type Logger } from "pino";

export type { Logger };

export function createLogger(component: string, level = process.env["SWITCHYARD_LOG_LEVEL"] ?? "info"): Logger {
  return pino({ name: component, level, base: { component } }, destination(2));
}
