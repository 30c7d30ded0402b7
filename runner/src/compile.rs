//! `runner build`: C source to package. Compiles with clang (`-g -O2 -target bpf`) against
//! headers the runner supplies (libbpf's, embedded at build time, and a `vmlinux.h`
//! generated from the running kernel's BTF unless one is given), strips DWARF (never BTF)
//! and packs the object together with the source's comments.
//!
//! clang emits BTF only for types reachable from globals, function signatures and CO-RE
//! relocations. So that an event struct used only through a local variable still reaches
//! the package, every struct the program's own files define is anchored by a pointer in a
//! section libbpf ignores (`.runner.keep`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sandbox;
use crate::spec::btf::ObjectBtf;
use crate::spec::kfuncs;
use crate::spec::pack::{self, PackError, PackOptions};
use crate::spec::package::Package;
use crate::spec::sidecar::{Sidecar, SidecarError};
use crate::spec::vocab::KEEP_SECTION;

include!(concat!(env!("OUT_DIR"), "/bpf_headers.rs"));

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read source `{path}`")]
    Source {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no clang found (tried {tried}); install clang-19 or set RUNNER_CLANG")]
    NoClang { tried: String },
    #[error("cannot generate vmlinux.h: {why}; install bpftool, or pass --vmlinux <file>, or put vmlinux.h beside the source")]
    Vmlinux { why: String },
    #[error("clang failed on `{path}`:\n{stderr}")]
    Compile { path: PathBuf, stderr: String },
    #[error("{tool} failed: {stderr}")]
    Tool { tool: String, stderr: String },
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    #[error("sidecar `{path}`: {at}: {what}")]
    Declaration {
        path: PathBuf,
        at: String,
        what: String,
    },
    #[error("cannot pack `{path}`")]
    Pack {
        path: PathBuf,
        #[source]
        source: PackError,
    },
}

#[derive(Debug, Default)]
pub struct BuildOptions {
    pub source: PathBuf,
    pub vmlinux: Option<PathBuf>,
    pub events: Vec<(String, String)>,
    pub cflags: Vec<String>,
    /// Keep the compiled object here too.
    pub object_out: Option<PathBuf>,
    /// Where the sidecar is ([`Sidecar::beside`] the source when `None`).
    pub sidecar: Option<PathBuf>,
    /// Read no sidecar.
    pub no_sidecar: bool,
}

/// The sidecar to pack with: the one named, else the one beside `source` if there is one.
pub fn read_sidecar(
    named: Option<&Path>,
    source: &Path,
) -> Result<Option<(PathBuf, Sidecar)>, SidecarError> {
    let path = match named {
        Some(path) => path.to_path_buf(),
        None => {
            let beside = Sidecar::beside(source);
            if !beside.exists() {
                return Ok(None);
            }
            beside
        }
    };
    Ok(Some((path.clone(), Sidecar::read(&path)?)))
}

/// Pack `object`, saying which sidecar a declaration error is about.
pub fn pack_with(
    object: &[u8],
    opts: &PackOptions,
    sidecar_path: Option<&Path>,
) -> Result<Package, BuildError> {
    pack::pack(object, opts).map_err(|e| match (e, sidecar_path) {
        (PackError::Declaration { at, what }, Some(path)) => BuildError::Declaration {
            path: path.to_path_buf(),
            at,
            what,
        },
        (source, _) => BuildError::Pack {
            path: PathBuf::from(&opts.name),
            source,
        },
    })
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// The first of `RUNNER_<VAR>` or `candidates` that runs.
fn find_tool(var: &str, candidates: &[&str]) -> Option<String> {
    if let Ok(tool) = std::env::var(var) {
        return Some(tool);
    }
    candidates
        .iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|c| c.to_string())
}

fn target_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        "s390x" => "s390",
        "powerpc64" => "powerpc",
        "riscv64" => "riscv",
        "loongarch64" => "loongarch",
        other => other,
    }
}

/// Package name for a source or object path: its file name without `.bpf.c`/`.bpf.o`.
pub fn stem_name(path: &Path) -> String {
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("program");
    let mut name = file;
    for suffix in [".c", ".o"] {
        name = name.strip_suffix(suffix).unwrap_or(name);
    }
    name.strip_suffix(".bpf").unwrap_or(name).to_string()
}

/// What the generated `vmlinux.h` holds beyond bpftool's types, in its cache file name:
/// `k1` = with the kernel's kfunc prototypes.
const VMLINUX_GENERATION: &str = "k1";

