//! `flux-account-update-db`: drop-in alias for `flux-account update-db`.

#![forbid(unsafe_code)]

#[path = "../app.rs"]
mod app;

fn main() {
    std::process::exit(app::main_with(Some("update-db")));
}
