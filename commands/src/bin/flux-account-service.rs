//! `flux-account-service`: flux-accounting's `flux account-service`, the
//! ledger served as the instance's `accounting` service (`flux-account
//! service`).

#![forbid(unsafe_code)]

#[path = "../app.rs"]
mod app;

fn main() {
    std::process::exit(app::main_with(Some("service")));
}
