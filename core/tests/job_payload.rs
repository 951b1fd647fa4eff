//! `JobRecorded::write_payload` (the bulk-ingest encoder, written field by
//! field) gives exactly the bytes `serde_json::to_vec` gives, for any record:
//! the hashed payload cannot depend on which path wrote it.

use fluxacct_core::events::{CanonicalJson, Event, JobRecorded};
use proptest::prelude::*;

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        (0u32..2_000_000_000).prop_map(f64::from),
        (0.0f64..2e9),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
        Just(1e300),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9_.-]{0,12}", "\\PC{0,8}", "[\"\\\\\u{0}-\u{1f}é\u{7f}\u{2028}a]{0,6}"]
}

fn record() -> impl Strategy<Value = JobRecorded> {
    (
        (any::<u64>(), any::<i64>(), prop::option::of(text()), text(), text(), text()),
        (float(), float(), float(), float()),
        (any::<i64>(), any::<i64>(), any::<i64>()),
        (
            prop::option::of(text()),
            prop::option::of(prop_oneof![Just("{}"), Just("[1,\"a\"]"), Just("{\"version\":1}")]),
        ),
    )
        .prop_map(|((id, userid, username, bank, project, queue), (ts, tr, ti, rd), (nn, nc, ng), (ranks, r))| {
            JobRecorded {
                id,
                userid,
                username,
                bank,
                project,
                queue,
                t_submit: ts,
                t_run: tr,
                t_inactive: ti,
                nnodes: nn,
                ncores: nc,
                ngpus: ng,
                requested_duration: rd,
                ranks,
                r: r.and_then(|t| CanonicalJson::from_canonical_text(t.to_string())),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn write_payload_is_serde_json_bytes(j in record()) {
        let serde = serde_json::to_vec(&j).expect("serde");
        let mut fast = Vec::new();
        j.write_payload(&mut fast);
        prop_assert_eq!(&fast, &serde, "{}", String::from_utf8_lossy(&serde));
        prop_assert_eq!(Event::JobRecorded(j).encode().expect("encode"), serde);
    }
}
