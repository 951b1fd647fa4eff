//! `flux account-service` against a real broker: a guest user on another
//! rank reads through the `accounting` service what the owner reads
//! locally, while the ledger file is closed to them; owner-only endpoints
//! refuse guests; flux-accounting's own request payloads are answered as
//! its service answers them; `accounting.shutdown_service` stops the
//! service and a service killed mid-write loses nothing; concurrent
//! clients all get their answers.
//!
//! The guest tests need root (to create the guest with `useradd` and run
//! as them with `runuser`); without it they skip with a notice. Without a
//! flux-core install every test skips (see `flux_instance/mod.rs`).

mod flux_instance;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flux_instance::{note, owner, ran, Instance, Run, Setup};
use serde_json::Value;

const SERVICE_BIN: &str = env!("CARGO_BIN_EXE_flux-account-service");
const GUEST: &str = "fxsvc-guest";

/// A two-broker instance that lets guests connect (flux-core's
/// `access.allow-guest-user`; root may own it, `access.allow-root-owner`).
fn instance() -> Option<Instance> {
    let inst = Instance::start(Setup {
        size: 2,
        config: vec![("access.toml".into(), "[access]\nallow-guest-user = true\nallow-root-owner = true\n".into())],
        env: vec![],
        args: vec![],
    })?;
    // The brokers' sockets live in a 0700 run directory: let guests reach them.
    for rank in ["0", "1"] {
        let uri = inst.sh_ok(&format!("flux exec -r {rank} printenv FLUX_URI"));
        if let Some(dir) = Path::new(uri.trim().trim_start_matches("local://")).parent() {
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711));
        }
    }
    Some(inst)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Creates the guest user (once); `false` (after a notice) when the test
/// cannot: not root, or no useradd/runuser.
fn guest_user(test: &str) -> bool {
    if !is_root() {
        note(&format!("{test}: skipped: not running as root (cannot create the guest user)"));
        return false;
    }
    for tool in ["useradd", "runuser"] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output();
        if !found.map(|o| o.status.success()).unwrap_or(false) {
            note(&format!("{test}: skipped: {tool} not available"));
            return false;
        }
    }
    let exists = Command::new("id").arg("-u").arg(GUEST).output().map(|o| o.status.success()).unwrap_or(false);
    if !exists {
        let o = Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", GUEST])
            .output()
            .expect("useradd");
        assert!(o.status.success(), "useradd {GUEST}: {}", String::from_utf8_lossy(&o.stderr));
    }
    true
}

/// `flux-account`, copied where the guest can run it (the build directory
/// may be closed to them).
fn guest_binary(inst: &Instance) -> PathBuf {
    let dir = inst.path("guestbin");
    std::fs::create_dir_all(&dir).expect("guestbin");
    let bin = dir.join("flux-account");
    std::fs::copy(env!("CARGO_BIN_EXE_flux-account"), &bin).expect("copy flux-account");
    for (p, mode) in [(inst.dir.path(), 0o711), (dir.as_path(), 0o755), (bin.as_path(), 0o755)] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    bin
}

/// Runs `flux-account ARGS` as the guest on rank 1 (`flux exec -r 1`),
/// with no `-p`: the default ledger is not there, so it asks the service.
fn as_guest_on_rank_1(inst: &Instance, bin: &Path, args: &[&str]) -> Run {
    let mut all = vec!["exec", "-r", "1", "runuser", "-u", GUEST, "--"];
    let bin = bin.display().to_string();
    all.push(&bin);
    all.extend_from_slice(args);
    inst.flux(&all)
}

/// Starts the service in the background (`-t`: returns once registered).
fn start_service(inst: &Instance) {
    let r: Run = inst
        .command(SERVICE_BIN)
        .arg("-p")
        .arg(inst.db())
        .arg("-t")
        .stderr(Stdio::null())
        .output()
        .expect("flux-account-service")
        .into();
    assert_eq!(r.code, 0, "flux-account-service -t: {}{}", r.out, r.err);
}