/// `vmlinux.h` for the running kernel, generated once per distinct kernel BTF (bpftool's
/// types, and the kfunc prototypes newer bpftools add: `spec::kfuncs`) and kept in the
/// private cache (`crate::cache`).
fn generated_vmlinux() -> Result<Vec<u8>, BuildError> {
    // RUNNER_KERNEL_BTF stands in for the running kernel's BTF (tests use it to prove a
    // build does not depend on the build machine's kernel).
    let btf_path = std::env::var_os("RUNNER_KERNEL_BTF")
        .map_or_else(|| PathBuf::from("/sys/kernel/btf/vmlinux"), PathBuf::from);
    let btf_path = btf_path.as_path();
    let btf = std::fs::read(btf_path).map_err(|e| BuildError::Vmlinux {
        why: format!("cannot read {}: {e}", btf_path.display()),
    })?;
    let name = format!(
        "vmlinux-{}-{VMLINUX_GENERATION}.h",
        &crate::spec::package::sha256_hex(&btf)[..16]
    );
    if let Some(header) = crate::cache::load(&name) {
        return Ok(header);
    }
    let bpftool = find_tool("RUNNER_BPFTOOL", &["bpftool", "/usr/sbin/bpftool"]).ok_or(
        BuildError::Vmlinux {
            why: "bpftool not found".into(),
        },
    )?;
    let out = Command::new(&bpftool)
        .args(["btf", "dump", "file"])
        .arg(btf_path)
        .args(["format", "c"])
        .output()
        .map_err(|e| BuildError::Vmlinux { why: e.to_string() })?;
    if !out.status.success() {
        return Err(BuildError::Vmlinux {
            why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let kernel = ObjectBtf::parse(&btf).map_err(|e| BuildError::Vmlinux {
        why: format!("cannot read {}: {e}", btf_path.display()),
    })?;
    let header = kfuncs::insert_into_header(
        &String::from_utf8_lossy(&out.stdout),
        &kfuncs::prototypes(&kernel),
    )
    .into_bytes();
    crate::cache::store(&name, &header);
    Ok(header)
}

/// The runner's own headers: (path under the include directory, contents).
const RUNNER_HEADERS: &[(&str, &[u8])] = &[
    (
        "runner/formats.h",
        include_bytes!("../include/runner/formats.h"),
    ),
    ("runner/ring.h", include_bytes!("../include/runner/ring.h")),
];

/// Write the headers `runner build` compiles with into `dir`: libbpf's BPF headers as
/// `dir/bpf/*.h`, the runner's `dir/runner/formats.h` (value formats) and
/// `dir/runner/ring.h` (ring buffers that wake the runner only when it sleeps) and, when
/// `vmlinux` is `Some`, `dir/vmlinux.h` (copied from the file it names, or generated from
/// the running kernel's BTF when that is `None`). A program compiled by hand with
/// `-I dir` sees exactly what `runner build` would give it.
pub fn write_headers(dir: &Path, vmlinux: Option<Option<&Path>>) -> Result<(), BuildError> {
    for sub in ["bpf", "runner"] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(io(format!("creating {}", dir.join(sub).display())))?;
    }
    let libbpf = BPF_HEADERS
        .iter()
        .map(|(name, bytes)| (format!("bpf/{name}"), *bytes));
    let runner = RUNNER_HEADERS
        .iter()
        .map(|(name, bytes)| (name.to_string(), *bytes));
    for (name, bytes) in libbpf.chain(runner) {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(format!("writing {}", path.display())))?;
    }
    match vmlinux {
        Some(Some(source)) => {
            std::fs::copy(source, dir.join("vmlinux.h"))
                .map_err(io(format!("copying {}", source.display())))?;
        }
        Some(None) => {
            let path = dir.join("vmlinux.h");
            std::fs::write(&path, generated_vmlinux()?)
                .map_err(io(format!("writing {}", path.display())))?;
        }
        None => {}
    }
    Ok(())
}

/// Names of the structs that `file` and the local headers it includes (`#include "..."`,
/// resolved beside the including file) define, in order of first appearance.
pub fn local_structs(file: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut seen_files = Vec::new();
    collect_structs(file, &mut names, &mut seen_files);
    names
}

fn collect_structs(file: &Path, names: &mut Vec<String>, seen: &mut Vec<PathBuf>) {
    if seen.iter().any(|s| s == file) || seen.len() > 64 {
        return;
    }
    // An include is read only where the confined compiler may read it too: beside the
    // source, or anywhere everyone may read.
    if let Some(first) = seen.first() {
        if !sandbox::may_read_beside(first, file) {
            return;
        }
    }
    seen.push(file.to_path_buf());
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("#include") {
            let rest = rest.trim();
            if let Some(inc) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) {
                if inc != "vmlinux.h" {
                    collect_structs(&dir.join(inc), names, seen);
                }
            }
            continue;
        }
        let mut words = line
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '{'))
            .filter(|w| !w.is_empty());
        while let Some(word) = words.next() {
            if word != "struct" {
                continue;
            }
            let Some(name) = words.next() else { break };
            let name = name.trim_end_matches('{');
            let after = line.split(name).nth(1).unwrap_or("").trim_start();
            if !name.is_empty() && after.starts_with('{') && !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
}

