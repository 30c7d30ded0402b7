//! A sidecar's `formats` (`spec::shown_decl`) applied to the types of the description:
//! every struct of that name, in an event or a map's key or value, at any depth, gets
//! the declared format, hiding or union selection on the members the paths name. Every
//! name is checked (the struct, each member on a path, a union's discriminant and cases)
//! and every format against the member's type; an error names the place in the sidecar
//! (`formats.event.fname.depth`).

use std::collections::BTreeMap;

use super::description::Description;
use super::error::PackError;
use crate::spec::plan::{Plan, Shows};
use crate::spec::shown_decl::MemberDecl;
use crate::spec::types::{Case, Kind, Member, Selector, Type};

fn error(at: impl Into<String>, what: impl Into<String>) -> PackError {
    PackError::Declaration {
        at: at.into(),
        what: what.into(),
    }
}

/// Apply `formats` (struct name → member path → declaration) to `d`.
pub(super) fn apply(
    d: &mut Description,
    formats: &BTreeMap<String, BTreeMap<String, MemberDecl>>,
) -> Result<(), PackError> {
    for (name, members) in formats {
        let at = format!("formats.{name}");
        let mut found = 0;
        for ty in types_mut(d) {
            found += apply_to(ty, name, members, &at)?;
        }
        if found == 0 {
            let mut names = Vec::new();
            for ty in types_mut(d) {
                struct_names(ty, &mut names);
            }
            names.sort();
            names.dedup();
            return Err(error(
                at,
                format!(
                    "no struct `{name}` in an event or a map (structs: {})",
                    names.join(", ")
                ),
            ));
        }
    }
    check_fit(d)
}

/// The types formats may apply to: each event's, and each map's key and value.
fn types_mut(d: &mut Description) -> Vec<&mut Type> {
    let events = d.events.iter_mut().map(|e| &mut e.ty);
    let maps = d
        .maps
        .iter_mut()
        .flat_map(|m| [m.key.as_mut(), m.value.as_mut()])
        .flatten();
    events.chain(maps).collect()
}

/// `struct event` and `event` (a typedef) are both named `event`.
fn struct_name(ty: &Type) -> Option<&str> {
    matches!(ty.kind, Kind::Struct { .. } | Kind::Union { .. })
        .then(|| ty.c.strip_prefix("struct ").unwrap_or(&ty.c))
}

fn struct_names(ty: &Type, out: &mut Vec<String>) {
    if let Some(name) = struct_name(ty).filter(|n| !n.contains('<')) {
        out.push(format!("`{name}`"));
    }
    match &ty.kind {
        Kind::Struct { members, .. } | Kind::Union { members, .. } => {
            for m in members {
                struct_names(&m.ty, out);
            }
        }
        Kind::Array { elem, .. } => struct_names(elem, out),
        _ => {}
    }
}

/// Apply the declarations to every struct called `name` within `ty`; how many there were.
fn apply_to(
    ty: &mut Type,
    name: &str,
    decls: &BTreeMap<String, MemberDecl>,
    at: &str,
) -> Result<usize, PackError> {
    let mut found = 0;
    if struct_name(ty) == Some(name) {
        for (path, decl) in decls {
            declare(ty, path, decl, &format!("{at}.{path}"))?;
        }
        found += 1;
    }
    match &mut ty.kind {
        Kind::Struct { members, .. } | Kind::Union { members, .. } => {
            for m in members {
                found += apply_to(&mut m.ty, name, decls, at)?;
            }
        }
        Kind::Array { elem, .. } => found += apply_to(elem, name, decls, at)?,
        _ => {}
    }
    Ok(found)
}

/// The members of a struct or union, with those of its anonymous members, by name.
fn member_names(ty: &Type) -> Vec<String> {
    let mut out = Vec::new();
    if let Kind::Struct { members, .. } | Kind::Union { members, .. } = &ty.kind {
        for m in members {
            if m.name.is_empty() {
                out.extend(member_names(&m.ty));
            } else {
                out.push(m.name.clone());
            }
        }
    }
    out
}

/// The struct holding member `name` of `ty` (`ty` itself, or one of its anonymous
/// members, whose members read as its own), and its index there.
fn holder<'t>(ty: &'t mut Type, name: &str) -> Option<(&'t mut Vec<Member>, usize)> {
    let (Kind::Struct { members, .. } | Kind::Union { members, .. }) = &mut ty.kind else {
        return None;
    };
    if let Some(i) = members.iter().position(|m| m.name == name) {
        return Some((members, i));
    }
    let anonymous = members
        .iter()
        .position(|m| m.name.is_empty() && !member_names(&m.ty).iter().all(|n| n != name))?;
    holder(&mut members[anonymous].ty, name)
}

