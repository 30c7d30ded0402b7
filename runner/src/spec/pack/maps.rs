//! Maps declared in `.maps`: their type, sizes and key/value types from the BTF map
//! definition idioms of `bpf_helpers.h`, and the view (`runner:view`) and unit
//! (`runner:unit`) their tags declare.

use super::annotations::Annotations;
use super::error::PackError;
use crate::spec::btf::ObjectBtf;
use crate::spec::mapview;
use crate::spec::package::Map;
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
                unit: None,
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
                mapview::fits(&map, view)?;
                map.view = Some(view);
            }
            map.unit = tags.unit(var.id).map(str::to_string);
            out.push((var.id, map));
        }
    }
    Ok(out)
}