/// The programs `runner build` runs.
struct Toolchain {
    clang: String,
    /// `llvm-strip`, to drop DWARF; without one the object keeps it.
    strip: Option<String>,
    /// The host's system include directories, searched after everything else (as
    /// libbpf-tools' Makefile passes them: `-target bpf` alone misses the multiarch
    /// directory, e.g. /usr/include/x86_64-linux-gnu, where `<asm/errno.h>` lives).
    system_includes: Vec<PathBuf>,
}

/// The `#include <...>` search directories clang lists under `-v` (its own for the host,
/// not for `-target bpf`).
fn system_includes(clang: &str) -> Vec<PathBuf> {
    let out = Command::new(clang)
        .args(["-v", "-E", "-x", "c", "-"])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(out) => parse_search_list(&String::from_utf8_lossy(&out.stderr)),
        Err(_) => Vec::new(),
    }
}

fn parse_search_list(verbose: &str) -> Vec<PathBuf> {
    verbose
        .lines()
        .skip_while(|l| !l.starts_with("#include <...> search starts here:"))
        .skip(1)
        .take_while(|l| !l.starts_with("End of search list."))
        .filter_map(|l| l.strip_prefix(' '))
        .map(|dir| PathBuf::from(dir.trim_end_matches(" (framework directory)")))
        .collect()
}

impl Toolchain {
    fn find() -> Result<Toolchain, BuildError> {
        let clang = find_tool(
            "RUNNER_CLANG",
            &["clang-19", "clang-20", "clang-18", "clang"],
        )
        .ok_or(BuildError::NoClang {
            tried: "$RUNNER_CLANG, clang-19, clang-20, clang-18, clang".into(),
        })?;
        let strip = find_tool(
            "RUNNER_LLVM_STRIP",
            &[
                "llvm-strip-19",
                "llvm-strip-20",
                "llvm-strip-18",
                "llvm-strip",
            ],
        );
        let system_includes = system_includes(&clang);
        Ok(Toolchain {
            clang,
            strip,
            system_includes,
        })
    }

    /// `clang -g -O2 -target bpf` of `file` in `dir`, with the headers in `work/include`
    /// and `keep_h` force-included, into `object`.
    fn compile(
        &self,
        dir: &Path,
        file: &std::ffi::OsStr,
        work: &Path,
        keep_h: &Path,
        cflags: &[String],
        object: &Path,
    ) -> Result<(), BuildError> {
        let mut command = Command::new(&self.clang);
        let mut readable = vec![dir.to_path_buf(), self.install_dir()];
        readable.extend(sandbox::linked_public_files(dir));
        readable.extend(sandbox::include_dirs(cflags));
        let _ruleset = sandbox::confine(
            &mut command,
            &sandbox::Confinement::for_compiler(readable, work),
        )
        .map_err(io("confining clang (Landlock)"))?;
        let out = command
            .current_dir(dir)
            .args(["-g", "-O2", "-target", "bpf"])
            .arg(format!("-D__TARGET_ARCH_{}", target_arch()))
            .arg("-I")
            .arg(work.join("include"))
            .arg(format!("-ffile-prefix-map={}=.", dir.display()))
            .arg(format!("-ffile-prefix-map={}=/runner", work.display()))
            .args(
                self.system_includes
                    .iter()
                    .flat_map(|d| [std::ffi::OsStr::new("-idirafter"), d.as_os_str()]),
            )
            .args(cflags)
            .arg("-c")
            .arg(file)
            .arg("-include")
            .arg(keep_h)
            .arg("-o")
            .arg(object)
            .output()
            .map_err(io(format!("running {}", self.clang)))?;
        if !out.status.success() {
            return Err(BuildError::Compile {
                path: dir.join(file),
                stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
            });
        }
        Ok(())
    }

    /// Where clang is installed (`/usr/lib/llvm-19` for `/usr/bin/clang-19`): what a
    /// confined clang must still read.
    fn install_dir(&self) -> PathBuf {
        let found = which(&self.clang).and_then(|p| std::fs::canonicalize(p).ok());
        found
            .as_deref()
            .and_then(|p| p.parent()?.parent())
            .map_or_else(|| PathBuf::from("/usr"), Path::to_path_buf)
    }

