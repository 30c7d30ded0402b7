//! Prototypes of the kernel's kfuncs, written as C from its BTF, for the `vmlinux.h` that
//! `runner build` generates. bpftool 7.1 writes only the types; newer bpftools also
//! declare every function the kernel tags `bpf_kfunc`, so that sources such as bcc's
//! sigsnoop (`bpf_task_from_pid`, checked with `bpf_ksym_exists`) compile. This writes the
//! same block: `extern <prototype> __weak __ksym;` per kfunc, in BTF order, inside
//! `#ifndef BPF_NO_KFUNC_PROTOTYPES`, with fallback definitions of `__ksym` and `__weak`.

use btf_rs::Type as B;

use crate::spec::btf::{BtfError, ObjectBtf};

/// The declaration tag the kernel puts on each kfunc.
const KFUNC_TAG: &str = "bpf_kfunc";

/// The C block declaring every kfunc of `btf` (a kernel's BTF); empty when it has none.
pub fn prototypes(btf: &ObjectBtf) -> String {
    let mut lines = Vec::new();
    for (id, tags) in btf.tagged() {
        if !tags.iter().any(|t| t == KFUNC_TAG) {
            continue;
        }
        let Ok(B::Func(func)) = btf.entry(id) else {
            continue;
        };
        let Some(proto) = func_type(func) else {
            continue;
        };
        // A kfunc whose prototype has no C spelling (an anonymous type) is left out.
        if let Ok(decl) = declare(btf, proto, &btf.name(id), 0) {
            lines.push(format!("extern {decl} __weak __ksym;\n"));
        }
    }
    if lines.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "#ifndef BPF_NO_KFUNC_PROTOTYPES\n#ifndef __ksym\n#define __ksym __attribute__((section(\".ksyms\")))\n#endif\n#ifndef __weak\n#define __weak __attribute__((weak))\n#endif\n",
    );
    out.extend(lines);
    out.push_str("#endif /* BPF_NO_KFUNC_PROTOTYPES */\n");
    out
}

fn func_type(func: &btf_rs::Func) -> Option<u32> {
    use btf_rs::BtfType as _;
    func.get_type_id()
}

/// Insert `block` into a `vmlinux.h` before its closing `#endif /* __VMLINUX_H__ */`
/// (after the `preserve_access_index` pragma is popped), or at the end.
pub fn insert_into_header(header: &str, block: &str) -> String {
    if block.is_empty() {
        return header.to_string();
    }
    const CLOSE: &str = "#endif /* __VMLINUX_H__ */";
    match header.rfind(CLOSE) {
        Some(at) => format!("{}{block}\n{}", &header[..at], &header[at..]),
        None => format!("{header}\n{block}"),
    }
}

/// A type chain longer than this is treated as a loop in corrupt BTF.
const MAX_DEPTH: usize = 64;

fn anonymous(id: u32) -> BtfError {
    BtfError::NoLayout {
        c: format!("type {id}"),
        why: "anonymous types have no C name to declare with",
    }
}

/// C declaration of `inner` (a name, possibly already wrapped in declarators) as type `id`.
fn declare(btf: &ObjectBtf, id: u32, inner: &str, depth: usize) -> Result<String, BtfError> {
    if depth > MAX_DEPTH {
        return Err(BtfError::TooDeep(id));
    }
    let target = |ty: &B| ty.as_btf_type().and_then(|t| t.get_type_id()).unwrap_or(0);
    let ty = btf.entry(id)?;
    let named = |keyword: &str| {
        let name = btf.name(id);
        if name.is_empty() {
            return Err(anonymous(id));
        }
        Ok(join(&format!("{keyword}{name}"), inner))
    };
    match ty {
        B::Void => Ok(join("void", inner)),
        B::Int(_) | B::Float(_) | B::Typedef(_) => named(""),
        B::Struct(_) => named("struct "),
        B::Union(_) => named("union "),
        B::Enum(_) | B::Enum64(_) => named("enum "),
        B::Fwd(f) if f.is_union() => named("union "),
        B::Fwd(_) => named("struct "),
        B::TypeTag(_) => declare(btf, target(ty), inner, depth + 1),
        B::Const(_) | B::Volatile(_) | B::Restrict(_) => {
            let qualifier = match ty {
                B::Const(_) => "const",
                B::Volatile(_) => "volatile",
                _ => "restrict",
            };
            let under = target(ty);
            if matches!(btf.entry(under)?, B::Ptr(_)) {
                // A qualified pointer: the qualifier follows its `*`.
                declare(btf, under, &join(qualifier, inner), depth + 1)
            } else {
                Ok(format!(
                    "{qualifier} {}",
                    declare(btf, under, inner, depth + 1)?
                ))
            }
        }
        B::Ptr(_) => {
            let under = target(ty);
            let pointer = format!("*{inner}");
            let wrapped = match btf.entry(skip_tags(btf, under)?)? {
                B::Array(_) | B::FuncProto(_) => format!("({pointer})"),
                _ => pointer,
            };
            declare(btf, under, &wrapped, depth + 1)
        }
        B::Array(a) => declare(btf, target(ty), &format!("{inner}[{}]", a.len()), depth + 1),
        B::FuncProto(proto) => {
            let mut params = Vec::new();
            for p in &proto.parameters {
                if p.is_variadic() {
                    params.push("...".to_string());
                    continue;
                }
                let pid = {
                    use btf_rs::BtfType as _;
                    p.get_type_id().unwrap_or(0)
                };
                params.push(declare(btf, pid, &btf.part_name(p), depth + 1)?);
            }
            if params.is_empty() {
                params.push("void".into());
            }
            let inner = format!("{inner}({})", params.join(", "));
            declare(btf, proto.return_type_id(), &inner, depth + 1)
        }
        _ => Err(anonymous(id)),
    }
}

