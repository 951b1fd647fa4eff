//! `flux-account-fetch-job-records`: drop-in alias for `flux-account fetch-job-records`.

#![forbid(unsafe_code)]

#[path = "../app.rs"]
mod app;

fn main() {
    std::process::exit(app::main_with(Some("fetch-job-records")));
}
