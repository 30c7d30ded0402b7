//! Which maps the runner shows, and how: the views a map's types allow, where a value keeps
//! its histogram slots and its count, and the default view of a map nobody declared one for.
//!
//! A map is **declared** shown by its `view` (a `runner:view=` tag, or a package that sets
//! it), or chosen at run time with `--view MAP=VIEW`. A package with **no event channel and
//! no declared view** shows, by default, every map whose value reads as a result:
//!
//! - a histogram (`log2_hist`): the value is an integer array (the slots), or a struct with
//!   one (a member named `slots`, or its only integer array), as bcc's
//!   `struct hist { __u32 slots[N]; char comm[16]; }`;
//! - a table: the value is a struct with at least one integer member.
//!
//! Left out: maps that are not hash or array maps (event channels, cgroup and program
//! arrays, stack traces…), maps without BTF key and value types, per-CPU arrays of one
//! entry (scratch space for building an event), values that hold a pointer (arguments
//! saved at a syscall's entry), and values that are a bare number: a `pid → u64` map is as
//! often the start timestamps of a latency tool as a count, and the runner cannot tell
//! which (`--view MAP=table` shows it).

use crate::spec::package::{Map, View};
use crate::spec::types::{Kind, Member, Type};
use crate::spec::vocab::MapType;

/// Why a map cannot be shown as a view.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("map `{map}` is a {kind} map; only hash and array maps can be shown")]
    Kind { map: String, kind: String },
    #[error("map `{map}`: a {view} view needs {needs}")]
    Shape {
        map: String,
        view: &'static str,
        needs: &'static str,
    },
}

/// Where a histogram's slots are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slots {
    /// The value is the array of slots.
    Value,
    /// The value is a struct; this member is the array of slots, the others label it.
    Member(String),
    /// The key is the slot index and the value its count: one histogram for the map.
    Key,
}

/// Whether maps of this type hold keys and values the runner can read as a view.
pub fn viewable(kind: MapType) -> bool {
    matches!(
        kind,
        MapType::Hash
            | MapType::Array
            | MapType::PercpuHash
            | MapType::PercpuArray
            | MapType::LruHash
            | MapType::LruPercpuHash
    )
}

fn is_int(ty: &Type) -> bool {
    matches!(ty.kind, Kind::Int { .. })
}

fn is_int_array(ty: &Type) -> bool {
    matches!(&ty.kind, Kind::Array { elem, len } if *len > 0 && is_int(elem))
}

fn members(ty: &Type) -> &[Member] {
    match &ty.kind {
        Kind::Struct { members, .. } => members,
        _ => &[],
    }
}

/// The slots of a value of type `value`, if it has them: the value itself, a member named
/// `slots`, or the struct's only integer array.
fn value_slots(value: &Type) -> Option<Slots> {
    if is_int_array(value) {
        return Some(Slots::Value);
    }
    let arrays: Vec<&Member> = members(value)
        .iter()
        .filter(|m| m.bitfield.is_none() && !m.name.is_empty() && is_int_array(&m.ty))
        .collect();
    let slots = arrays
        .iter()
        .find(|m| m.name == "slots")
        .or_else(|| arrays.first().filter(|_| arrays.len() == 1))?;
    Some(Slots::Member(slots.name.clone()))
}

/// Where the slots of `map` are when it is shown as a histogram.
pub fn slots(map: &Map) -> Option<Slots> {
    let value = map.value.as_ref()?;
    value_slots(value)
        .or_else(|| (map.key.as_ref().is_some_and(is_int) && is_int(value)).then_some(Slots::Key))
}

/// The member of a struct value that counts (rows sort by it, biggest first): `count` if
/// it is an integer, else the first integer member other than `skip` (the slots).
pub fn count_member<'a>(value: &'a Type, skip: Option<&str>) -> Option<&'a str> {
    let ints = || {
        members(value)
            .iter()
            .filter(|m| is_int(&m.ty) && !m.name.is_empty() && Some(m.name.as_str()) != skip)
    };
    ints()
        .find(|m| m.name == "count")
        .or_else(|| ints().next())
        .map(|m| m.name.as_str())
}

