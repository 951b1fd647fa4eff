//! `flux-account`: the fluxacct command line.

#![forbid(unsafe_code)]

mod app;

fn main() {
    std::process::exit(app::main_with(None));
}
