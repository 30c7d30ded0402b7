//! Entry points for fuzzing (`fuzz/`, cargo-fuzz) and for replaying its seeds and every
//! crash it ever found as regression tests (`tests/fuzz_inputs.rs`, on the stable
//! toolchain). Each takes arbitrary bytes and must return without panicking, hanging or
//! allocating without bound, whatever they hold.

use std::path::Path;

use crate::output::{EventWriter, Format};
use crate::spec::btf::{BtfError, ObjectBtf};
use crate::spec::pack;
use crate::spec::package::Package;
use crate::spec::plan::Plan;
use crate::spec::types::Type;

/// Once, before the first input: the default panic hook again. libFuzzer's aborts on any
/// panic, even one the BTF reader catches on purpose (btf-rs asserts on some malformed
/// headers); a panic that escapes a target still aborts the run.
pub fn init() {
    let _ = std::panic::take_hook();
}

/// The package reader, as `runner info` drives it: JSON (strictly), format, embedded
/// object and checksum, then the object described again from its ELF and BTF, and the
/// package rendered for a person.
pub fn package(data: &[u8]) {
    let Ok((pkg, object)) = Package::from_slice(data, Path::new("fuzz.json")) else {
        return;
    };
    let overrides: Vec<(String, String)> = pkg
        .events
        .iter()
        .map(|e| (e.map.clone(), e.struct_name.clone()))
        .collect();
    let _ = pack::describe(&object, None, &overrides, None);
    let _ = crate::info::render(&pkg);
}

/// The BTF walker: raw BTF (a `.BTF` section) parsed, every type resolved into the type
/// model and named as C would, and each resolved type compiled into a decoder. A leading
/// `\x7fELF` makes it a whole object instead, described as the packer does.
pub fn btf(data: &[u8]) {
    if data.starts_with(b"\x7fELF") {
        let _ = pack::describe(data, None, &[], None);
        return;
    }
    let Ok(btf) = ObjectBtf::parse(data) else {
        return;
    };
    for id in 0..4096 {
        match btf.resolve(id) {
            Err(BtfError::BadId(_)) => break,
            Ok(ty) => {
                let _ = Plan::compile(&ty);
            }
            Err(_) => {}
        }
        let _ = btf.c_name(id);
    }
}

/// The decoder: a type (JSON, as a package holds it) and a record, split at the first
/// NUL byte; the record decoded and rendered in every format.
pub fn decode(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (ty, record) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let Ok(ty) = serde_json::from_slice::<Type>(ty) else {
        return;
    };
    let Ok(plan) = Plan::compile(&ty) else {
        return;
    };
    // Records are zero-padded to the struct's size, as a short record is never decoded.
    let mut rec = record.to_vec();
    if rec.len() < plan.size {
        rec.resize(plan.size, 0);
    }
    let _ = crate::spec::value::json_value(&plan, &rec);
    let mut out = Vec::new();
    for format in [Format::Table, Format::Json, Format::Csv] {
        let mut writer = EventWriter::new(format, plan.clone());
        writer.fix_time(0, 0);
        writer.header(&mut out);
        writer.event(&rec, &mut out);
        out.clear();
    }
}
