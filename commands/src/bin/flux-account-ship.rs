//! `flux-account-ship`: drop-in alias for `flux-account ship`.

#![forbid(unsafe_code)]

#[path = "../app.rs"]
mod app;

fn main() {
    std::process::exit(app::main_with(Some("ship")));
}
