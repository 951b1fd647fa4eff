//! The fast canonicalizer of `R` (`fluxacct_ingest::canon`) gives what
//! the serde tree path gives, or steps aside: for any JSON text (random
//! values written with random key order, whitespace, escapes, duplicate
//! keys and number spellings, and broken texts), `canonical_r` and
//! `canonical_r_tree` agree on the canonical text, the counts and the error.

use fluxacct_ingest::canon::fast_canonical_r;
use fluxacct_ingest::record::{canonical_r, canonical_r_tree};
use proptest::prelude::*;

/// A JSON value written as text in one of several equivalent spellings.
fn value(depth: u32) -> BoxedStrategy<String> {
    let num = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (-1e6f64..1e6).prop_map(|f| f.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        Just("-0".to_string()),
        Just("-0.0".to_string()),
        Just("1e5".to_string()),
        Just("1E+2".to_string()),
        Just("18446744073709551616".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("0.1e-3".to_string()),
        Just("01".to_string()),
        Just("1.".to_string()),
        Just("-".to_string()),
    ];
    let string = prop_oneof![
        "[a-z0-9_\\[\\]\\-,]{0,6}".prop_map(|s| format!("\"{s}\"")),
        "[ -~é]{0,4}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("\"a\\u00e9\\n\"".to_string()),
        Just("\"a\\/b\"".to_string()),
    ];
    let leaf = prop_oneof![num, string, Just("true".into()), Just("false".into()), Just("null".into())];
    if depth == 0 {
        return leaf.boxed();
    }
    let inner = value(depth - 1);
    prop_oneof![
        3 => leaf,
        1 => prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
        2 => prop::collection::vec((prop::sample::select(vec!["a", "b", "rank", "core", "gpu", "z", "é"]), inner), 0..4)
            .prop_map(|m| format!("{{{}}}", m.iter().map(|(k, v)| format!("\"{k}\" :{v}")).collect::<Vec<_>>().join(","))),
    ]
    .boxed()
}

/// An `R`-shaped text: mostly valid R_lite entries, sometimes odd ones.
fn r_text() -> impl Strategy<Value = String> {
    let idset = prop_oneof![
        Just("0".to_string()),
        Just("0-3".to_string()),
        Just("0-1,5".to_string()),
        Just("3-1".to_string()),
        Just("x".to_string()),
        Just("0-18446744073709551615".to_string()),
    ];
    let children = prop_oneof![
        (idset.clone(), prop::option::of(idset.clone())).prop_map(|(c, g)| match g {
            Some(g) => format!("{{\"gpu\":\"{g}\", \"core\":\"{c}\"}}"),
            None => format!("{{\"core\":\"{c}\"}}"),
        }),
        value(1),
    ];
    let entry = prop_oneof![
        4 => (idset, children).prop_map(|(r, c)| format!("{{\"rank\":\"{r}\",\"children\":{c}}}")),
        1 => value(2),
    ];
    (
        prop::collection::vec(entry, 0..4),
        prop::option::of(value(2)),
        any::<bool>(),
        prop::sample::select(vec!["1", "1.0", "\"1\"", "null"]),
    )
        .prop_map(|(entries, extra, has_version, version)| {
            let mut members = vec![format!(
                "\"execution\": {{\"R_lite\": [{}], \"starttime\": 1.5e9, \"nodelist\": [\"node[0-3]\"]}}",
                entries.join(",")
            )];
            if has_version {
                members.insert(0, format!("\"version\":{version}"));
            }
            if let Some(x) = extra {
                members.push(format!("\"scheduling\": {x}"));
            }
            format!("{{ {} }}", members.join(" ,\n"))
        })
}

fn same(text: &str) -> Result<(), TestCaseError> {
    let fast = canonical_r(text).map(|(c, n)| (c.as_str().to_string(), n));
    let tree = canonical_r_tree(text).map(|(c, n)| (c.as_str().to_string(), n));
    prop_assert_eq!(&fast, &tree, "{}", text);
    if let Ok((c, _)) = &tree {
        // And that is what a serde_json::Value encodes to.
        let v: serde_json::Value = serde_json::from_str(text).expect("valid");
        prop_assert_eq!(c, &v.to_string());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_agrees_with_the_tree_on_r_shaped_texts(text in r_text()) {
        same(&text)?;
    }

    #[test]
    fn fast_path_agrees_with_the_tree_on_any_json(text in value(3)) {
        same(&format!("{{\"version\":1,\"execution\":{{\"R_lite\":[]}},\"x\":{text}}}"))?;
        same(&text)?;
    }

    #[test]
    fn fast_path_agrees_on_cut_texts(text in r_text(), cut in any::<prop::sample::Index>()) {
        let mut end = cut.index(text.len() + 1);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        same(&text[..end])?;
    }
}

/// The R that Flux writes takes the fast path.
#[test]
fn flux_r_takes_the_fast_path() {
    let r = r#"{"version":1,"execution":{"R_lite":[{"rank":"0-1","children":{"core":"0-31","gpu":"0-1"}}],"starttime":1699980357,"expiration":1700005557.5,"nodelist":["node[0-1]"]}}"#;
    let (text, counts) = fast_canonical_r(r).expect("fast path");
    assert_eq!(
        text,
        r#"{"execution":{"R_lite":[{"children":{"core":"0-31","gpu":"0-1"},"rank":"0-1"}],"expiration":1700005557.5,"nodelist":["node[0-1]"],"starttime":1699980357},"version":1}"#
    );
    assert_eq!((counts.nnodes, counts.ncores, counts.ngpus), (2, 64, 4));
    // Escapes and duplicate keys step aside.
    assert!(fast_canonical_r(r#"{"version":1,"execution":{"R_lite":[]},"a":"\n"}"#).is_none());
    assert!(fast_canonical_r(r#"{"version":1,"version":2,"execution":{"R_lite":[]}}"#).is_none());
}
