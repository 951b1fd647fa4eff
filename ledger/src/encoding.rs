//! The canonical encoding of an event, which is what gets hashed.
//!
//! `docs/canonical-encoding.md` is the normative description; this module
//! implements it and the golden test below pins it.
//!
//! ```text
//! hash = blake3( "fluxacct-event-v1" 0x00
//!              || u64le(seq)
//!              || i64le(recorded_at_us)
//!              || u32le(actor_uid)
//!              || str(actor_name)
//!              || u32le(argc) || str(argv[0]) || ... || str(argv[argc-1])
//!              || str(kind)
//!              || u32le(version)
//!              || bytes(payload)
//!              || prev_hash (32 raw bytes) )
//! str(s)   = u32le(len(utf8 bytes)) || utf8 bytes
//! bytes(b) = u32le(len(b)) || b
//! ```

use crate::types::{Actor, EventHash, Seq};

/// Domain-separation prefix of every hashed event encoding.
pub const DOMAIN: &[u8] = b"fluxacct-event-v1\0";

fn put_str(buf: &mut Vec<u8>, s: &[u8]) {
    // Lengths beyond u32 cannot occur: SQLite limits values to 1 GB.
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s);
}

/// Writes the canonical encoding of an event into `buf` (cleared first).
/// The event's hash is `blake3(buf)`.
#[allow(clippy::too_many_arguments)]
pub fn encode_into(
    buf: &mut Vec<u8>,
    seq: Seq,
    recorded_at: i64,
    actor_uid: u32,
    actor_name: &str,
    argv: &[String],
    kind: &str,
    version: u32,
    payload: &[u8],
    prev_hash: &EventHash,
) {
    encode_raw(
        buf,
        seq,
        recorded_at,
        actor_uid,
        actor_name.as_bytes(),
        argv,
        kind.as_bytes(),
        version,
        payload,
        prev_hash,
    );
}

/// [`encode_into`] with the actor name and kind given as their UTF-8 bytes
/// (as stored), for verification.
#[allow(clippy::too_many_arguments)]
pub fn encode_raw(
    buf: &mut Vec<u8>,
    seq: Seq,
    recorded_at: i64,
    actor_uid: u32,
    actor_name: &[u8],
    argv: &[String],
    kind: &[u8],
    version: u32,
    payload: &[u8],
    prev_hash: &EventHash,
) {
    buf.clear();
    buf.extend_from_slice(DOMAIN);
    buf.extend_from_slice(&seq.0.to_le_bytes());
    buf.extend_from_slice(&recorded_at.to_le_bytes());
    buf.extend_from_slice(&actor_uid.to_le_bytes());
    put_str(buf, actor_name);
    buf.extend_from_slice(&(argv.len() as u32).to_le_bytes());
    for a in argv {
        put_str(buf, a.as_bytes());
    }
    put_str(buf, kind);
    buf.extend_from_slice(&version.to_le_bytes());
    put_str(buf, payload);
    buf.extend_from_slice(&prev_hash.0);
}

/// Computes the hash of an event from its fields (see the module docs).
#[allow(clippy::too_many_arguments)]
pub fn event_hash(
    seq: Seq,
    recorded_at: i64,
    actor: &Actor,
    argv: &[String],
    kind: &str,
    version: u32,
    payload: &[u8],
    prev_hash: &EventHash,
) -> EventHash {
    let mut buf = Vec::with_capacity(128 + payload.len());
    encode_into(&mut buf, seq, recorded_at, actor.uid, &actor.name, argv, kind, version, payload, prev_hash);
    EventHash(*blake3::hash(&buf).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden hash: pins the canonical encoding. If this test fails, the
    /// encoding changed and every existing ledger would fail verification.
    #[test]
    fn golden_hash_is_pinned() {
        let actor = Actor { uid: 1000, name: "flux".into() };
        let argv = vec!["flux-account".to_string(), "add-bank".into(), "root".into(), "1".into()];
        let payload = br#"{"bank":"root","parent_bank":"","shares":1,"priority":0.0,"ignore_older_than":0}"#;
        let h =
            event_hash(Seq(2), 1_767_225_600_000_000, &actor, &argv, "BankAdded", 1, payload, &EventHash([0x11; 32]));
        // The same value is worked through by hand in docs/canonical-encoding.md.
        let mut manual = Vec::new();
        manual.extend_from_slice(b"fluxacct-event-v1\0");
        manual.extend_from_slice(&2u64.to_le_bytes());
        manual.extend_from_slice(&1_767_225_600_000_000i64.to_le_bytes());
        manual.extend_from_slice(&1000u32.to_le_bytes());
        manual.extend_from_slice(&4u32.to_le_bytes());
        manual.extend_from_slice(b"flux");
        manual.extend_from_slice(&4u32.to_le_bytes());
        for a in &argv {
            manual.extend_from_slice(&(a.len() as u32).to_le_bytes());
            manual.extend_from_slice(a.as_bytes());
        }
        manual.extend_from_slice(&9u32.to_le_bytes());
        manual.extend_from_slice(b"BankAdded");
        manual.extend_from_slice(&1u32.to_le_bytes());
        manual.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        manual.extend_from_slice(payload);
        manual.extend_from_slice(&[0x11; 32]);
        assert_eq!(h.0, *blake3::hash(&manual).as_bytes());
        assert_eq!(h.to_hex(), GOLDEN);
    }

    const GOLDEN: &str = "946d77c9d425b0e07b2f1a2270ca23c14ebc99f61df7345294a7892b8fd24bed";

    #[test]
    fn every_field_changes_the_hash() {
        let actor = Actor { uid: 1, name: "a".into() };
        let base = event_hash(Seq(1), 0, &actor, &[], "K", 1, b"{}", &EventHash::ZERO);
        let other = Actor { uid: 2, name: "a".into() };
        assert_ne!(base, event_hash(Seq(2), 0, &actor, &[], "K", 1, b"{}", &EventHash::ZERO));
        assert_ne!(base, event_hash(Seq(1), 1, &actor, &[], "K", 1, b"{}", &EventHash::ZERO));
        assert_ne!(base, event_hash(Seq(1), 0, &other, &[], "K", 1, b"{}", &EventHash::ZERO));
        assert_ne!(base, event_hash(Seq(1), 0, &actor, &["x".into()], "K", 1, b"{}", &EventHash::ZERO));
        assert_ne!(base, event_hash(Seq(1), 0, &actor, &[], "L", 1, b"{}", &EventHash::ZERO));
        assert_ne!(base, event_hash(Seq(1), 0, &actor, &[], "K", 2, b"{}", &EventHash::ZERO));
        assert_ne!(base, event_hash(Seq(1), 0, &actor, &[], "K", 1, b"{ }", &EventHash::ZERO));
        assert_ne!(base, event_hash(Seq(1), 0, &actor, &[], "K", 1, b"{}", &EventHash([1; 32])));
        // Length prefixes keep field boundaries unambiguous.
        let a = event_hash(Seq(1), 0, &actor, &["ab".into(), "c".into()], "K", 1, b"", &EventHash::ZERO);
        let b = event_hash(Seq(1), 0, &actor, &["a".into(), "bc".into()], "K", 1, b"", &EventHash::ZERO);
        assert_ne!(a, b);
    }
}
