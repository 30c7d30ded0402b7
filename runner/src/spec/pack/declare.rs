//! A sidecar's declarations applied to what the object says: each name it uses is checked
//! against the object (globals, programs, maps, and the flags conditions may name), each
//! value against the type it is for, and the description gains what the front end of the
//! program would have done: switches, package defaults, hidden and implied globals,
//! program conditions, optional programs, alternative groups, uprobe targets, map sizes,
//! views and units, counters of events for `--metrics`, and how members are shown
//! (`formats`). An error names the place in the sidecar (`programs.optional[2]`).

use serde_json::Value;

use super::description::Description;
use super::error::PackError;
use super::metrics;
use super::shown;
use crate::spec::flags::{self, RUNNER_OPTIONS};
use crate::spec::mapview;
use crate::spec::package::{AttachKind, Condition, Flag, Implied, Switch};
use crate::spec::plan::Plan;
use crate::spec::sidecar::{GlobalDecl, Sidecar};
use crate::spec::types::{Kind, Type};
use crate::spec::value::json_value;

fn error(at: impl Into<String>, what: impl Into<String>) -> PackError {
    PackError::Declaration {
        at: at.into(),
        what: what.into(),
    }
}

/// `a`, `b`, `c` for an error, or `none`.
fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Apply `sidecar` to `d`, checking every name and value against the object.
pub(super) fn apply(d: &mut Description, sidecar: &Sidecar) -> Result<(), PackError> {
    switches(d, sidecar)?;
    for (name, decl) in &sidecar.globals {
        global(d, name, decl)?;
    }
    programs(d, sidecar)?;
    maps(d, sidecar)?;
    metrics::declare(&mut d.events, &sidecar.metrics)?;
    shown::apply(d, &sidecar.formats)
}

fn switches(d: &mut Description, sidecar: &Sidecar) -> Result<(), PackError> {
    for (name, decl) in &sidecar.flags {
        let at = format!("flags.{name}");
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(error(at, "a flag's name is letters, digits and `_`"));
        }
        let (long, alias) = flags::spellings(name);
        let clash = |other: &str| {
            let (o_long, o_alias) = flags::spellings(other);
            [Some(&long), alias.as_ref()]
                .into_iter()
                .flatten()
                .any(|s| *s == o_long || Some(s) == o_alias.as_ref())
        };
        if let Some(g) = d.globals.iter().find(|g| clash(&g.name)) {
            return Err(error(
                at,
                format!("global `{}` has that name; use the global", g.name),
            ));
        }
        if RUNNER_OPTIONS.iter().any(|o| clash(o)) {
            return Err(error(
                at,
                format!("--{long} is an option of the runner itself"),
            ));
        }
        d.switches.push(Switch {
            name: name.clone(),
            help: decl.help.clone(),
        });
    }
    Ok(())
}

/// The text form of a JSON value, as a flag would take it.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `value` as global `ty` stores it, decoded back (so `"LEVEL_MID"` and `1` read the same).
fn normalize(ty: &Type, value: &Value) -> Result<Value, String> {
    let bytes = flags::encode(ty, &value_text(value))?;
    let plan = Plan::compile(ty).map_err(|e| e.to_string())?;
    Ok(json_value(&plan, &bytes))
}

fn global(d: &mut Description, name: &str, decl: &GlobalDecl) -> Result<(), PackError> {
    let at = format!("globals.{name}");
    let names = list(d.globals.iter().map(|g| g.name.as_str()));
    let index = d
        .globals
        .iter()
        .position(|g| g.name == name)
        .ok_or_else(|| error(&at, format!("no global `{name}` (globals: {names})")))?;
    let mut implies = Vec::new();
    for (target, value) in &decl.implies {
        let Some(other) = d.globals.iter().find(|g| &g.name == target) else {
            return Err(error(
                format!("{at}.implies.{target}"),
                format!("no global `{target}` (globals: {names})"),
            ));
        };
        let value =
            normalize(&other.ty, value).map_err(|e| error(format!("{at}.implies.{target}"), e))?;
        implies.push(Implied {
            global: target.clone(),
            value,
        });
    }
    let g = &mut d.globals[index];
    if let Some(help) = &decl.help {
        g.help = help.clone();
    }
    if let Some(why) = &decl.hide {
        if why.trim().is_empty() {
            return Err(error(
                format!("{at}.hide"),
                "say why the global has no flag",
            ));
        }
        g.flag = Flag::None(why.clone());
    }
    if !implies.is_empty() && !matches!(g.flag, Flag::Name(_)) {
        return Err(error(
            format!("{at}.implies"),
            format!("global `{name}` has no flag, so nothing sets it"),
        ));
    }
    g.implies = implies;
    if let Some(value) = &decl.default {
        let value = normalize(&g.ty, value).map_err(|e| error(format!("{at}.default"), e))?;
        if value != g.default {
            g.compiled = Some(std::mem::replace(&mut g.default, value));
        }
    }
    Ok(())
}

