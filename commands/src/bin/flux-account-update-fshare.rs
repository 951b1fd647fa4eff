//! `flux-account-update-fshare`: drop-in alias for `flux-account update-fshare`.

#![forbid(unsafe_code)]

#[path = "../app.rs"]
mod app;

fn main() {
    std::process::exit(app::main_with(Some("update-fshare")));
}
