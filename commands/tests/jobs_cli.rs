//! `jobs USERNAME` against a real flux-core broker: a ledger
//! site, its snapshot loaded by the real `mf_priority.so` in a `flux start`
//! instance, pending jobs in two banks, then `flux-account jobs` with its
//! options. The broker is the real-broker suite's (`flux_instance::install`:
//! `FLUX_PREFIX`, the CI cache, or `flux` on `PATH`); without one the broker
//! test skips with a one-line notice. The no-broker message is tested always.

mod common;
mod flux_instance;

use std::path::Path;
use std::process::Command;

use common::{fa, ok, BIN};

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn jobs_without_a_broker_says_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    ok(&db, &["demo"]);
    let out = Command::new(BIN)
        .args(["-p", db.to_str().unwrap(), "jobs", "crawford"])
        .env("FLUX_URI", "local:///nonexistent/fluxacct-test")
        .env("FLUXACCT_NOW", common::NOW)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("flux-account: error: jobs needs a running Flux instance: "), "{stderr}");
    // Ledger checks come first, broker or not.
    let r = fa(&db, &["jobs", "nosuch"]);
    assert_eq!(r.stderr, "flux-account: error: could not find entry for nosuch in association_table\n");
    // A malformed --filter is a usage error (exit 2), before anything runs.
    let r = fa(&db, &["jobs", "crawford", "-f", "foo"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .starts_with("error: invalid value 'foo' for '--filter <STATES|RESULTS>': Invalid filter specified: foo\n"),
        "{}",
        r.stderr
    );
    let r = fa(&db, &["jobs", "crawford", "--since", "2100-01-01"]);
    assert!(r.stderr.starts_with("flux-account: error: --since appears to be in the future: "), "{}", r.stderr);
}

#[test]
fn jobs_lists_priority_factors_from_a_real_broker() {
    // The same flux-core and plugin build as the real-broker suite (it says
    // why it skips).
    let Some(install) = flux_instance::install() else { return };
    let flux = install.flux.clone();
    let prefix = install.bindir().parent().expect("prefix").to_path_buf();
    let plugin = flux_instance::plugin();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobs_broker.sh");
    let path = format!("{}:{}", prefix.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let st = Command::new("timeout")
        .arg("300")
        .arg(&flux)
        .args(["start", "-s1", "bash"])
        .arg(&script)
        .env("PATH", path)
        .env("LD_LIBRARY_PATH", prefix.join("lib"))
        .env("FA_BIN", BIN)
        .env("DB", out_dir.join("fa.db"))
        .env("PLUGIN", plugin)
        .env("OUT", out_dir)
        .env_remove("FLUX_URI")
        .env_remove("FLUXACCT_NOW")
        .current_dir(out_dir)
        .output()
        .expect("flux start");
    assert!(
        st.status.success(),
        "broker script failed: {}\n{}",
        String::from_utf8_lossy(&st.stdout),
        String::from_utf8_lossy(&st.stderr)
    );
    let (j1, j2) = (read(out_dir, "j1").trim().to_string(), read(out_dir, "j2").trim().to_string());
    let me = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_string();

    let all = read(out_dir, "all.out");
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(
        lines[0],
        "JOBID          USER     BANK    BANKPRIO  BANKFACT  QUEUE   QPRIO  QFACT  FAIRSHARE FSFACTOR  URGENCY URGFACT PRIORITY"
    );
    assert_eq!(lines.len(), 3, "{all}");
    // f58 ids: `ƒ` or plain `f` depending on the locale (flux's rule); compare
    // the digits only.
    let norm = |id: &str| id.trim_start_matches(['ƒ', 'f']).to_string();
    let line_of = |text: &str, id: &str| {
        text.lines().find(|l| l.split_whitespace().next().map(norm) == Some(norm(id))).map(str::to_string)
    };
    let l1 = line_of(&all, &j1).unwrap_or_else(|| panic!("{j1} in {all}"));
    // Priority (0.99 * 100000) + (100 * 1000): the fair-share is the plugin's
    // annotation (0.99), not the ledger's later 0.1.
    let w: Vec<&str> = l1.split_whitespace().skip(1).collect();
    assert_eq!(w, [me.as_str(), "A", "100.0", "1000", "0", "10000", "0.99", "100000", "16", "1000", "199000"]);
    let l2 = line_of(&all, &j2).unwrap();
    assert!(l2.ends_with("0.5       100000    20      1000    64000   "), "{l2}");

    // The locale decides the f58 prefix, as for flux itself.
    let c = read(out_dir, "all_c.out");
    assert!(!c.contains('ƒ') && line_of(&c, &j1).is_some_and(|l| l.starts_with('f')), "{c}");
    let u = read(out_dir, "verbose_utf8.out");
    assert!(u.starts_with('ƒ'), "{u}");

    let b = read(out_dir, "bank_b.out");
    assert!(line_of(&b, &j2).is_some() && line_of(&b, &j1).is_none(), "{b}");

    let v = read(out_dir, "verbose.out");
    let (first, rest) = v.split_once('\n').expect("lines");
    assert_eq!(norm(first), norm(&j1));
    assert_eq!(
        rest,
        format!(
            "= (FAIRSHARE * FAIRSHARE_WEIGHT) + (QUEUE_PRIORITY * QUEUE_WEIGHT) + (BANK_PRIORITY * BANK_WEIGHT) + (URGENCY_WEIGHT * (URGENCY - 16))\n\
             = (0.99 * 100000) + (0 * 10000) + (100.0 * 1000) + (1000 * (16 - 16))\n= 99000.0 + 0 + 100000.0 + 0\n= 199000\n"
        )
    );
    assert_eq!(read(out_dir, "running.out").lines().count(), 1, "no running jobs: header only");
    let c = read(out_dir, "count.out");
    assert_eq!(c.lines().count(), 2, "-c 1: header and one job: {c}");
    assert_eq!(read(out_dir, "nosuch.rc").trim(), "1");
    assert_eq!(
        read(out_dir, "nosuch.err"),
        "flux-account: error: could not find entry for nosuchuser in association_table\n"
    );
    let canceled = read(out_dir, "canceled.out");
    assert!(line_of(&canceled, &j1).is_some() && line_of(&canceled, &j2).is_some(), "{canceled}");
}
