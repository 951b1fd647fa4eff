//! Benches live in benches/benches.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The cargo target directory this bench binary was built into
/// (`target/<profile>/deps/<bench>-…` → `target`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).and_then(Path::parent).expect("target dir").to_path_buf()
}

/// The `flux-account` binary the whole-process benches spawn: `$FLUXACCT_BIN`,
/// else the release build in [`target_dir`], brought up to date first
/// (`cargo build` is a no-op when it is fresh).
pub fn flux_account_binary() -> PathBuf {
    if let Ok(p) = std::env::var("FLUXACCT_BIN") {
        return PathBuf::from(p);
    }
    let target = target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "--release", "-p", "fluxacct-commands", "--bin", "flux-account"])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo build");
    assert!(st.success(), "building flux-account failed");
    target.join("release").join("flux-account")
}