/// Whether `name` is a flag a condition may test: a bool global or a switch.
fn is_condition_flag(d: &Description, name: &str) -> bool {
    d.switches.iter().any(|s| s.name == name)
        || d.globals
            .iter()
            .any(|g| g.name == name && matches!(g.ty.kind, Kind::Bool { .. }))
}

fn check_flag(d: &Description, at: &str, name: &str) -> Result<(), PackError> {
    if is_condition_flag(d, name) {
        return Ok(());
    }
    let flags = list(
        d.globals
            .iter()
            .filter(|g| matches!(g.ty.kind, Kind::Bool { .. }))
            .map(|g| g.name.as_str())
            .chain(d.switches.iter().map(|s| s.name.as_str())),
    );
    Err(error(
        at,
        format!("`{name}` is no bool global and no switch declared under `flags` (flags: {flags})"),
    ))
}

fn program_index(d: &Description, at: &str, name: &str) -> Result<usize, PackError> {
    d.programs
        .iter()
        .position(|p| p.name == name)
        .ok_or_else(|| {
            let names = list(d.programs.iter().map(|p| p.name.as_str()));
            error(at, format!("no program `{name}` (programs: {names})"))
        })
}

fn programs(d: &mut Description, sidecar: &Sidecar) -> Result<(), PackError> {
    let decl = &sidecar.programs;
    let mut grouped: Vec<&str> = Vec::new();
    for (i, group) in decl.groups.iter().enumerate() {
        if group.len() < 2 {
            return Err(error(
                format!("programs.groups[{i}]"),
                "a group holds at least two alternatives",
            ));
        }
        for (j, name) in group.iter().enumerate() {
            let at = format!("programs.groups[{i}][{j}]");
            program_index(d, &at, name)?;
            if grouped.contains(&name.as_str()) {
                return Err(error(at, format!("program `{name}` is in two groups")));
            }
            grouped.push(name);
        }
    }
    for (i, name) in decl.optional.iter().enumerate() {
        let index = program_index(d, &format!("programs.optional[{i}]"), name)?;
        d.programs[index].optional = true;
    }
    let conditions = (decl.when.iter().map(|(p, f)| ("if", p, f, true)))
        .chain(decl.unless.iter().map(|(p, f)| ("unless", p, f, false)));
    for (key, program, flag, equals) in conditions {
        let at = format!("programs.{key}.{program}");
        let index = program_index(d, &at, program)?;
        check_flag(d, &at, flag)?;
        if let Some(had) = &d.programs[index].when {
            return Err(error(
                at,
                format!(
                    "program `{program}` already loads only when `{}` is {}",
                    had.global, had.equals
                ),
            ));
        }
        d.programs[index].when = Some(Condition {
            global: flag.clone(),
            equals,
        });
    }
    for (program, targets) in &decl.attach {
        let at = format!("programs.attach.{program}");
        let index = program_index(d, &at, program)?;
        let p = &mut d.programs[index];
        if !matches!(p.attach.kind, AttachKind::Uprobe | AttachKind::Uretprobe) {
            return Err(error(at, format!("program `{program}` is no uprobe")));
        }
        for (i, target) in targets.iter().enumerate() {
            if !matches!(target.rsplit_once(':'), Some((b, f)) if !b.is_empty() && !f.is_empty()) {
                return Err(error(format!("{at}[{i}]"), "expected BINARY:FUNCTION"));
            }
        }
        p.targets = targets.clone();
    }
    Ok(())
}

fn maps(d: &mut Description, sidecar: &Sidecar) -> Result<(), PackError> {
    for (name, decl) in &sidecar.maps {
        let at = format!("maps.{name}");
        let Some(index) = d.maps.iter().position(|m| &m.name == name) else {
            let names = list(d.maps.iter().map(|m| m.name.as_str()));
            return Err(error(at, format!("no map `{name}` (maps: {names})")));
        };
        if let Some(size) = &decl.max_entries {
            for flag in size.flags() {
                check_flag(d, &format!("{at}.max_entries"), flag)?;
            }
            d.maps[index].size = Some(size.clone());
        }
        if let Some(unit) = &decl.unit {
            d.maps[index].unit = Some(unit.clone());
        }
        if let Some(view) = decl.view {
            mapview::fits(&d.maps[index], view)
                .map_err(|e| error(format!("{at}.view"), e.to_string()))?;
            d.maps[index].view = Some(view);
        }
    }
    Ok(())
}
