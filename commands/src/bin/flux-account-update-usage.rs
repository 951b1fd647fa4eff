//! `flux-account-update-usage`: drop-in alias for `flux-account update-usage`.

#![forbid(unsafe_code)]

#[path = "../app.rs"]
mod app;

fn main() {
    std::process::exit(app::main_with(Some("update-usage")));
}