    /// Drop DWARF from `object`, keeping BTF.
    fn strip(&self, object: &Path) -> Result<(), BuildError> {
        let Some(strip) = &self.strip else {
            return Ok(());
        };
        let out = Command::new(strip)
            .arg("--strip-debug")
            .arg(object)
            .output()
            .map_err(io(format!("running {strip}")))?;
        if !out.status.success() {
            return Err(BuildError::Tool {
                tool: strip.clone(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }
}

/// `program` as found on PATH (or itself, when it is a path).
fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A header that anchors every struct the program's own files define in BTF.
fn keep_header(source: &Path) -> String {
    let mut keep =
        String::from("/* Generated by runner build: keeps the program's structs in BTF. */\n");
    for name in local_structs(source) {
        keep.push_str(&format!(
            "struct {name};\nstruct {name} *__runner_keep_{name} __attribute__((section(\"{KEEP_SECTION}\"), used));\n"
        ));
    }
    keep
}

/// Compile and pack. Returns the package.
pub fn build(opts: &BuildOptions) -> Result<Package, BuildError> {
    let source_path = std::path::absolute(&opts.source).map_err(|source| BuildError::Source {
        path: opts.source.clone(),
        source,
    })?;
    let source_text =
        std::fs::read_to_string(&source_path).map_err(|source| BuildError::Source {
            path: opts.source.clone(),
            source,
        })?;
    let dir = source_path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let file_name = source_path.file_name().unwrap_or_default().to_os_string();
    let tools = Toolchain::find()?;
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        crate::note!("{}", sandbox::ROOT_NOTE);
    }

    let work = tempfile::Builder::new()
        .prefix("runner-build")
        .tempdir()
        .map_err(io("creating a temporary directory"))?;
    write_headers(
        &work.path().join("include"),
        (!dir.join("vmlinux.h").exists()).then_some(opts.vmlinux.as_deref()),
    )?;
    let keep_h = work.path().join("runner_keep.h");
    std::fs::write(&keep_h, keep_header(&source_path)).map_err(io("writing runner_keep.h"))?;

    let object = work.path().join("out.bpf.o");
    tools
        .compile(
            &dir,
            &file_name,
            work.path(),
            &keep_h,
            &opts.cflags,
            &object,
        )
        .map_err(|e| match e {
            BuildError::Compile { stderr, .. } => BuildError::Compile {
                path: opts.source.clone(),
                stderr,
            },
            e => e,
        })?;
    tools.strip(&object)?;
    let bytes = std::fs::read(&object).map_err(io("reading the compiled object"))?;
    if let Some(path) = &opts.object_out {
        std::fs::write(path, &bytes).map_err(io(format!("writing {}", path.display())))?;
    }
    let sidecar = match opts.no_sidecar {
        true => None,
        false => read_sidecar(opts.sidecar.as_deref(), &opts.source)?,
    };
    let pack_opts = PackOptions {
        name: stem_name(&source_path),
        source: Some(source_text),
        description: None,
        events: opts.events.clone(),
        sidecar: sidecar.as_ref().map(|(_, s)| s.clone()),
    };
    pack_with(
        &bytes,
        &pack_opts,
        sidecar.as_ref().map(|(p, _)| p.as_path()),
    )
    .map_err(|e| match e {
        BuildError::Pack { source, .. } => BuildError::Pack {
            path: opts.source.clone(),
            source,
        },
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems() {
        assert_eq!(stem_name(Path::new("a/sigsnoop.bpf.c")), "sigsnoop");
        assert_eq!(stem_name(Path::new("x.bpf.o")), "x");
        assert_eq!(stem_name(Path::new("y.o")), "y");
    }

    #[test]
    fn system_include_dirs_from_clang_verbose_output() {
        let verbose = "clang version 19\n#include \"...\" search starts here:\n#include <...> search starts here:\n /usr/lib/llvm-19/lib/clang/19/include\n /usr/local/include\n /usr/include/x86_64-linux-gnu\n /usr/include\nEnd of search list.\n# 1 \"<stdin>\"\n";
        assert_eq!(
            parse_search_list(verbose),
            [
                "/usr/lib/llvm-19/lib/clang/19/include",
                "/usr/local/include",
                "/usr/include/x86_64-linux-gnu",
                "/usr/include"
            ]
            .map(PathBuf::from)
        );
        assert!(parse_search_list("no list").is_empty());
    }

    #[test]
    fn finds_local_structs_through_quoted_includes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.h"),
            "struct event {\n int x;\n};\nstruct fwd;\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("a.bpf.c"),
            "#include \"vmlinux.h\"\n#include \"a.h\"\nstruct inner { int y; };\nstruct event *e;\nstatic struct {int z;} anon;\n",
        )
        .unwrap();
        assert_eq!(
            local_structs(&dir.path().join("a.bpf.c")),
            vec!["event", "inner"]
        );
    }
}
