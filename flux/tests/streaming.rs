//! Streaming RPCs against a real flux-core broker: the broker's own
//! `log.dmesg` service answers a streaming request with one response per
//! buffered log entry, then ends the stream with `ENODATA`; a topic
//! nobody serves ends it with an error response carrying its errno.
//!
//! Needs flux-core: `$FLUX_PREFIX/bin/flux` (default
//! /var/cache/fluxacct/flux-core-0.88.0); skips with a one-line notice
//! when there is none. The test runs itself again inside `flux start`
//! (`FLUXACCT_STREAM_CHILD` set), where `FLUX_URI` names the instance.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use fluxacct_flux::{Flux, FluxEnv, ENODATA};

/// Where `.ci/run` builds flux-core.
const CI_CACHE: &str = "/var/cache/fluxacct/flux-core-0.88.0";

fn prefix() -> Option<PathBuf> {
    let p = std::env::var_os("FLUX_PREFIX").filter(|p| !p.is_empty()).map(PathBuf::from);
    let p = p.unwrap_or_else(|| PathBuf::from(CI_CACHE));
    p.join("bin/flux").is_file().then_some(p)
}

/// The checks, inside the instance.
fn in_instance(lib: PathBuf) {
    let flux = Flux::open(&FluxEnv { libflux: Some(lib), ..FluxEnv::default() }).expect("open the instance");
    // The backlog, one response each, then the end of the stream.
    let entries: Vec<Option<String>> = flux
        .rpc_streaming("log.dmesg", Some(r#"{"follow":false}"#))
        .expect("send")
        .collect::<Result<_, _>>()
        .expect("every response read");
    assert!(!entries.is_empty(), "the broker has logged its start");
    // Each entry is an RFC 5424 line (`<pri>1 timestamp ...`).
    assert!(entries.iter().all(|e| e.as_deref().is_some_and(|t| t.starts_with('<'))), "{entries:?}");
    // No backlog: the stream ends at once, and stays ended.
    let mut none = flux.rpc_streaming("log.dmesg", Some(r#"{"follow":false,"nobacklog":true}"#)).expect("send");
    assert!(none.next().is_none());
    assert!(none.next().is_none());
    // The callback form sees the same responses.
    let mut n = 0;
    flux.rpc_stream("log.dmesg", r#"{"follow":false}"#, |_| {
        n += 1;
        Ok(())
    })
    .expect("stream");
    assert!(n >= entries.len());
    // An error response ends the stream with its errno (ENOSYS: no
    // service), as the one item.
    let mut bad = flux.rpc_streaming("fluxacct-no-such-service.x", Some("{}")).expect("send");
    let e = bad.next().expect("an error response").expect_err("an error");
    assert_eq!(e.errno(), 38, "{e}");
    assert!(e.to_string().starts_with("fluxacct-no-such-service.x: "), "{e}");
    assert!(bad.next().is_none());
    assert_ne!(e.errno(), ENODATA);
}

#[test]
fn streaming_responses_are_read_one_by_one_until_enodata() {
    if let Some(lib) = std::env::var_os("FLUXACCT_STREAM_CHILD") {
        in_instance(PathBuf::from(lib));
        return;
    }
    let Some(prefix) = prefix() else {
        let _ = writeln!(std::io::stderr(), "real-broker test skipped: no flux-core found (set FLUX_PREFIX)");
        return;
    };
    let me = std::env::current_exe().expect("test binary");
    let o = Command::new(prefix.join("bin/flux"))
        .arg("start")
        .arg("--test-size=1")
        .arg(&me)
        .args(["--exact", "streaming_responses_are_read_one_by_one_until_enodata", "--nocapture"])
        .env("FLUXACCT_STREAM_CHILD", prefix.join("lib"))
        .env("LD_LIBRARY_PATH", prefix.join("lib"))
        .output()
        .expect("flux start");
    assert!(
        o.status.success(),
        "inside the instance: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 passed"), "{}", String::from_utf8_lossy(&o.stdout));
}
