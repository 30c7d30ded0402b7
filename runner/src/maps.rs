//! Maps declared in `.maps`: their type, sizes and key/value types from the BTF map
//! definition idioms of `bpf_helpers.h`, and the view a `runner:view` tag asks for.

use crate::btf::ObjectBtf;
use crate::pack::PackError;
use crate::package::{Map, View};
use crate::types::{Kind, Type};

/// BPF map type numbers (`enum bpf_map_type`) and the names the package gives them.
const MAP_TYPES: &[&str] = &[
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

/// Maps declared in `.maps`, with the BTF id of each map variable.
pub fn maps(btf: &ObjectBtf) -> Result<Vec<(u32, Map)>, PackError> {
    let mut out = Vec::new();
    for sec in btf.datasecs().into_iter().filter(|s| s.name == ".maps") {
        for var in sec.vars {
            let mut map = Map {
                name: var.name.clone(),
                kind: String::new(),
                key_size: 0,
                value_size: 0,
                max_entries: 0,
                key: None,
                value: None,
                view: None,
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
            map.kind = MAP_TYPES
                .get(kind as usize)
                .map_or_else(|| format!("type_{kind}"), |s| s.to_string());
            if let Some(view) = btf.runner_tag(var.id, "view") {
                map.view = Some(check_view(&map, view)?);
            }
            out.push((var.id, map));
        }
    }
    Ok(out)
}

/// Check that `map` can be shown as `view`.
fn check_view(map: &Map, view: &str) -> Result<View, PackError> {
    let bad = |view, needs| PackError::BadView {
        map: map.name.clone(),
        view,
        needs,
    };
    let is_int = |t: &Option<Type>| matches!(t.as_ref().map(|t| &t.kind), Some(Kind::Int { .. }));
    match view {
        "table" => {
            if map.key.is_none() || map.value.is_none() {
                return Err(bad("table", "key and value types (declare them with __type(key, ...) and __type(value, ...))"));
            }
            Ok(View::Table)
        }
        "log2_hist" => {
            let slots = matches!(map.value.as_ref().map(|t| &t.kind), Some(Kind::Array { elem, .. }) if matches!(elem.kind, Kind::Int { .. }));
            if !(slots || (is_int(&map.key) && is_int(&map.value))) {
                return Err(bad(
                    "log2_hist",
                    "an integer array of slots as value, or an integer slot index as key and an integer count as value",
                ));
            }
            Ok(View::Log2Hist)
        }
        other => Err(PackError::UnknownView {
            map: map.name.clone(),
            view: other.into(),
        }),
    }
}
