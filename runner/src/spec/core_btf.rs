//! The part of a kernel's BTF that an object's CO-RE relocations read, cut out as a BTF of
//! its own: what `bpftool gen min_core_btf` makes for BTFHub, computed here so that a run
//! can hand it to libbpf (`btf_custom_path`) instead of the whole kernel BTF. Parsing the
//! kernel's 5 MiB of BTF and searching it for candidates is most of what libbpf spends
//! opening a small tool; the subset is a few KiB.
//!
//! What is kept, for each relocation's root type: every kernel type of the same essential
//! name (`task_struct___mine` matches `task_struct`) and compatible kind, and everything
//! those types embed (members, array elements, typedef targets, modifiers), with offsets,
//! sizes and names unchanged. Pointers are kept as pointers to `void`: a field relocation
//! only walks embedded members, libbpf holds any two pointers compatible, and a read
//! through a pointer is a relocation of its own with its own root type. Of the type-based
//! relocations, `bpf_core_type_exists` and `_size` of a struct, union, enum or integer
//! compare kinds and sizes only, and are kept; on anything else (a pointer type, an array),
//! `bpf_core_type_matches` (which compares through pointers) and target type ids (which
//! must be the kernel's own numbers) the object gets no subset and libbpf reads the full
//! BTF as before. Pure: bytes in, bytes out; nothing here touches the kernel.

use std::collections::HashMap;

use object::{Object as _, ObjectSection as _};

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;

// BTF kinds (include/uapi/linux/btf.h).
const INT: u32 = 1;
const PTR: u32 = 2;
const ARRAY: u32 = 3;
const STRUCT: u32 = 4;
const UNION: u32 = 5;
const ENUM: u32 = 6;
const FWD: u32 = 7;
const TYPEDEF: u32 = 8;
const VOLATILE: u32 = 9;
const CONST: u32 = 10;
const RESTRICT: u32 = 11;
const FUNC: u32 = 12;
const FUNC_PROTO: u32 = 13;
const VAR: u32 = 14;
const DATASEC: u32 = 15;
const FLOAT: u32 = 16;
const DECL_TAG: u32 = 17;
const TYPE_TAG: u32 = 18;
const ENUM64: u32 = 19;

// CO-RE relocation kinds (enum bpf_core_relo_kind) that compare whole types.
const TYPE_ID_LOCAL: u32 = 6;
const TYPE_ID_TARGET: u32 = 7;
const TYPE_EXISTS: u32 = 8;
const TYPE_SIZE: u32 = 9;
const TYPE_MATCHES: u32 = 12;

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(word.try_into().ok()?))
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Bytes that follow the 12-byte common record of a type of `kind` with `vlen` entries.
fn trailer_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        PTR | FWD | TYPEDEF | VOLATILE | CONST | RESTRICT | FUNC | FLOAT | TYPE_TAG => 0,
        INT | VAR | DECL_TAG => 4,
        ARRAY => 12,
        STRUCT | UNION | DATASEC | ENUM64 => 12 * vlen,
        ENUM | FUNC_PROTO => 8 * vlen,
        _ => return None,
    })
}

/// Kinds whose third word is a type id rather than a size.
fn refers(kind: u32) -> bool {
    matches!(
        kind,
        PTR | TYPEDEF | VOLATILE | CONST | RESTRICT | FUNC | FUNC_PROTO | VAR | DECL_TAG | TYPE_TAG
    )
}

/// Where, inside a type's record, the other types it names and the strings it names are.
struct Slots {
    types: Vec<usize>,
    names: Vec<usize>,
}

fn slots(kind: u32, vlen: usize) -> Slots {
    let mut slots = Slots {
        types: Vec::new(),
        names: vec![0],
    };
    if refers(kind) {
        slots.types.push(8);
    }
    let each = |stride: usize, name: Option<usize>, types: &[usize], slots: &mut Slots| {
        for i in 0..vlen {
            let base = 12 + i * stride;
            slots.names.extend(name.map(|n| base + n));
            slots.types.extend(types.iter().map(|t| base + t));
        }
    };
    match kind {
        ARRAY => slots.types.extend([12, 16]),
        STRUCT | UNION => each(12, Some(0), &[4], &mut slots),
        ENUM => each(8, Some(0), &[], &mut slots),
        ENUM64 => each(12, Some(0), &[], &mut slots),
        FUNC_PROTO => each(8, Some(0), &[4], &mut slots),
        DATASEC => each(12, None, &[0], &mut slots),
        _ => {}
    }
    slots
}

