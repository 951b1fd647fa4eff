/// Errors encoding or decoding an event payload.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// An event kind/version this code does not know.
    #[error("unknown event kind {kind} version {version}")]
    UnknownEvent {
        /// Kind.
        kind: String,
        /// Version.
        version: u32,
    },
    /// A payload that does not decode.
    #[error("cannot decode {kind} v{version}: {what}")]
    Decode {
        /// Kind.
        kind: String,
        /// Version.
        version: u32,
        /// Decoder message.
        what: String,
    },
    /// A payload that does not encode (e.g. a non-finite float).
    #[error("cannot encode event: {0}")]
    Encode(String),
}
