//! `flux-account-update-fshare`: drop-in alias for `flux-account update-fshare`.

#[path = "../app.rs"]
mod app;

fn main() {
    std::process::exit(app::main_with(Some("update-fshare")));
}
