//! `flux-account-fairshare-emulate`: drop-in alias for `flux-account
//! fairshare-emulate` (flux-accounting's `flux account-fairshare-emulate`).

#[path = "../app.rs"]
mod app;

fn main() {
    std::process::exit(app::main_with(Some("fairshare-emulate")));
}
