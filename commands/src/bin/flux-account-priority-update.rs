//! `flux-account-priority-update`: drop-in alias for `flux-account priority-update`.

#![forbid(unsafe_code)]

#[path = "../app.rs"]
mod app;

fn main() {
    std::process::exit(app::main_with(Some("priority-update")));
}
