//! `flux-account-follow`: `flux account-follow`, the journal follower
//! (`flux-account follow`).

#![forbid(unsafe_code)]

#[path = "../app.rs"]
mod app;

fn main() {
    std::process::exit(app::main_with(Some("follow")));
}
