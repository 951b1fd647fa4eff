//! `flux-account`: the fluxacct command line.

mod app;

fn main() {
    std::process::exit(app::main_with(None));
}