/// A raw little-endian BTF blob, its types indexed by id.
struct RawBtf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Where each type's record starts in `types`, and where the next one does; entry 0
    /// is type id 1.
    bounds: Vec<(u32, u32)>,
}

impl<'a> RawBtf<'a> {
    fn parse(bytes: &'a [u8]) -> Option<RawBtf<'a>> {
        if bytes.get(..2)? != MAGIC.to_le_bytes() {
            return None;
        }
        let hdr_len = u32_at(bytes, 4)? as usize;
        let section = |at: usize| -> Option<&'a [u8]> {
            let off = hdr_len.checked_add(u32_at(bytes, at)? as usize)?;
            bytes.get(off..off.checked_add(u32_at(bytes, at + 4)? as usize)?)
        };
        let types = section(8)?;
        let strings = section(16)?;
        let mut bounds = Vec::with_capacity(types.len() / 24);
        let mut at = 0usize;
        while at < types.len() {
            let info = u32_at(types, at + 4)?;
            let len = 12 + trailer_len(kind_of(info), (info & 0xffff) as usize)?;
            bounds.push((at as u32, (at + len) as u32));
            at += len;
        }
        (at == types.len()).then_some(RawBtf {
            types,
            strings,
            bounds,
        })
    }

    fn count(&self) -> u32 {
        self.bounds.len() as u32
    }

    /// The record of type `id` (1-based), trailer included.
    fn record(&self, id: u32) -> Option<&'a [u8]> {
        let (start, end) = *self.bounds.get((id as usize).checked_sub(1)?)?;
        self.types.get(start as usize..end as usize)
    }

    fn string(&self, off: u32) -> Option<&'a [u8]> {
        let rest = self.strings.get(off as usize..)?;
        Some(&rest[..rest.iter().position(|&b| b == 0)?])
    }

    fn name(&self, id: u32) -> Option<&'a [u8]> {
        self.string(u32_at(self.record(id)?, 0)?)
    }

    fn kind(&self, id: u32) -> Option<u32> {
        Some(kind_of(u32_at(self.record(id)?, 4)?))
    }
}

fn kind_of(info: u32) -> u32 {
    (info >> 24) & 0x1f
}

fn vlen_of(record: &[u8]) -> usize {
    u32_at(record, 4).map_or(0, |info| (info & 0xffff) as usize)
}

/// Kinds that libbpf takes as the same when it searches for candidates.
fn kind_class(kind: u32) -> u32 {
    if kind == ENUM64 {
        ENUM
    } else {
        kind
    }
}

/// `name` without a `___flavor` suffix, as libbpf matches local types to kernel types.
fn essential(name: &[u8]) -> &[u8] {
    let n = name.len();
    for i in (0..n.saturating_sub(4)).rev() {
        if name[i] != b'_' && &name[i + 1..i + 4] == b"___" && name[i + 4] != b'_' {
            return &name[..=i];
        }
    }
    name
}

/// A CO-RE relocation: the local type id of its root, and its kind.
type Relocation = (u32, u32);

/// The object's `.BTF`, and each of its CO-RE relocations.
fn relocations(object: &[u8]) -> Result<(Vec<u8>, Vec<Relocation>), String> {
    let file = object::File::parse(object).map_err(|e| format!("not an ELF object: {e}"))?;
    let data = |name: &str| {
        file.section_by_name(name)
            .and_then(|s| s.data().ok())
            .map(<[u8]>::to_vec)
    };
    let btf = data(".BTF").ok_or("no .BTF section")?;
    let Some(ext) = data(".BTF.ext") else {
        return Ok((btf, Vec::new()));
    };
    let bad = || "malformed .BTF.ext".to_string();
    let hdr_len = u32_at(&ext, 4).ok_or_else(bad)? as usize;
    if hdr_len < 32 {
        return Ok((btf, Vec::new()));
    }
    let off = hdr_len + u32_at(&ext, 24).ok_or_else(bad)? as usize;
    let len = u32_at(&ext, 28).ok_or_else(bad)? as usize;
    let info = ext.get(off..off + len).ok_or_else(bad)?;
    let mut relos = Vec::new();
    if info.is_empty() {
        return Ok((btf, relos));
    }
    let rec_size = u32_at(info, 0).ok_or_else(bad)? as usize;
    if rec_size < 16 {
        return Err(bad());
    }
    let mut at = 4;
    while at < info.len() {
        let count = u32_at(info, at + 4).ok_or_else(bad)? as usize;
        at += 8;
        for _ in 0..count {
            let record = info.get(at..at + rec_size).ok_or_else(bad)?;
            relos.push((u32_at(record, 4).unwrap(), u32_at(record, 12).unwrap()));
            at += rec_size;
        }
    }
    Ok((btf, relos))
}

