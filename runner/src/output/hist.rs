//! Histograms as text, drawn exactly as bcc's libbpf-tools draw them (`print_log2_hist`
//! and `print_linear_hist` in `trace_helpers.c`), and the line that names each one. The
//! table format prints these; so would any text format.

use std::io::Write as _;

use super::clock::Ktime;
use super::model::{Hist, Histograms, Scale};
use super::text::cell;
use crate::spec::plan::Node;

/// The header's word when the package does not say what the slots count.
const NO_UNIT: &str = "value";

/// One histogram: nothing when every slot is zero (as bcc).
pub(super) fn draw(scale: Scale, slots: &[u64], unit: Option<&str>, out: &mut Vec<u8>) {
    let unit = unit.unwrap_or(NO_UNIT);
    match scale {
        Scale::Log2 => draw_log2(slots, unit, out),
        Scale::Linear => draw_linear(slots, unit, out),
    }
}

/// `|*****     |`: `count` of `max` as `width` stars, padded with spaces.
fn bar(count: u64, max: u64, width: usize, out: &mut Vec<u8>) {
    let stars = (u128::from(count.min(max)) * width as u128 / u128::from(max.max(1))) as usize;
    out.push(b'|');
    out.resize(out.len() + stars, b'*');
    out.resize(out.len() + width - stars, b' ');
    out.extend_from_slice(b"|\n");
}

/// `     usecs               : count    distribution`, then `low -> high : count |***|`
/// for every slot up to the last used one; wider columns and half the stars past slot 32.
fn draw_log2(slots: &[u64], unit: &str, out: &mut Vec<u8>) {
    let Some(last) = slots.iter().rposition(|&c| c > 0) else {
        return;
    };
    let max = slots.iter().copied().max().unwrap_or(1);
    let narrow = last <= 32;
    let (indent, label, width, stars) = if narrow {
        (5, 19, 10, 40)
    } else {
        (15, 29, 20, 20)
    };
    let _ = writeln!(out, "{:indent$}{unit:<label$} : count    distribution", "");
    for (i, &count) in slots[..=last].iter().enumerate() {
        let (low, high) = Scale::Log2.bounds(i);
        let _ = write!(out, "{low:>width$} -> {high:<width$} : {count:<8} ");
        bar(count, max, stars, out);
    }
}

/// `     usecs         : count     distribution`, then `value : count |***|` for every
/// slot that counted something, from the first to the last.
fn draw_linear(slots: &[u64], unit: &str, out: &mut Vec<u8>) {
    let max = slots.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return;
    }
    let _ = writeln!(out, "     {unit:<13} : count     distribution");
    for (i, &count) in slots.iter().enumerate().filter(|(_, &c)| c > 0) {
        let (value, _) = Scale::Linear.bounds(i);
        let _ = write!(out, "        {value:<10} : {count:<8} ");
        bar(count, max, 40, out);
    }
}

/// `name = value` for each field of a struct read by `node`, or `fallback = value`.
fn named(node: &Node, bytes: &[u8], fallback: &str, ktime: &Ktime, parts: &mut Vec<String>) {
    match node {
        Node::Record { fields } if !fields.is_empty() => {
            for (name, field) in fields {
                let value = cell(ktime, |s| field.visit(bytes, 0, s));
                parts.push(format!("{name} = {value}"));
            }
        }
        other => parts.push(format!(
            "{fallback} = {}",
            cell(ktime, |s| other.visit(bytes, 0, s))
        )),
    }
}

/// The line above a histogram: its key and labels, bcc style (`key = 42, comm = bash`);
/// none for the one histogram of a map keyed by slot.
pub(super) fn label(h: &Histograms, hist: &Hist) -> Option<String> {
    let key = hist.key.as_ref()?;
    let mut parts = Vec::new();
    named(&h.key.root, key, "key", &h.at.ktime, &mut parts);
    for (name, node) in h.labels {
        parts.push(format!(
            "{name} = {}",
            cell(&h.at.ktime, |s| node.visit(&hist.value, 0, s))
        ));
    }
    Some(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn log2_as_bcc_prints_it() {
        let out = text(|o| draw(Scale::Log2, &[1, 0, 4, 2, 0], Some("usecs"), o));
        assert_eq!(
            out,
            "     usecs               : count    distribution\n\
             \x20        0 -> 1          : 1        |**********                              |\n\
             \x20        2 -> 3          : 0        |                                        |\n\
             \x20        4 -> 7          : 4        |****************************************|\n\
             \x20        8 -> 15         : 2        |********************                    |\n"
        );
        // Nothing at all when nothing was counted.
        assert_eq!(text(|o| draw(Scale::Log2, &[0, 0], None, o)), "");
    }

    #[test]
    fn log2_past_slot_32_is_wider() {
        let mut slots = vec![0u64; 34];
        slots[33] = 3;
        let out = text(|o| draw(Scale::Log2, &slots, None, o));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "               value                         : count    distribution"
        );
        assert_eq!(
            lines[34],
            "          8589934592 -> 17179869183          : 3        |********************|"
        );
    }

    #[test]
    fn linear_as_bcc_prints_it() {
        let out = text(|o| draw(Scale::Linear, &[0, 2, 0, 1], Some("msecs"), o));
        assert_eq!(
            out,
            "     msecs         : count     distribution\n\
             \x20       1          : 2        |****************************************|\n\
             \x20       3          : 1        |********************                    |\n"
        );
    }
}
