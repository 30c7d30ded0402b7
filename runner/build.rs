//! Embeds libbpf's BPF-side headers (from the libbpf that libbpf-sys vendors) into the
//! runner, so `runner build` can supply `<bpf/bpf_helpers.h>` and friends with no
//! libbpf-dev installed and always at the version the runner loads with.

use std::{env, fmt::Write as _, fs, path::PathBuf};

const HEADERS: &[&str] = &[
    "bpf_helpers.h",
    "bpf_helper_defs.h",
    "bpf_tracing.h",
    "bpf_core_read.h",
    "bpf_endian.h",
    "usdt.bpf.h",
];

fn main() {
    let include =
        PathBuf::from(env::var("DEP_BPF_INCLUDE").expect("libbpf-sys exports its include dir"));
    let mut code = String::from("/// libbpf's BPF-side headers: (file name, contents).\npub const BPF_HEADERS: &[(&str, &[u8])] = &[\n");
    for name in HEADERS {
        let path = include.join("bpf").join(name);
        assert!(path.exists(), "missing libbpf header {}", path.display());
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bpf_headers.rs");
    fs::write(out, code).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