/// Whether libbpf compares local type `id` with a kernel type without looking behind a
/// pointer: what it names, past modifiers and typedefs, is a struct, union, enum or integer
/// (for `bpf_core_type_exists` and `_size`, two such types agree on kind alone, and sizes
/// are kept). A pointer or an array would be compared through to what it points at.
fn whole_without_pointers(local: &RawBtf, mut id: u32) -> bool {
    for _ in 0..32 {
        match local.kind(id) {
            Some(TYPEDEF | VOLATILE | CONST | RESTRICT | TYPE_TAG) => {
                match local.record(id).and_then(|r| u32_at(r, 8)) {
                    Some(next) => id = next,
                    None => return false,
                }
            }
            Some(kind) => return matches!(kind, STRUCT | UNION | ENUM | ENUM64 | INT | FWD),
            None => return false,
        }
    }
    false
}

/// The essential names and kind classes the relocations look for in the kernel.
fn wanted(object: &[u8]) -> Result<HashMap<Vec<u8>, Vec<u32>>, String> {
    let (btf, relos) = relocations(object)?;
    if relos.is_empty() {
        return Err("the object has no CO-RE relocations".into());
    }
    let local = RawBtf::parse(&btf).ok_or("the object's BTF cannot be read")?;
    let mut wanted: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
    for (type_id, kind) in relos {
        match kind {
            TYPE_ID_LOCAL => continue,
            TYPE_ID_TARGET | TYPE_MATCHES => {
                return Err("the object has type-based CO-RE relocations".into())
            }
            TYPE_EXISTS | TYPE_SIZE if !whole_without_pointers(&local, type_id) => {
                return Err("the object has type-based CO-RE relocations".into())
            }
            _ => {}
        }
        let name = local.name(type_id).filter(|n| !n.is_empty());
        let (Some(name), Some(kind)) = (name, local.kind(type_id)) else {
            return Err(format!("relocation on unnamed local type {type_id}"));
        };
        let classes = wanted.entry(essential(name).to_vec()).or_default();
        if !classes.contains(&kind_class(kind)) {
            classes.push(kind_class(kind));
        }
    }
    Ok(wanted)
}

/// The kernel types the relocations can resolve to, and everything they embed.
fn closure(kernel: &RawBtf, wanted: &HashMap<Vec<u8>, Vec<u32>>) -> Result<Vec<bool>, String> {
    let mut keep = vec![false; kernel.count() as usize + 1];
    let mut stack = Vec::new();
    let mut found: HashMap<&[u8], ()> = HashMap::new();
    for id in 1..=kernel.count() {
        let Some(name) = kernel.name(id).filter(|n| !n.is_empty()) else {
            continue;
        };
        let Some((name, classes)) = wanted.get_key_value(essential(name)) else {
            continue;
        };
        if kernel
            .kind(id)
            .is_some_and(|k| classes.contains(&kind_class(k)))
        {
            found.insert(name.as_slice(), ());
            stack.push(id);
        }
    }
    if let Some(missing) = wanted.keys().find(|n| !found.contains_key(n.as_slice())) {
        return Err(format!(
            "`{}` is not in the kernel's BTF (a module's, maybe)",
            String::from_utf8_lossy(missing)
        ));
    }
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut keep[id as usize], true) {
            continue;
        }
        let record = kernel.record(id).ok_or("type id out of range")?;
        let kind = kind_of(u32_at(record, 4).unwrap_or(0));
        if kind == PTR {
            continue;
        }
        for at in slots(kind, vlen_of(record)).types {
            let target = u32_at(record, at).ok_or("truncated type")?;
            if target != 0 && !*keep.get(target as usize).ok_or("type id out of range")? {
                stack.push(target);
            }
        }
    }
    Ok(keep)
}

