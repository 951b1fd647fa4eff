//! Builds the jobtap host shim (`jobtap-host/host.c`) into a shared library
//! the plugin ABI tests dlopen with RTLD_GLOBAL before loading
//! `mf_priority.so`; see the comment at the top of host.c.
//!
//! The `cc` crate only builds static archives, so it is used to find and
//! configure the C compiler, which is then asked for a `-shared` object.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR set by cargo"));
    let src = PathBuf::from("jobtap-host/host.c");
    println!("cargo:rerun-if-changed={}", src.display());
    let lib = out.join("libjobtap_host.so");
    let compiler = cc::Build::new().pic(true).opt_level(1).warnings(true).get_compiler();
    let mut cmd: Command = compiler.to_command();
    cmd.arg("-shared").arg("-fPIC").arg("-o").arg(&lib).arg(&src);
    let status = cmd.status().expect("running the C compiler for jobtap-host");
    assert!(status.success(), "building jobtap-host/host.c failed");
    println!("cargo:rustc-env=JOBTAP_HOST_SO={}", lib.display());
}