/// Follow type tags (which C does not spell) to the entry they tag.
fn skip_tags(btf: &ObjectBtf, mut id: u32) -> Result<u32, BtfError> {
    use btf_rs::BtfType as _;
    for _ in 0..MAX_DEPTH {
        match btf.entry(id)? {
            B::TypeTag(t) => id = t.get_type_id().unwrap_or(0),
            _ => return Ok(id),
        }
    }
    Err(BtfError::TooDeep(id))
}

/// `base inner`, without a space before a `*` that needs none or after an empty inner.
fn join(base: &str, inner: &str) -> String {
    if inner.is_empty() {
        base.to_string()
    } else {
        format!("{base} {inner}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Declarations of every shape a kfunc prototype takes, compiled by clang into BTF
    /// and written back as C by [`prototypes`].
    #[test]
    fn prototypes_spell_what_clang_compiled() {
        const SOURCE: &str = r#"
typedef unsigned int u32;
struct task_struct { int pid; };
union u { int a; };
enum e { E0 };
#define KF __attribute__((btf_decl_tag("bpf_kfunc"), noinline))
KF struct task_struct *bpf_task_from_pid(int pid) { return 0; }
KF void bpf_task_release(struct task_struct *p) { }
KF void *bpf_rdonly_cast(const void *obj__ign, u32 btf_id) { return (void *)obj__ign; }
KF int callback(int (*cb)(void *, int *), char *const name, const char *const *argv) { return 0; }
KF int (*returns_fn(void))(int) { return 0; }
KF long kinds(union u *x, enum e y, volatile unsigned long *z, int (*rows)[4]) { return y; }
int not_a_kfunc(int x) { return x; }
"#;
        let dir = tempfile::tempdir().unwrap();
        let (c, o) = (dir.path().join("k.c"), dir.path().join("k.o"));
        std::fs::write(&c, SOURCE).unwrap();
        let out = std::process::Command::new("clang-19")
            .args(["-g", "-O2", "-target", "bpf", "-c"])
            .arg(&c)
            .arg("-o")
            .arg(&o)
            .output()
            .expect("clang-19 (scripts/install-deps installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let elf = crate::spec::elf::ElfInfo::parse(&std::fs::read(&o).unwrap()).unwrap();
        let block = prototypes(&ObjectBtf::parse(&elf.btf).unwrap());
        let decls: Vec<&str> = block.lines().filter(|l| l.starts_with("extern")).collect();
        assert_eq!(
            decls,
            [
                "extern struct task_struct *bpf_task_from_pid(int pid) __weak __ksym;",
                "extern void bpf_task_release(struct task_struct *p) __weak __ksym;",
                "extern void *bpf_rdonly_cast(const void *obj__ign, u32 btf_id) __weak __ksym;",
                "extern int callback(int (*cb)(void *, int *), char *const name, const char *const *argv) __weak __ksym;",
                "extern int (*returns_fn(void))(int) __weak __ksym;",
                "extern long kinds(union u *x, enum e y, volatile unsigned long *z, int (*rows)[4]) __weak __ksym;",
            ]
        );
        assert!(block.starts_with("#ifndef BPF_NO_KFUNC_PROTOTYPES\n"));
        assert!(block.ends_with("#endif /* BPF_NO_KFUNC_PROTOTYPES */\n"));
    }

    #[test]
    fn the_block_goes_before_the_header_guard_ends() {
        let header = "#ifndef __VMLINUX_H__\nstruct a;\n#pragma clang attribute pop\n#endif /* __VMLINUX_H__ */\n";
        let block = "extern int f(void) __weak __ksym;\n";
        assert_eq!(
            insert_into_header(header, block),
            "#ifndef __VMLINUX_H__\nstruct a;\n#pragma clang attribute pop\nextern int f(void) __weak __ksym;\n\n#endif /* __VMLINUX_H__ */\n"
        );
        assert_eq!(insert_into_header(header, ""), header);
    }
}