/// Declare member `path` (`a.b.c`) of struct `ty` shown as `decl`.
fn declare(ty: &mut Type, path: &str, decl: &MemberDecl, at: &str) -> Result<(), PackError> {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let names = member_names(ty).join(", ");
    let c = ty.c.clone();
    let Some((members, i)) = holder(ty, head) else {
        return Err(error(
            at,
            format!("no member `{head}` in `{c}` (members: {names})"),
        ));
    };
    if let Some(rest) = rest {
        return declare(&mut members[i].ty, rest, decl, at);
    }
    let selector = match &decl.union {
        Some(by) => Some(selector(members, i, by, &decl.cases).map_err(|e| error(at, e))?),
        None => None,
    };
    let m = &mut members[i];
    let mut shown = m.shown.clone().unwrap_or_default();
    if decl.format.is_some() {
        shown.format.clone_from(&decl.format);
        shown.on_request = decl.on_request;
    }
    shown.hidden |= decl.hide;
    if selector.is_some() {
        shown.selected_by = selector;
    }
    m.shown = Some(shown);
    Ok(())
}

/// How union `members[i]` is selected by its sibling `by`: the `cases`, each a value (an
/// enumerator of `by`'s enum, or a number) and a union member; with none, the enumerators
/// named as union members are (ignoring case).
fn selector(
    members: &[Member],
    i: usize,
    by: &str,
    cases: &BTreeMap<String, String>,
) -> Result<Selector, String> {
    let union = &members[i];
    let Kind::Union { members: arms, .. } = &union.ty.kind else {
        return Err(format!(
            "`{}` is no union (it is `{}`)",
            union.name, union.ty.c
        ));
    };
    let arm_names: Vec<&str> = arms.iter().map(|a| a.name.as_str()).collect();
    let disc = members
        .iter()
        .find(|m| m.name == by)
        .ok_or_else(|| format!("no member `{by}` in the same struct to select by"))?;
    let enumerators: Vec<(String, i128)> = match &disc.ty.kind {
        Kind::Enum { values, .. } => values.iter().map(|v| (v.name.clone(), v.value)).collect(),
        Kind::Int { .. } | Kind::Char { .. } => Vec::new(),
        _ => return Err(format!("`{by}` is no integer or enum to select by")),
    };
    let mut out = Vec::new();
    if cases.is_empty() {
        for (name, value) in &enumerators {
            if let Some(arm) = arm_names.iter().find(|a| a.eq_ignore_ascii_case(name)) {
                out.push(Case {
                    value: *value,
                    member: arm.to_string(),
                });
            }
        }
        if out.is_empty() {
            return Err(format!(
                "no enumerator of `{by}` is named as a member of `{}` ({}): say which selects which in `cases`",
                union.name,
                arm_names.join(", ")
            ));
        }
    }
    for (key, arm) in cases {
        let value = match enumerators.iter().find(|(n, _)| n == key) {
            Some((_, v)) => *v,
            None => key
                .parse::<i128>()
                .map_err(|_| format!("case `{key}` is no enumerator of `{by}` and no number"))?,
        };
        if !arm_names.contains(&arm.as_str()) {
            return Err(format!(
                "case `{key}`: no member `{arm}` in `{}` (members: {})",
                union.name,
                arm_names.join(", ")
            ));
        }
        out.push(Case {
            value,
            member: arm.clone(),
        });
    }
    Ok(Selector {
        member: by.to_string(),
        cases: out,
    })
}

/// Every format fits its member: the types compile, formats on request included.
fn check_fit(d: &Description) -> Result<(), PackError> {
    let shows = Shows { names: true };
    let events = d
        .events
        .iter()
        .map(|e| (&e.ty, format!("event `{}`", e.map)));
    let maps = d.maps.iter().flat_map(|m| {
        [(&m.key, "key"), (&m.value, "value")]
            .into_iter()
            .filter_map(move |(ty, part)| Some((ty.as_ref()?, format!("map `{}` {part}", m.name))))
    });
    for (ty, what) in events.chain(maps).filter(|(ty, _)| has_shown(ty)) {
        if let Err(e) = Plan::compile_showing(ty, shows) {
            return Err(error("formats", format!("{what}: {e}")));
        }
    }
    Ok(())
}

/// Whether a member of `ty`, at any depth, has a declared way of being shown.
fn has_shown(ty: &Type) -> bool {
    match &ty.kind {
        Kind::Struct { members, .. } | Kind::Union { members, .. } => members
            .iter()
            .any(|m| m.shown.is_some() || has_shown(&m.ty)),
        Kind::Array { elem, .. } => has_shown(elem),
        _ => false,
    }
}