/// Check that `map` can be shown as `view`.
pub fn fits(map: &Map, view: View) -> Result<(), ViewError> {
    if !viewable(map.kind) {
        return Err(ViewError::Kind {
            map: map.name.clone(),
            kind: map.kind.name(),
        });
    }
    let shape = |view, needs| ViewError::Shape {
        map: map.name.clone(),
        view,
        needs,
    };
    if map.key.is_none() || map.value.is_none() {
        return Err(shape(
            view.name(),
            "key and value types (declare them with __type(key, ...) and __type(value, ...))",
        ));
    }
    match view {
        View::Table => Ok(()),
        View::Log2Hist | View::LinearHist => slots(map).map(|_| ()).ok_or_else(|| {
            shape(
                view.name(),
                "an integer array of slots as value (or a struct value with one), or an integer slot index as key and an integer count as value",
            )
        }),
    }
}

fn has_pointer(ty: &Type) -> bool {
    match &ty.kind {
        Kind::Pointer { .. } => true,
        Kind::Array { elem, .. } => has_pointer(elem),
        Kind::Struct { members, .. } | Kind::Union { members, .. } => {
            members.iter().any(|m| has_pointer(&m.ty))
        }
        _ => false,
    }
}

/// The view `map` gets when nothing chose one (see the module's rule), if any.
pub fn default_view(map: &Map) -> Option<View> {
    let (Some(_), Some(value)) = (&map.key, &map.value) else {
        return None;
    };
    let scratch = map.kind == MapType::PercpuArray && map.max_entries <= 1;
    if !viewable(map.kind) || scratch || has_pointer(value) {
        return None;
    }
    if value_slots(value).is_some() {
        return Some(View::Log2Hist);
    }
    members(value)
        .iter()
        .any(|m| is_int(&m.ty))
        .then_some(View::Table)
}

