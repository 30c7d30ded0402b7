//! The fuzz targets' inputs replayed on the stable toolchain, in every `cargo test`: the
//! committed seed corpus (`fuzz/seeds/<target>/`) and every input that ever made a target
//! crash (`fuzz/regressions/<target>/`, where `scripts/fuzz` says to put them). Each must
//! go through its target without a panic. The fuzzing itself is `scripts/fuzz`.

use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let seeds = inputs("seeds", target);
    assert!(seeds.len() >= 3, "too few seeds for {target}: {seeds:?}");
    for path in seeds.iter().chain(&inputs("regressions", target)) {
        let data = std::fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target} panicked on {}", path.display());
    }
}

#[test]
fn package_reader_inputs() {
    replay("package", runner::fuzz::package);
}

#[test]
fn btf_walker_inputs() {
    replay("btf", runner::fuzz::btf);
}

#[test]
fn decoder_inputs() {
    replay("decode", runner::fuzz::decode);
}

/// The seeds reach deep: each package seed but the broken one reads, each BTF seed
/// resolves, so the fuzzer starts from inputs that get past the first check.
#[test]
fn seeds_are_valid_inputs() {
    for path in inputs("seeds", "package") {
        let data = std::fs::read(&path).unwrap();
        let ok = runner::spec::package::Package::from_slice(&data, &path).is_ok();
        assert_eq!(ok, !path.ends_with("dup.json"), "{}", path.display());
    }
    for path in inputs("seeds", "decode") {
        let data = std::fs::read(&path).unwrap();
        let ty = &data[..data.iter().position(|&b| b == 0).unwrap()];
        let ty: runner::spec::types::Type = serde_json::from_slice(ty).unwrap();
        assert!(
            runner::spec::plan::Plan::compile(&ty).is_ok(),
            "{}",
            path.display()
        );
    }
}
