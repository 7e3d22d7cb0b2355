/** Public API of the LTX codec (superfly/ltx v0.3.13 format). */
export * from './errors.js';
export * from './crc64.js';
export * from './checksum.js';
export * from './types.js';
export * from './pos.js';
export * from './header.js';
export * from './trailer.js';
export * from './sink.js';
export * from './source.js';
export { LZ4FrameEncoder, LZ4FrameDecoder, LZ4_FRAME_MAGIC } from './lz4frame.js';
export { LTXEncoder } from './encoder.js';
export { pageOrderError } from './page-order.js';
export * from './decoder.js';
export * from './decode-file.js';
export * from './page-reader.js';
export * from './compactor.js';
