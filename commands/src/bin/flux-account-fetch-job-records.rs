//! `flux-account-fetch-job-records`: drop-in alias for `flux-account fetch-job-records`.

#[path = "../app.rs"]
mod app;

fn main() {
    std::process::exit(app::main_with(Some("fetch-job-records")));
}
