//! `runner info`: what a package contains, for a person to read.

use std::fmt::Write as _;

use crate::metrics;
use crate::spec::mapview;
use crate::spec::package::{serde_name, AttachKind, Choice, Entries, Flag, Package};
use crate::spec::types::{Kind, Member, Shown, Type};

/// `pid@0 tpid@4 comm@16[16]`: a struct's members in one line.
pub fn compact_layout(ty: &Type) -> String {
    let members = match &ty.kind {
        Kind::Struct { members, .. } | Kind::Union { members, .. } => members,
        _ => return ty.c.clone(),
    };
    let parts: Vec<String> = members
        .iter()
        .map(|m| {
            let mut s = format!(
                "{}@{}",
                if m.name.is_empty() { "<anon>" } else { &m.name },
                m.offset
            );
            if let Some(bf) = m.bitfield {
                s.push_str(&format!(":{}", bf.bits));
            }
            let mut ty = &m.ty;
            while let Kind::Array { len, elem } = &ty.kind {
                s.push_str(&format!("[{len}]"));
                ty = elem;
            }
            s
        })
        .collect();
    format!("{} (size {})", parts.join(" "), ty.size())
}

fn members(out: &mut String, members: &[Member], indent: usize) {
    for m in members {
        let name = if m.name.is_empty() {
            "<anonymous>"
        } else {
            &m.name
        };
        let place = match m.bitfield {
            Some(bf) => format!("bit {} +{}", bf.bit_offset, bf.bits),
            None => format!("{:>4} {:>4}", m.offset, m.ty.size()),
        };
        let shown = m.shown.as_ref().map(shown_note).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:indent$}{place:<10}  {name:<16} {} ({}{shown})",
            "",
            m.ty.c,
            m.ty.summary(),
            indent = indent
        );
        if let Kind::Struct { members: inner, .. } | Kind::Union { members: inner, .. } = &m.ty.kind
        {
            self::members(out, inner, indent + 4);
        }
    }
}

/// `, shown as errno`: how a member is shown, when it is declared.
fn shown_note(s: &Shown) -> String {
    let mut out = String::new();
    if s.hidden {
        out.push_str(", hidden");
    }
    match &s.format {
        Some(f) if s.on_request => out.push_str(&format!(", shown as {f} with --names")),
        Some(f) => out.push_str(&format!(", shown as {f}")),
        None => {}
    }
    if let Some(by) = &s.selected_by {
        out.push_str(&format!(", the member `{}` selects", by.member));
    }
    out
}

pub fn render(pkg: &Package) -> String {
    let mut out = String::new();
    if pkg.description.is_empty() {
        let _ = writeln!(out, "{}", pkg.name);
    } else {
        let _ = writeln!(out, "{}: {}", pkg.name, pkg.description);
    }
    let _ = writeln!(
        out,
        "license {:?}, object {} bytes, sha256 {}",
        pkg.license, pkg.object.size, pkg.object.sha256
    );

    globals(&mut out, pkg);
    switches(&mut out, pkg);
    let _ = writeln!(out, "\nEvents:");
    for e in &pkg.events {
        let _ = writeln!(
            out,
            "  map `{}` ({}) carries struct {}: {}",
            e.map,
            serde_name(&e.channel),
            e.struct_name,
            compact_layout(&e.ty)
        );
        if let Some(counter) = &e.lost_counter {
            let _ = writeln!(out, "    lost events counted in global `{counter}`");
        }
        if let Some(flag) = &e.wakeup {
            let _ = writeln!(
                out,
                "    wakes the runner only while it sleeps (global `{flag}`) or at a quarter full"
            );
        }
        let _ = writeln!(out, "    {:<10}  {:<16} TYPE", " OFF SIZE", "NAME");
        if let Kind::Struct { members: m, .. } | Kind::Union { members: m, .. } = &e.ty.kind {
            members(&mut out, m, 4);
        }
    }

    maps(pkg, &mut out);
    served_metrics(pkg, &mut out);

    let _ = writeln!(out, "\nPrograms:");
    for p in &pkg.programs {
        let mut when = match &p.when {
            Some(c) => format!("  (only when {} = {})", c.global, c.equals),
            None => String::new(),
        };
        if p.optional {
            when.push_str("  (optional: left out if it cannot load or attach)");
        }
        if !p.targets.is_empty() {
            when.push_str(&format!("  (targets: {})", p.targets.join(", ")));
        }
        let runtime = matches!(p.attach.kind, AttachKind::Uprobe | AttachKind::Uretprobe)
            && !p.attach.target.contains(':');
        let target = match p.attach.target.as_str() {
            "" => "(given at run time)".to_string(),
            function if runtime => format!("{function} (binary given at run time)"),
            target => target.to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<16} {} {target}{when}",
            p.name,
            serde_name(&p.attach.kind)
        );
    }
    groups(&mut out, pkg);
    out
}

