//! The `runner` binary: see the library's crate documentation for the pipeline.

fn main() {
    std::process::exit(runner::cli::main());
}
