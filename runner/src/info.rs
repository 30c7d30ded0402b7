//! `runner info`: what a package contains, for a person to read.

use std::fmt::Write as _;

use crate::spec::package::{serde_name, Flag, Package};
use crate::spec::types::{Kind, Member, Type};

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
        let _ = writeln!(
            out,
            "{:indent$}{place:<10}  {name:<16} {} ({})",
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

    let _ = writeln!(out, "\nGlobals:");
    for g in &pkg.globals {
        let flag = match &g.flag {
            Flag::Name(name) => format!("--{name}"),
            Flag::None(_) => "(no flag)".into(),
        };
        let _ = writeln!(
            out,
            "  {flag:<20} {} ({}), default {}, {}+{} ({} bytes)",
            g.ty.c,
            g.ty.summary(),
            g.default,
            g.section,
            g.offset,
            g.size
        );
        if !g.help.is_empty() {
            let _ = writeln!(out, "  {:<20} {}", "", g.help);
        }
        if let Flag::None(why) = &g.flag {
            let _ = writeln!(out, "  {:<20} {}: {why}", "", g.name);
        }
    }

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
        let _ = writeln!(out, "    {:<10}  {:<16} TYPE", " OFF SIZE", "NAME");
        if let Kind::Struct { members: m, .. } | Kind::Union { members: m, .. } = &e.ty.kind {
            members(&mut out, m, 4);
        }
    }

    let _ = writeln!(out, "\nMaps:");
    let _ = writeln!(
        out,
        "  {:<16} {:<18} {:>6} {:>6} {:>10}",
        "NAME", "TYPE", "KEY", "VALUE", "MAX"
    );
    for m in &pkg.maps {
        let _ = writeln!(
            out,
            "  {:<16} {:<18} {:>6} {:>6} {:>10}",
            m.name,
            m.kind.name(),
            m.key_size,
            m.value_size,
            m.max_entries
        );
    }

    let _ = writeln!(out, "\nPrograms:");
    for p in &pkg.programs {
        let when = match &p.when {
            Some(c) => format!("  (only when {} = {})", c.global, c.equals),
            None => String::new(),
        };
        let target = if p.attach.target.is_empty() {
            "(given at run time)"
        } else {
            &p.attach.target
        };
        let _ = writeln!(
            out,
            "  {:<16} {} {target}{when}",
            p.name,
            serde_name(&p.attach.kind)
        );
    }
    out
}
