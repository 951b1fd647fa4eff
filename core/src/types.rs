use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Position of an event in the log. Gapless, starting at 1 (genesis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// The sequence number of the genesis event.
    pub const GENESIS: Seq = Seq(1);

    /// The next sequence number.
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A blake3 hash of an event's canonical encoding (or the all-zero hash that
/// the genesis event links to).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EventHash(pub [u8; 32]);

impl EventHash {
    /// The `prev_hash` of the genesis event: 32 zero bytes.
    pub const ZERO: EventHash = EventHash([0u8; 32]);

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Builds a hash from a byte slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<EventHash> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(EventHash(arr))
    }
}

impl fmt::Debug for EventHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventHash({})", self.to_hex())
    }
}

impl fmt::Display for EventHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Error parsing a hex event hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event hash {0:?}: expected 64 hex digits")]
pub struct ParseHashError(pub String);

impl FromStr for EventHash {
    type Err = ParseHashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseHashError(s.to_string());
        if s.len() != 64 || !s.is_ascii() {
            return Err(err());
        }
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|_| err())?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| err())?;
        }
        Ok(EventHash(out))
    }
}

impl Serialize for EventHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for EventHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Who issued a command: the real uid and the user name it maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Real user id of the process that appended the event.
    pub uid: u32,
    /// User name for `uid` (or the uid in decimal when it has no name).
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_hex_round_trip() {
        let h = EventHash([0xab; 32]);
        let s = h.to_hex();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<EventHash>().unwrap(), h);
        assert!("zz".parse::<EventHash>().is_err());
        assert!("é".repeat(32).parse::<EventHash>().is_err());
    }
}
