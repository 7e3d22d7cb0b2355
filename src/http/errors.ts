/**
 * Typed errors of the node API's wire codecs (position map, chunked byte
 * stream, stream frames). Messages match what Go LiteFS v0.5.11 reports for
 * the same condition where Go has one (`EOF`, `unexpected EOF`, `invalid
 * stream frame type: 0x..`), because the server sends some of them verbatim
 * as HTTP error bodies.
 */
export class WireFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The input ended exactly where a new field had to start (Go's io.EOF). */
export class WireEOFError extends WireFormatError {
  constructor() {
    super('EOF');
  }
}

/** The input ended inside a field or a frame (Go's io.ErrUnexpectedEOF). */
export class UnexpectedEOFError extends WireFormatError {
  constructor() {
    super('unexpected EOF');
  }
}

/** A stream frame started with a type this protocol version does not define. */
export class UnknownFrameTypeError extends WireFormatError {
  readonly frameType: number;

  constructor(frameType: number) {
    super(`invalid stream frame type: 0x${frameType.toString(16).padStart(2, '0')}`);
    this.frameType = frameType;
  }
}

/** A length field exceeds the bound the decoder allows (it never allocates for it). */
export class WireLimitError extends WireFormatError {
  readonly field: string;
  readonly length: number;
  readonly limit: number;

  constructor(field: string, length: number, limit: number) {
    super(`${field} length ${length} exceeds limit ${limit}`);
    this.field = field;
    this.length = length;
    this.limit = limit;
  }
}

/** A chunk stream was used out of order (e.g. reading past its terminator). */
export class ChunkStreamError extends WireFormatError {}