/// A new string table, each string once.
struct Strings {
    bytes: Vec<u8>,
    at: HashMap<Vec<u8>, u32>,
}

impl Strings {
    fn add(&mut self, text: &[u8]) -> u32 {
        if text.is_empty() {
            return 0;
        }
        if let Some(&off) = self.at.get(text) {
            return off;
        }
        let off = self.bytes.len() as u32;
        self.bytes.extend_from_slice(text);
        self.bytes.push(0);
        self.at.insert(text.to_vec(), off);
        off
    }
}

/// The kept types, renumbered in their original order, as one raw BTF blob.
fn write(kernel: &RawBtf, keep: &[bool]) -> Result<Vec<u8>, String> {
    let mut new_id = vec![0u32; keep.len()];
    let mut next = 0;
    for (id, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
        next += 1;
        new_id[id] = next;
    }
    let mut strings = Strings {
        bytes: vec![0],
        at: HashMap::new(),
    };
    let mut types = Vec::new();
    for id in (1..keep.len()).filter(|&id| keep[id]) {
        let mut record = kernel
            .record(id as u32)
            .ok_or("type id out of range")?
            .to_vec();
        let kind = kind_of(u32_at(&record, 4).unwrap_or(0));
        let slots = slots(kind, vlen_of(&record));
        for at in slots.names {
            let text = kernel
                .string(u32_at(&record, at).unwrap_or(0))
                .unwrap_or(b"");
            put_u32(&mut record, at, strings.add(text));
        }
        for at in slots.types {
            let old = u32_at(&record, at).unwrap_or(0) as usize;
            // Only a pointer may lose its target: it becomes a pointer to void.
            let new = new_id.get(old).copied().unwrap_or(0);
            if new == 0 && old != 0 && kind != PTR {
                return Err(format!("type {id} names type {old}, which was not kept"));
            }
            put_u32(&mut record, at, new);
        }
        types.extend_from_slice(&record);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + types.len() + strings.bytes.len());
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&[1, 0]); // version 1, no flags
    for word in [
        HEADER_LEN as u32,
        0,
        types.len() as u32,
        types.len() as u32,
        strings.bytes.len() as u32,
    ] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.extend_from_slice(&types);
    out.extend_from_slice(&strings.bytes);
    Ok(out)
}

/// The subset of `kernel_btf` (raw BTF, as `/sys/kernel/btf/vmlinux`) that the CO-RE
/// relocations of `object` need, or why there is none to make.
pub fn minimal(object: &[u8], kernel_btf: &[u8]) -> Result<Vec<u8>, String> {
    let wanted = wanted(object)?;
    let kernel = RawBtf::parse(kernel_btf).ok_or("the kernel's BTF cannot be read")?;
    let keep = closure(&kernel, &wanted)?;
    write(&kernel, &keep)
}

