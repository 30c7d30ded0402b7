//! Maps declared in `.maps`: their type, sizes and key/value types from the BTF map
//! definition idioms of `bpf_helpers.h`, and the view a `runner:view` tag asks for.

use super::annotations::Annotations;
use super::error::PackError;
use crate::spec::btf::ObjectBtf;
use crate::spec::package::{Map, View};
use crate::spec::types::{Kind, Type};
use crate::spec::vocab::MapType;

/// Maps declared in `.maps`, with the BTF id of each map variable.
pub(super) fn maps(btf: &ObjectBtf, tags: &Annotations) -> Result<Vec<(u32, Map)>, PackError> {
    let mut out = Vec::new();
    for sec in btf.datasecs().into_iter().filter(|s| s.name == ".maps") {
        for var in sec.vars {
            let mut map = Map {
                name: var.name.clone(),
                kind: MapType::Unspec,
                key_size: 0,
                value_size: 0,
                max_entries: 0,
                key: None,
                value: None,
                view: None,
                size: None,
            };
            let mut kind = 0;
            for (member, type_id) in btf.members(var.type_id)? {
                match member.as_str() {
                    "type" => kind = btf.uint_member(type_id)?.unwrap_or(0),
                    "max_entries" => map.max_entries = btf.uint_member(type_id)?.unwrap_or(0),
                    "key_size" => map.key_size = btf.uint_member(type_id)?.unwrap_or(0),
                    "value_size" => map.value_size = btf.uint_member(type_id)?.unwrap_or(0),
                    "key" | "value" => {
                        let Some(target) = btf.pointee(type_id)? else {
                            continue;
                        };
                        let ty = btf.resolve(target)?;
                        let size = ty.size() as u32;
                        if member == "key" {
                            map.key_size = size;
                            map.key = Some(ty);
                        } else {
                            map.value_size = size;
                            map.value = Some(ty);
                        }
                    }
                    _ => {}
                }
            }
            map.kind = MapType::from_raw(kind);
            if let Some(view) = tags.view(var.id) {
                check_view(&map, view)?;
                map.view = Some(view);
            }
            out.push((var.id, map));
        }
    }
    Ok(out)
}

/// Check that `map` can be shown as `view`.
pub(super) fn check_view(map: &Map, view: View) -> Result<(), PackError> {
    let bad = |view, needs| PackError::BadView {
        map: map.name.clone(),
        view,
        needs,
    };
    let is_int = |t: &Option<Type>| matches!(t.as_ref().map(|t| &t.kind), Some(Kind::Int { .. }));
    match view {
        View::Table if map.key.is_none() || map.value.is_none() => Err(bad(
            "table",
            "key and value types (declare them with __type(key, ...) and __type(value, ...))",
        )),
        View::Log2Hist => {
            let slots = matches!(map.value.as_ref().map(|t| &t.kind), Some(Kind::Array { elem, .. }) if matches!(elem.kind, Kind::Int { .. }));
            if !(slots || (is_int(&map.key) && is_int(&map.value))) {
                return Err(bad(
                    "log2_hist",
                    "an integer array of slots as value, or an integer slot index as key and an integer count as value",
                ));
            }
            Ok(())
        }
        View::Table => Ok(()),
    }
}
