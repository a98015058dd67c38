/**
 * The logger shape every part of Portcullis writes to: pino's (the runtime passes a pino
 * logger), reduced to what the parts call, so nothing below the server depends on pino itself.
 */
export interface Logger {
  info: (obj: object, msg?: string) => void
  warn: (obj: object, msg?: string) => void
  error: (obj: object, msg?: string) => void
}

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} }