/// Starts the service as a child of the test (to kill it).
fn spawn_service(inst: &Instance) -> Child {
    let child = inst
        .command(SERVICE_BIN)
        .arg("-p")
        .arg(inst.db())
        .stderr(std::fs::File::create(inst.path("service.err")).expect("service.err"))
        .spawn()
        .expect("flux-account-service");
    let t0 = Instant::now();
    while service(inst, &["list-banks"]).code != 0 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the service did not register");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// `flux-account --service ARGS` as the owner.
fn service(inst: &Instance, args: &[&str]) -> Run {
    inst.command(env!("CARGO_BIN_EXE_flux-account")).arg("--service").args(args).output().expect("flux-account").into()
}

/// Sends `payload` (a JSON text) raw to `accounting.<endpoint>` with
/// flux-core's Python bindings (`flux python`): the answer's JSON, or the
/// error string. `None` when the install has no Python bindings.
fn raw_rpc(inst: &Instance, endpoint: &str, payload: &str) -> Option<Result<Value, String>> {
    let file = inst.path(&format!("{endpoint}.json"));
    std::fs::write(&file, payload).expect("payload file");
    let script = "import flux, json, sys\n\
        p = json.load(open(sys.argv[2]))\n\
        try:\n    r = flux.Flux().rpc('accounting.' + sys.argv[1], p).get() or {}\n    print(json.dumps([list(r)[:1], r]))\n\
        except OSError as e:\n    print('ERROR ' + (e.strerror or str(e)))\n";
    let r = inst.flux(&["python", "-c", script, endpoint, &file.display().to_string()]);
    if r.code != 0 {
        note(&format!("flux python unusable ({}): raw payload check skipped", r.err.trim()));
        return None;
    }
    let line = r.out.trim();
    Some(match line.strip_prefix("ERROR ") {
        Some(e) => Err(e.to_string()),
        // [first key, answer]: flux-accounting's CLI prints the first value.
        None => {
            let v: Value = serde_json::from_str(line).expect("answer JSON");
            let mut answer = v[1].clone();
            if let Some(first) = v[0][0].as_str() {
                answer["first key"] = Value::String(first.to_string());
            }
            Ok(answer)
        }
    })
}

fn event_count(inst: &Instance) -> usize {
    inst.account_ok(&["log"]).lines().filter(|l| !l.trim().is_empty()).count()
}

#[test]
fn a_guest_on_another_rank_reads_through_the_service_what_the_owner_reads_locally() {
    let Some(inst) = instance() else { return };
    ran("a_guest_on_another_rank_reads_through_the_service_what_the_owner_reads_locally");
    if !guest_user("service guest read") {
        return;
    }
    inst.site();
    inst.account_ok(&["add-user", &format!("--username={GUEST}"), "--bank=A"]);
    std::fs::set_permissions(inst.db(), std::fs::Permissions::from_mode(0o600)).expect("chmod ledger");
    start_service(&inst);
    let bin = guest_binary(&inst);

    // The guest cannot read the file...
    let direct = as_guest_on_rank_1(&inst, &bin, &["-p", &inst.db().display().to_string(), "view-user", GUEST]);
    assert_ne!(direct.code, 0, "the guest read the 0600 ledger: {}", direct.out);
    // ...but the service answers with the owner's local text.
    for args in [&["view-user", GUEST][..], &["list-banks"], &["view-bank", "A"], &["list-users", "--bank=A"]] {
        let local = inst.account_ok(args);
        let remote = as_guest_on_rank_1(&inst, &bin, args);
        assert_eq!(remote.code, 0, "{args:?} as guest: {}", remote.err);
        assert_eq!(remote.out, local, "{args:?}");
    }
    // An error reads and exits as the local one does.
    let local = inst.account(&["view-user", "nobody-here"]);
    let remote = as_guest_on_rank_1(&inst, &bin, &["view-user", "nobody-here"]);
    // (`flux exec` adds its own `1: Exit 1` line after the command's.)
    assert_eq!((remote.code, remote.err.lines().next()), (local.code, local.err.lines().next()));
    let _ = raw_rpc(&inst, "shutdown_service", "{}");
}

#[test]
fn a_guests_write_is_refused_and_the_owners_is_recorded_as_theirs() {
    let Some(inst) = instance() else { return };
    ran("a_guests_write_is_refused_and_the_owners_is_recorded_as_theirs");
    if !guest_user("service guest write") {
        return;
    }
    inst.site();
    start_service(&inst);
    let bin = guest_binary(&inst);
    let before = event_count(&inst);
    let refused = as_guest_on_rank_1(&inst, &bin, &["add-user", "--username=mallory", "--bank=A"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.err.contains("Request requires owner credentials"), "{}", refused.err);
    assert_eq!(event_count(&inst), before, "a refused request changed the ledger");
    // Reads stay open to the guest.
    let read = as_guest_on_rank_1(&inst, &bin, &["list-banks"]);
    assert_eq!(read.code, 0, "{}", read.err);

    let ok = service(&inst, &["add-user", "--username=carol", "--bank=A", "--userid=5011"]);
    assert_eq!(ok.code, 0, "{}", ok.err);
    let log = inst.account_ok(&["log"]);
    let last = log.lines().rfind(|l| !l.trim().is_empty()).expect("an event");
    let (uid, name) = owner();
    assert!(last.contains("AssociationAdded") && last.contains(&format!("{name}({uid})")), "{last}");
    assert!(last.contains("flux-account-service add-user"), "{last}");
    let _ = raw_rpc(&inst, "shutdown_service", "{}");
}

#[test]
fn flux_accountings_payloads_are_answered_as_its_service_answers_them() {
    let Some(inst) = instance() else { return };
    ran("flux_accountings_payloads_are_answered_as_its_service_answers_them");
    inst.site();
    // Before the service runs, a command with no ledger here fails as the
    // local command does (the file's error, not the missing service's).
    let r: Run = inst.command(env!("CARGO_BIN_EXE_flux-account")).args(["list-banks"]).output().expect("run").into();
    if !Path::new("/var/lib/flux/FluxAccounting.db").exists() {
        assert!(r.code == 1 && r.err.contains("does not exist"), "{r:?}");
    }
    start_service(&inst);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/service_payloads");
    let payload = |name: &str| std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("fixture");
    // Writes answer 0 (flux-accounting's CLI prints nothing) and change the ledger.
    for (name, endpoint) in [("add-bank", "add_bank"), ("add-user", "add_user"), ("edit-config", "edit_config")] {
        let Some(answer) = raw_rpc(&inst, endpoint, &payload(name)) else { return };
        let answer = answer.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(answer[endpoint], Value::from(0), "{name}: {answer}");
    }
    assert!(inst.account_ok(&["list-banks"]).contains("sub"));
    assert!(inst.account_ok(&["view-config", "decay_factor"]).contains("0.25"));
    // Reads answer the local command's text (printed with one newline added).
    for (name, endpoint, local) in [
        ("view-user", "view_user", &["view-user", "guest2"][..]),
        ("list-users", "list_users", &["list-users", "--bank=sub"]),
        ("view-job-records", "view_job_records", &["view-job-records", "-u", "guest2"]),
    ] {
        let answer =
            raw_rpc(&inst, endpoint, &payload(name)).expect("python").unwrap_or_else(|e| panic!("{name}: {e}"));
        let text = inst.account_ok(local);
        assert_eq!(answer[endpoint].as_str(), Some(text.strip_suffix('\n').unwrap_or(&text)), "{name}");
        assert_eq!(answer["first key"].as_str(), Some(endpoint), "the endpoint's key comes first");
    }
    // A missing required key, as flux-accounting words it.
    let e = raw_rpc(&inst, "view_user", "{\"parsable\": null}").expect("python").expect_err("refused");
    assert_eq!(e, "view-user: missing key in payload: 'username'");
    let _ = raw_rpc(&inst, "shutdown_service", "{}");
}

#[test]
fn shutdown_stops_the_service_and_a_killed_service_loses_nothing() {
    let Some(inst) = instance() else { return };
    ran("shutdown_stops_the_service_and_a_killed_service_loses_nothing");
    inst.site();
    let mut svc = spawn_service(&inst);
    // Writes through the service while it is killed with SIGKILL.
    let acked: Vec<String> = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut acked = Vec::new();
            for i in 0..40 {
                let bank = format!("k{i}");
                // A request in flight when the service dies gets no answer:
                // `timeout` ends its client (the write is then either
                // whole in the ledger or absent).
                let r: Run = inst
                    .command("timeout")
                    .args(["10", env!("CARGO_BIN_EXE_flux-account"), "--service", "add-bank", &bank, "1"])
                    .arg("--parent-bank=root")
                    .output()
                    .expect("timeout flux-account")
                    .into();
                if r.code == 0 {
                    acked.push(bank);
                }
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill").args(["-KILL", &svc.id().to_string()]).status();
        writer.join().expect("writer")
    });
    let _ = svc.wait();
    assert!(!acked.is_empty(), "no write went through before the kill");
    // Restarted by hand, it serves the same ledger; nothing acknowledged is lost.
    let mut svc = spawn_service(&inst);
    let banks = service(&inst, &["list-banks"]);
    for b in &acked {
        let named = |l: &str| l.split('|').nth(1).map(str::trim) == Some(b.as_str());
        assert!(banks.out.lines().any(named), "{b} lost: {}", banks.out);
    }
    inst.account_ok(&["verify"]);
    inst.account_ok(&["rebuild", "--check"]);

    // Ten clients at once, all answered with the local text.
    let local = inst.account_ok(&["list-banks"]);
    std::thread::scope(|s| {
        let all: Vec<_> = (0..10)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..5 {
                        let r = service(&inst, &["list-banks"]);
                        assert_eq!((r.code, r.out.as_str()), (0, local.as_str()), "{}", r.err);
                    }
                })
            })
            .collect();
        for t in all {
            t.join().expect("client");
        }
    });

    match raw_rpc(&inst, "shutdown_service", "{}") {
        Some(answer) => {
            answer.expect("shutdown answered");
            let t0 = Instant::now();
            let status = loop {
                if let Some(st) = svc.try_wait().expect("wait") {
                    break st;
                }
                assert!(t0.elapsed() < Duration::from_secs(30), "the service did not stop");
                std::thread::sleep(Duration::from_millis(20));
            };
            assert!(status.success(), "{status}");
            let after = service(&inst, &["list-banks"]);
            assert_ne!(after.code, 0, "still answered after shutdown");
        }
        None => {
            let _ = svc.kill();
            let _ = svc.wait();
        }
    }
}

