/// Nanoseconds since the Unix epoch (or a duration): finscope keeps capture times exact
/// and converts to seconds only when printing. Defined at the bottom of the stack so that
/// frame sources, flows and reports share one time type.
public typealias Nanoseconds = Int64
