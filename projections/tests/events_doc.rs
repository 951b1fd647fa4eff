//! Every kind in `Event::catalogue()` is documented in docs/events.md with
//! its current version.

#[test]
fn every_catalogue_kind_is_in_docs_events_md() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.md");
    let doc = std::fs::read_to_string(path).expect("docs/events.md");
    for (kind, version) in fluxacct_core::Event::catalogue() {
        let row = format!("| `{kind}` | {version} |");
        assert!(doc.contains(&row), "docs/events.md lacks the row for {kind} v{version}");
    }
}
