//! Globals of the data sections: where the symbol table puts them, their resolved type,
//! the value compiled into the object, and the flag each becomes (or why none).

use super::annotations::Annotations;
use super::error::PackError;
use crate::spec::btf::{ObjectBtf, Var};
use crate::spec::elf::ElfInfo;
use crate::spec::flags;
use crate::spec::package::{Flag, Global};
use crate::spec::plan::Plan;
use crate::spec::source;
use crate::spec::types::{Kind, Type};
use crate::spec::value::json_value;
use crate::spec::vocab::DataSection;

/// Why a `const` global without `volatile` is no flag.
const FOLDED: &str = "a `const` without `volatile`: clang folded its value into the code, so a flag could not change what the program does (declare it `const volatile` to make it one)";

/// Globals larger than this get no decoded default (`null`).
const MAX_DEFAULT_SIZE: u64 = 64 * 1024;

pub(super) fn globals(
    elf: &ElfInfo,
    btf: &ObjectBtf,
    tags: &Annotations,
    source: Option<&str>,
) -> Result<Vec<Global>, PackError> {
    let mut out = Vec::new();
    for sec in btf.datasecs() {
        let Some(kind) = DataSection::of(&sec.name) else {
            continue;
        };
        for var in sec.vars {
            out.push((kind, global(elf, btf, tags, source, &sec.name, var)?));
        }
    }
    // Configuration first: .rodata, then .data, then .bss; by offset within each.
    out.sort_by(|(ka, a), (kb, b)| (ka, &a.section, a.offset).cmp(&(kb, &b.section, b.offset)));
    Ok(out.into_iter().map(|(_, g)| g).collect())
}

fn global(
    elf: &ElfInfo,
    btf: &ObjectBtf,
    tags: &Annotations,
    source: Option<&str>,
    section: &str,
    var: Var,
) -> Result<Global, PackError> {
    let sym = elf
        .data_symbol(&var.name, section)
        .ok_or_else(|| PackError::NoSymbol {
            name: var.name.clone(),
            section: section.into(),
        })?;
    let ty = btf.resolve(var.type_id)?;
    let size = ty.size();
    if sym.size != 0 && sym.size != size {
        return Err(PackError::SizeMismatch {
            name: var.name,
            c: ty.c,
            symbol: sym.size,
            btf: size,
        });
    }
    let default = default_value(elf, section, sym.offset, &ty)?;
    let lost_map = tags.lost(var.id);
    let u64_kind = Kind::Int {
        size: 8,
        signed: false,
    };
    if lost_map.is_some() && ty.kind != u64_kind {
        return Err(PackError::BadLostCounter(var.name));
    }
    let flag = match (lost_map, tags.wakes_by(&var.name)) {
        (Some(map), _) => Flag::None(format!(
            "counts events lost on map `{map}`; the runner reports it"
        )),
        (None, Some(map)) => Flag::None(format!(
            "set by the runner while it sleeps, so that records on map `{map}` wake it"
        )),
        _ if var.is_static => Flag::None("static variables are private to the program".into()),
        _ if DataSection::of(section) == Some(DataSection::Rodata)
            && !btf.is_volatile(var.type_id)? =>
        {
            Flag::None(FOLDED.into())
        }
        _ => flags::flag_for(&var.name, &ty),
    };
    let help = source
        .and_then(|s| source::global_comment(s, &var.name))
        .unwrap_or_default();
    Ok(Global {
        name: var.name,
        section: section.into(),
        offset: sym.offset,
        size,
        ty,
        default,
        compiled: None,
        flag,
        help,
        implies: Vec::new(),
    })
}

fn default_value(
    elf: &ElfInfo,
    section: &str,
    offset: u64,
    ty: &Type,
) -> Result<serde_json::Value, PackError> {
    // Big buffers are not configuration: their default is not decoded.
    if ty.size() > MAX_DEFAULT_SIZE {
        return Ok(serde_json::Value::Null);
    }
    let size = ty.size() as usize;
    let mut bytes = vec![0u8; size];
    if let Some((Some(data), _)) = elf.section(section) {
        let start = (offset as usize).min(data.len());
        let end = (start + size).min(data.len());
        bytes[..end - start].copy_from_slice(&data[start..end]);
    }
    Ok(json_value(&Plan::compile(ty)?, &bytes))
}
