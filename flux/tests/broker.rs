//! The Flux client against a real flux-core broker:
//!
//! * streaming RPCs: the broker's own `log.dmesg` service answers a
//!   streaming request with one response per buffered log entry, then
//!   ends the stream with `ENODATA`; a topic nobody serves ends it with an
//!   error response carrying its errno;
//! * services: a handle registers a name, receives the requests sent to
//!   it with the requester's credentials, and answers them.
//!
//! Needs flux-core: `$FLUX_PREFIX/bin/flux` (default
//! /var/cache/fluxacct/flux-core-0.88.0); skips with a one-line notice
//! when there is none. Each test runs itself again inside `flux start`
//! (`FLUXACCT_FLUX_CHILD` set to the library directory), where
//! `FLUX_URI` names the instance.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use fluxacct_flux::{Flux, FluxEnv, ENODATA, EPERM, ROLE_OWNER};

/// Where `.ci/run` builds flux-core.
const CI_CACHE: &str = "/var/cache/fluxacct/flux-core-0.88.0";

fn prefix() -> Option<PathBuf> {
    let p = std::env::var_os("FLUX_PREFIX").filter(|p| !p.is_empty()).map(PathBuf::from);
    let p = p.unwrap_or_else(|| PathBuf::from(CI_CACHE));
    p.join("bin/flux").is_file().then_some(p)
}

fn env(lib: &std::ffi::OsStr) -> FluxEnv {
    FluxEnv { libflux: Some(PathBuf::from(lib)), ..FluxEnv::default() }
}

/// Runs the test `name` again inside a one-broker instance: `false`
/// (after a notice) when there is no flux-core, and the test has nothing
/// to do; `true` when the run inside passed.
fn in_instance(name: &str) -> bool {
    let Some(prefix) = prefix() else {
        let _ = writeln!(std::io::stderr(), "real-broker test skipped: no flux-core found (set FLUX_PREFIX)");
        return false;
    };
    let me = std::env::current_exe().expect("test binary");
    let o = Command::new(prefix.join("bin/flux"))
        .arg("start")
        .arg("--test-size=1")
        .arg(&me)
        .args(["--exact", name, "--nocapture"])
        .env("FLUXACCT_FLUX_CHILD", prefix.join("lib"))
        .env("LD_LIBRARY_PATH", prefix.join("lib"))
        .output()
        .expect("flux start");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "inside the instance: {stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("1 passed"), "{stdout}");
    true
}

/// The streaming checks, inside the instance.
fn streams(lib: &std::ffi::OsStr) {
    let flux = Flux::open(&env(lib)).expect("open the instance");
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
    match std::env::var_os("FLUXACCT_FLUX_CHILD") {
        Some(lib) => streams(&lib),
        None => {
            in_instance("streaming_responses_are_read_one_by_one_until_enodata");
        }
    }
}

/// The service checks, inside the instance: a thread with its own handle
/// serves `fluxacct-test`, answering `echo` with what it received and
/// anything else with `EPERM`.
fn serves(lib: &std::ffi::OsStr) {
    let (ready, registered) = std::sync::mpsc::channel();
    let served = {
        let env = env(lib);
        std::thread::spawn(move || {
            let flux = Flux::open(&env).expect("open the instance");
            let svc = flux.register_service("fluxacct-test").expect("register");
            // The name is taken while registered.
            let again = Flux::open(&env).expect("open the instance");
            let e = again.register_service("fluxacct-test").err().expect("taken");
            assert_eq!(e.errno(), 17, "EEXIST: {e}");
            assert!(flux.register_service("a.b").is_err());
            ready.send(()).expect("main waits");
            for _ in 0..2 {
                let req = svc.recv().expect("a request");
                if req.topic() == "fluxacct-test.echo" {
                    let reply = serde_json::json!({
                        "topic": req.topic(),
                        "payload": req.payload(),
                        "userid": req.userid(),
                        "rolemask": req.rolemask(),
                    });
                    req.respond(Some(&reply.to_string())).expect("respond");
                } else {
                    req.respond_error(EPERM, "not allowed here").expect("respond");
                }
            }
        })
    };
    registered.recv().expect("the service registered");
    let flux = Flux::open(&env(lib)).expect("open the instance");
    let reply = flux.rpc("fluxacct-test.echo", Some(r#"{"x":1}"#)).expect("echo").expect("a payload");
    let v: serde_json::Value = serde_json::from_str(&reply).expect("JSON");
    assert_eq!(v["topic"], "fluxacct-test.echo");
    assert_eq!(v["payload"], r#"{"x":1}"#);
    // The instance owner (this process's user) asked.
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc/self"));
    assert_eq!(v["userid"], uid);
    assert_eq!(v["rolemask"].as_u64().expect("rolemask") as u32 & ROLE_OWNER, ROLE_OWNER, "{v}");
    let e = flux.rpc_unless("fluxacct-test.drop", Some("{}"), 0).expect_err("refused");
    assert_eq!(e.errno(), EPERM);
    assert_eq!(e.to_string(), "fluxacct-test.drop: not allowed here");
    served.join().expect("the service thread");
    // Unregistered when the service was dropped: nobody serves the name.
    let e = flux.rpc("fluxacct-test.echo", Some("{}")).expect_err("no service");
    assert_eq!(e.errno(), 38, "ENOSYS: {e}");
}

#[test]
fn a_registered_service_receives_requests_with_credentials_and_answers() {
    match std::env::var_os("FLUXACCT_FLUX_CHILD") {
        Some(lib) => serves(&lib),
        None => {
            in_instance("a_registered_service_receives_requests_with_credentials_and_answers");
        }
    }
}