/// Whether `object` has CO-RE relocations at all (the subset is worth making).
pub fn relocates(object: &[u8]) -> bool {
    relocations(object).is_ok_and(|(_, relos)| relos.iter().any(|&(_, k)| k != TYPE_ID_LOCAL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn sigsnoop_object() -> Vec<u8> {
        let text = include_str!("../../../programs/sigsnoop/package.json");
        let package: serde_json::Value = serde_json::from_str(text).unwrap();
        let b64 = package["object"]["base64"].as_str().unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    }

    /// Each member of struct `name` (name, bit offset, size in bytes of its type), as btf-rs
    /// reads it.
    fn members(btf: &btf_rs::Btf, name: &str) -> Vec<(String, u32, usize)> {
        let found = btf.resolve_types_by_name(name).unwrap();
        let Some(btf_rs::Type::Struct(s)) = found.into_iter().next() else {
            panic!("no struct {name}");
        };
        s.members
            .iter()
            .map(|m| {
                let ty = btf.resolve_chained_type(m).unwrap();
                let size = match &ty {
                    btf_rs::Type::Ptr(_) => 8,
                    btf_rs::Type::Int(i) => i.size(),
                    btf_rs::Type::Struct(s) | btf_rs::Type::Union(s) => s.size(),
                    btf_rs::Type::Array(a) => a.len(),
                    _ => 0,
                };
                (btf.resolve_name(m).unwrap(), m.bit_offset(), size)
            })
            .collect()
    }

    #[test]
    fn sigsnoop_gets_the_kernel_structs_it_reads_and_little_else() {
        let Ok(kernel) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            eprintln!("skipped: no /sys/kernel/btf/vmlinux");
            return;
        };
        let object = sigsnoop_object();
        assert!(relocates(&object));
        let subset = minimal(&object, &kernel).unwrap();
        assert!(
            subset.len() * 50 < kernel.len(),
            "subset {} bytes of {}",
            subset.len(),
            kernel.len()
        );
        let small = btf_rs::Btf::from_bytes(&subset).unwrap();
        let full = btf_rs::Btf::from_bytes(&kernel).unwrap();
        for name in [
            "task_struct",
            "pt_regs",
            "trace_event_raw_sys_exit",
            "trace_event_raw_signal_generate",
        ] {
            let kept = members(&small, name);
            assert!(kept
                .iter()
                .any(|m| ["comm", "di", "ret", "sig"].contains(&&*m.0)));
            assert_eq!(kept, members(&full, name), "struct {name}");
        }
        // Only what the relocations name, and what that embeds: no functions, no
        // variables, nothing reached through a pointer alone.
        let absent = |name: &str| {
            small
                .resolve_types_by_name(name)
                .map_or(true, |t| t.is_empty())
        };
        assert!(!absent("task_struct"));
        assert!(absent("mm_struct"));
        assert!(absent("schedule"));
        // And libbpf takes it.
        // SAFETY: the pointer and length describe `subset`, which outlives the call; the
        // returned BTF is freed at once.
        unsafe {
            let btf = libbpf_sys::btf__new(subset.as_ptr().cast(), subset.len() as u32);
            assert!(!btf.is_null() && libbpf_sys::libbpf_get_error(btf.cast()) == 0);
            libbpf_sys::btf__free(btf);
        }
    }

    #[test]
    fn type_relocations_that_look_behind_pointers_get_no_subset() {
        let Ok(kernel) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            return;
        };
        let mut object = sigsnoop_object();
        // Turn the first CO-RE relocation (on a struct) into TYPE_MATCHES: refused; into
        // TYPE_EXISTS: kept, as the struct is compared by kind alone.
        let file = object::File::parse(&*object).unwrap();
        let ext = file.section_by_name(".BTF.ext").unwrap();
        let (start, _) = ext.file_range().unwrap();
        let data = ext.data().unwrap();
        let hdr = u32_at(data, 4).unwrap() as usize;
        let relo = hdr + u32_at(data, 24).unwrap() as usize;
        let kind_at = start as usize + relo + 4 + 8 + 12;
        drop(file);
        assert!(u32_at(&object, kind_at).unwrap() < TYPE_ID_LOCAL);
        put_u32(&mut object, kind_at, TYPE_MATCHES);
        let why = minimal(&object, &kernel).unwrap_err();
        assert!(why.contains("type-based"), "{why}");
        put_u32(&mut object, kind_at, TYPE_EXISTS);
        assert!(minimal(&object, &kernel).is_ok());
        // On a pointer type, which libbpf would compare through: refused.
        let file = object::File::parse(&*object).unwrap();
        let btf = file
            .section_by_name(".BTF")
            .unwrap()
            .data()
            .unwrap()
            .to_vec();
        drop(file);
        let local = RawBtf::parse(&btf).unwrap();
        let pointer = (1..=local.count())
            .find(|&id| local.kind(id) == Some(PTR))
            .unwrap();
        assert!(!whole_without_pointers(&local, pointer));
        let task = (1..=local.count())
            .find(|&id| local.name(id) == Some(b"task_struct___sigsnoop"))
            .unwrap();
        assert!(whole_without_pointers(&local, task));
    }

    #[test]
    fn a_truncated_kernel_btf_is_refused_not_misread() {
        let object = sigsnoop_object();
        let Ok(kernel) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            return;
        };
        for cut in [0, 10, 24, kernel.len() / 2] {
            assert!(minimal(&object, &kernel[..cut]).is_err());
        }
    }

    #[test]
    fn flavors_are_cut_where_libbpf_cuts_them() {
        assert_eq!(essential(b"task_struct___sigsnoop"), b"task_struct");
        assert_eq!(essential(b"task_struct"), b"task_struct");
        assert_eq!(essential(b"a___b___c"), b"a___b");
        assert_eq!(essential(b"__x____y"), b"__x____y");
        assert_eq!(essential(b"x___"), b"x___");
    }
}