/// The view each map of a package gets: `--view` first (`None` hides the map), then the
/// map's declared view, then, in a package with no event channel and no declared view,
/// its default. By index into `maps`, in their order.
pub fn chosen(
    maps: &[Map],
    has_channels: bool,
    overrides: &[(String, Option<View>)],
) -> Vec<(usize, View)> {
    let defaults = !has_channels && maps.iter().all(|m| m.view.is_none());
    maps.iter()
        .enumerate()
        .filter_map(|(i, map)| {
            let view = match overrides.iter().rev().find(|(name, _)| *name == map.name) {
                Some((_, view)) => *view,
                None if defaults => default_view(map),
                None => map.view,
            };
            view.map(|v| (i, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(c: &str, kind: Kind) -> Type {
        Type { c: c.into(), kind }
    }

    fn int(size: u32) -> Type {
        ty(
            &format!("__u{}", size * 8),
            Kind::Int {
                size,
                signed: false,
            },
        )
    }

    fn array(elem: Type, len: u32) -> Type {
        ty(
            &format!("{}[{len}]", elem.c),
            Kind::Array {
                len,
                elem: Box::new(elem),
            },
        )
    }

    fn chars(len: u32) -> Type {
        array(ty("char", Kind::Char { signed: true }), len)
    }

    fn structure(members: &[(&str, Type)]) -> Type {
        let mut offset = 0;
        let members = members
            .iter()
            .map(|(name, t)| {
                let m = Member {
                    name: name.to_string(),
                    offset,
                    bitfield: None,
                    ty: t.clone(),
                    shown: None,
                };
                offset += t.size() as u32;
                m
            })
            .collect();
        ty(
            "struct v",
            Kind::Struct {
                size: offset,
                members,
            },
        )
    }

    fn map(name: &str, kind: MapType, max: u32, key: Option<Type>, value: Option<Type>) -> Map {
        Map {
            name: name.into(),
            kind,
            key_size: key.as_ref().map_or(0, |t| t.size() as u32),
            value_size: value.as_ref().map_or(0, |t| t.size() as u32),
            max_entries: max,
            key,
            value,
            view: None,
            unit: None,
            size: None,
        }
    }

    /// bcc's `struct hist { __u32 slots[26]; char comm[16]; }`.
    fn hist() -> Type {
        structure(&[("slots", array(int(4), 26)), ("comm", chars(16))])
    }

    #[test]
    fn defaults_show_results_and_leave_scratch_out() {
        let hash = |name, key, value| map(name, MapType::Hash, 10240, Some(key), Some(value));
        // runqlat, cpudist: `hists` is a histogram per key; `start` is scratch.
        assert_eq!(
            default_view(&hash("hists", int(4), hist())),
            Some(View::Log2Hist)
        );
        assert_eq!(default_view(&hash("start", int(4), int(8))), None);
        // syscount's `data`: counts in a struct.
        let data = structure(&[("count", int(8)), ("total_ns", int(8)), ("comm", chars(16))]);
        assert_eq!(default_view(&hash("data", int(4), data)), Some(View::Table));
        // hardirqs' `infos`: counts and slots; its per-CPU `start` of one entry is scratch.
        let info = structure(&[
            ("count", int(8)),
            ("total_time", int(8)),
            ("slots", array(int(4), 20)),
        ]);
        assert_eq!(
            default_view(&hash("infos", chars(32), info)),
            Some(View::Log2Hist)
        );
        let heap = map("start", MapType::PercpuArray, 1, Some(int(4)), Some(int(8)));
        assert_eq!(default_view(&heap), None);
        // A value array of slots; saved syscall arguments (a pointer); no types; a
        // channel; a struct with no integer.
        assert_eq!(
            default_view(&hash("lat", int(4), array(int(8), 32))),
            Some(View::Log2Hist)
        );
        let args = structure(&[
            ("fname", ty("const char *", Kind::Pointer { size: 8 })),
            ("flags", int(4)),
        ]);
        assert_eq!(default_view(&hash("start", int(4), args)), None);
        assert_eq!(
            default_view(&map("m", MapType::Hash, 1, None, Some(hist()))),
            None
        );
        let ring = map("rb", MapType::Ringbuf, 4096, Some(int(4)), Some(hist()));
        assert_eq!(default_view(&ring), None);
        let names = structure(&[("comm", chars(16))]);
        assert_eq!(default_view(&hash("names", int(4), names)), None);
    }

    #[test]
    fn histograms_find_their_slots() {
        let m = |key: Type, value: Type| map("h", MapType::Hash, 8, Some(key), Some(value));
        assert_eq!(
            slots(&m(int(4), hist())),
            Some(Slots::Member("slots".into()))
        );
        let only = structure(&[("comm", chars(16)), ("buckets", array(int(8), 8))]);
        assert_eq!(
            slots(&m(int(4), only)),
            Some(Slots::Member("buckets".into()))
        );
        let two = structure(&[("a", array(int(8), 8)), ("b", array(int(8), 8))]);
        assert_eq!(slots(&m(int(4), two)), None);
        assert_eq!(slots(&m(int(4), array(int(4), 4))), Some(Slots::Value));
        assert_eq!(slots(&m(int(4), int(8))), Some(Slots::Key));
        assert_eq!(slots(&m(chars(4), int(8))), None);
        // A char array is text, not slots.
        assert_eq!(slots(&m(int(4), chars(16))), None);
    }

    #[test]
    fn views_must_fit() {
        let start = map("start", MapType::Hash, 8, Some(int(4)), Some(int(8)));
        assert!(fits(&start, View::Table).is_ok());
        assert!(fits(&start, View::Log2Hist).is_ok());
        let names = map(
            "names",
            MapType::Hash,
            8,
            Some(int(4)),
            Some(structure(&[("comm", chars(16))])),
        );
        let err = fits(&names, View::LinearHist).unwrap_err().to_string();
        assert!(
            err.starts_with("map `names`: a linear_hist view needs an integer array of slots"),
            "{err}"
        );
        let ring = map("events", MapType::Ringbuf, 8, None, None);
        assert_eq!(
            fits(&ring, View::Table).unwrap_err().to_string(),
            "map `events` is a ringbuf map; only hash and array maps can be shown"
        );
        let untyped = map("raw", MapType::Hash, 8, None, None);
        assert!(fits(&untyped, View::Table)
            .unwrap_err()
            .to_string()
            .contains("key and value types"));
    }

    #[test]
    fn run_time_choices_override_declarations_and_defaults() {
        let hists = map("hists", MapType::Hash, 8, Some(int(4)), Some(hist()));
        let start = map("start", MapType::Hash, 8, Some(int(4)), Some(int(8)));
        let maps = vec![hists.clone(), start.clone()];
        // No channel, nothing declared: defaults.
        assert_eq!(chosen(&maps, false, &[]), vec![(0, View::Log2Hist)]);
        // With an event channel: nothing by default.
        assert_eq!(chosen(&maps, true, &[]), vec![]);
        // --view adds, replaces and hides; the last one given for a map wins.
        let overrides = vec![
            ("start".to_string(), Some(View::Table)),
            ("hists".to_string(), Some(View::Table)),
            ("hists".to_string(), None),
        ];
        assert_eq!(chosen(&maps, false, &overrides), vec![(1, View::Table)]);
        // A declared view turns the defaults off for the other maps.
        let declared = vec![
            hists,
            Map {
                view: Some(View::Table),
                ..start
            },
        ];
        assert_eq!(chosen(&declared, false, &[]), vec![(1, View::Table)]);
    }
}
