/**
 * G.711 companded audio (ITU-T G.711, as telephony and Twilio-style media streams send it) to linear PCM.
 * Both laws are decoded through 256-entry tables built once from the standard's bit layout.
 */

/** μ-law byte → 16-bit linear value (range ±32124). */
function mulawToLinear(byte: number): number {
  const u = ~byte & 0xff;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  const magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  return (u & 0x80) !== 0 ? -magnitude : magnitude;
}

/** A-law byte → 16-bit linear value (range ±32256). */
function alawToLinear(byte: number): number {
  const a = byte ^ 0x55;
  const exponent = (a >> 4) & 0x07;
  const mantissa = a & 0x0f;
  let magnitude = (mantissa << 4) + 8;
  if (exponent !== 0) magnitude = (magnitude + 0x100) << (exponent - 1);
  return (a & 0x80) !== 0 ? magnitude : -magnitude;
}

function table(decode: (byte: number) => number): Float32Array {
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) t[b] = decode(b) / 32768;
  return t;
}

/** Byte → sample in [-1, 1). */
export const MULAW_TABLE: Float32Array = table(mulawToLinear);
export const ALAW_TABLE: Float32Array = table(alawToLinear);