fn globals(out: &mut String, pkg: &Package) {
    let _ = writeln!(out, "\nGlobals:");
    for g in &pkg.globals {
        let flag = match &g.flag {
            Flag::Name(name) => format!("--{name}"),
            Flag::None(_) => "(no flag)".into(),
        };
        let compiled = match &g.compiled {
            Some(c) => format!(" (the package's; compiled {c})"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  {flag:<20} {} ({}), default {}{compiled}, {}+{} ({} bytes)",
            g.ty.c,
            g.ty.summary(),
            g.default,
            g.section,
            g.offset,
            g.size
        );
        for implied in &g.implies {
            let _ = writeln!(
                out,
                "  {:<20} also sets {} = {}",
                "", implied.global, implied.value
            );
        }
        if !g.help.is_empty() {
            let _ = writeln!(out, "  {:<20} {}", "", g.help);
        }
        if let Flag::None(why) = &g.flag {
            let _ = writeln!(out, "  {:<20} {}: {why}", "", g.name);
        }
    }
}

fn switches(out: &mut String, pkg: &Package) {
    if pkg.switches.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nSwitches (flags with no global, for program conditions):"
    );
    for s in &pkg.switches {
        let _ = writeln!(out, "  {:<20} {}", format!("--{}", s.name), s.help);
    }
}

fn groups(out: &mut String, pkg: &Package) {
    if pkg.groups.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nAlternatives (of each group one loads: the first this kernel supports):"
    );
    for g in &pkg.groups {
        let why = if g.declared {
            "declared"
        } else {
            "the same event"
        };
        let _ = writeln!(out, "  {}  ({why})", g.programs.join(" | "));
    }
}

/// What `runner run --metrics` serves, with the views shown by default.
fn served_metrics(pkg: &Package, out: &mut String) {
    let views = mapview::chosen(&pkg.maps, !pkg.events.is_empty(), &[]);
    let catalog = metrics::catalog(pkg, &views);
    let _ = writeln!(
        out,
        "\nMetrics (runner run --metrics ADDR serves them at http://ADDR/metrics):"
    );
    let width = catalog
        .all()
        .map(|f| f.served().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(out, "  {:<width$}  {:<9}  LABELS", "NAME", "TYPE");
    let caps: Vec<(usize, u32)> = (catalog.counters.iter())
        .zip(pkg.events.iter().flat_map(|e| &e.metrics))
        .filter_map(|(at, m)| Some(((*at)?, m.max_series)))
        .collect();
    for (i, family) in catalog.all().enumerate() {
        let mut labels = if family.labels.is_empty() {
            "-".to_string()
        } else {
            family.labels.join(", ")
        };
        if family.kind == metrics::Kind::Histogram {
            labels.push_str(" (and le: _bucket, _count, _sum)");
        }
        if let Some((_, max)) = caps.iter().find(|(at, _)| *at == i) {
            labels.push_str(&format!(" (at most {max} series)"));
        }
        let _ = writeln!(
            out,
            "  {:<width$}  {:<9}  {labels}",
            family.served(),
            family.kind.name()
        );
    }
    for note in &catalog.notes {
        let _ = writeln!(out, "  ({note})");
    }
}

/// `pid_max if targ_per_process, else 1`.
fn size_text(size: &Choice<Entries>) -> String {
    match size {
        Choice::Is(Entries::Count(n)) => n.to_string(),
        Choice::Is(Entries::PidMax) => "pid_max".into(),
        Choice::Is(Entries::Ncpus) => "ncpus".into(),
        Choice::If {
            flag,
            then,
            otherwise,
        } => format!(
            "{} if {flag}, else {}",
            size_text(then),
            size_text(otherwise)
        ),
    }
}

/// The maps, with the view each gets when nothing is chosen at run time.
fn maps(pkg: &Package, out: &mut String) {
    let _ = writeln!(out, "\nMaps:");
    let _ = writeln!(
        out,
        "  {:<16} {:<18} {:>6} {:>6} {:>10}  VIEW",
        "NAME", "TYPE", "KEY", "VALUE", "MAX"
    );
    let shown = mapview::chosen(&pkg.maps, !pkg.events.is_empty(), &[]);
    for (i, m) in pkg.maps.iter().enumerate() {
        let view = match shown.iter().find(|(at, _)| *at == i) {
            Some((_, view)) if m.view.is_some() => view.name().to_string(),
            Some((_, view)) => format!("{} (by default)", view.name()),
            None => "-".to_string(),
        };
        let unit = m
            .unit
            .as_ref()
            .map(|u| format!(", in {u}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<16} {:<18} {:>6} {:>6} {:>10}  {view}{unit}",
            m.name,
            m.kind.name(),
            m.key_size,
            m.value_size,
            m.max_entries
        );
        if let Some(size) = &m.size {
            let _ = writeln!(out, "  {:<16} sized at run time: {}", "", size_text(size));
        }
    }
}