/// A service that stopped answering (here: SIGSTOPped, as a hung or dying
/// process would be) does not hang its clients: `flux-account --service`
/// gives up after `FLUXACCT_SERVICE_TIMEOUT_S` with one line on stderr
/// and a non-zero exit, and works again once the service does.
#[test]
fn a_service_that_never_answers_makes_the_client_give_up_with_one_line() {
    let Some(inst) = instance() else { return };
    ran("a_service_that_never_answers_makes_the_client_give_up_with_one_line");
    inst.site();
    let mut svc = spawn_service(&inst);
    let pid = svc.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().expect("kill -STOP").success());
    let t0 = Instant::now();
    let r: Run = inst
        .command("timeout")
        .args(["60", env!("CARGO_BIN_EXE_flux-account"), "--service", "list-banks"])
        .env("FLUXACCT_SERVICE_TIMEOUT_S", "2")
        .output()
        .expect("flux-account")
        .into();
    let took = t0.elapsed();
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    assert!(r.code != 0 && r.code != 124, "exit {} (124: hung until `timeout`): {}{}", r.code, r.out, r.err);
    assert_eq!(r.err.lines().count(), 1, "{}", r.err);
    assert!(r.err.starts_with("flux-account: error: the accounting service did not answer within 2 s"), "{}", r.err);
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(30), "gave up after {took:?}");
    // A malformed timeout is refused, not taken as "wait forever".
    let bad: Run = inst
        .command(env!("CARGO_BIN_EXE_flux-account"))
        .args(["--service", "list-banks"])
        .env("FLUXACCT_SERVICE_TIMEOUT_S", "soon")
        .output()
        .expect("flux-account")
        .into();
    assert!(bad.err.contains("FLUXACCT_SERVICE_TIMEOUT_S=soon: not a positive number"), "{}", bad.err);
    // Resumed, it answers again.
    let again = service(&inst, &["list-banks"]);
    assert_eq!(again.code, 0, "{}", again.err);
    let _ = svc.kill();
    let _ = svc.wait();
}
