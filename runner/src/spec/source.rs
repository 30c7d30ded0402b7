//! What only the C source knows: the author's comments. The comment right above a global
//! (or at the end of its line) becomes its flag's help; the first of the comments leading
//! the file (before any code) that is not a license line becomes the package's description.

/// The comment documenting the top-level declaration of `name`, joined into one line.
pub fn global_comment(source: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = source.lines().collect();
    let at = lines.iter().position(|line| declares(line, name))?;
    if let Some(trailing) = trailing_comment(lines[at]) {
        return Some(trailing);
    }
    comment_above(&lines[..at])
}

/// The first paragraph of the first comment leading the file (before its first line of
/// code) that is not an SPDX or copyright line.
pub fn description(source: &str) -> Option<String> {
    let lines: Vec<&str> = source.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let block = if line.starts_with("/*") {
            let end = (i..lines.len()).find(|&j| lines[j].contains("*/"))?;
            let text = first_paragraph(&lines[i..=end]);
            i = end + 1;
            text
        } else if line.starts_with("//") {
            let end = (i..lines.len())
                .take_while(|&j| lines[j].trim().starts_with("//"))
                .last()
                .unwrap_or(i);
            let text = first_paragraph(&lines[i..=end]);
            i = end + 1;
            text
        } else if line.is_empty() {
            i += 1;
            continue;
        } else {
            // Code: only the comments that lead the file describe it.
            return None;
        };
        let lower = block.to_ascii_lowercase();
        if !block.is_empty() && !lower.starts_with("spdx") && !lower.starts_with("copyright") {
            return Some(block);
        }
    }
    None
}

/// Whether `line` is a top-level declaration of `name` (starts in column 0, names it as a
/// whole word, and declares rather than calls: `=`, `;`, `[` or an attribute follows).
fn declares(line: &str, name: &str) -> bool {
    if line.starts_with(|c: char| c.is_whitespace() || c == '#' || c == '/' || c == '*') {
        return false;
    }
    let code = line.split("//").next().unwrap_or(line);
    let mut from = 0;
    while let Some(pos) = code[from..].find(name) {
        let start = from + pos;
        let end = start + name.len();
        let before = code[..start].chars().next_back();
        let after = code[end..].trim_start().chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let whole_word =
            !word(before) && !code[end..].starts_with(|c: char| c.is_alphanumeric() || c == '_');
        if whole_word && matches!(after, Some('=' | ';' | '[' | '_' | 'S') | None) {
            return true;
        }
        from = end;
    }
    false
}

fn trailing_comment(line: &str) -> Option<String> {
    let code_end = line.find(';')?;
    let rest = line[code_end + 1..].trim();
    if rest.starts_with("/*") || rest.starts_with("//") {
        let text = clean(&[rest]);
        return (!text.is_empty()).then_some(text);
    }
    None
}

fn comment_above(lines: &[&str]) -> Option<String> {
    let last = lines.len().checked_sub(1)?;
    let line = lines[last].trim();
    if line.ends_with("*/") {
        let start = (0..=last).rev().find(|&j| lines[j].contains("/*"))?;
        // A comment that ends another declaration's line is that declaration's.
        if !lines[start].trim_start().starts_with("/*") {
            return None;
        }
        let text = clean(&lines[start..=last]);
        return (!text.is_empty()).then_some(text);
    }
    if line.starts_with("//") {
        let start = (0..=last)
            .rev()
            .take_while(|&j| lines[j].trim().starts_with("//"))
            .last()
            .unwrap_or(last);
        let text = clean(&lines[start..=last]);
        return (!text.is_empty()).then_some(text);
    }
    None
}

/// The comment's lines up to its first blank line, cleaned.
fn first_paragraph(lines: &[&str]) -> String {
    let mut end = lines.len();
    let mut started = false;
    for (i, line) in lines.iter().enumerate() {
        let blank = clean(&[line]).is_empty();
        if blank && started {
            end = i;
            break;
        }
        started |= !blank;
    }
    clean(&lines[..end])
}

/// Strip comment markers and leading `*`, and join the words with single spaces.
fn clean(lines: &[&str]) -> String {
    let mut words = Vec::new();
    for line in lines {
        let mut s = line.trim();
        for marker in ["/**", "/*", "//"] {
            if let Some(rest) = s.strip_prefix(marker) {
                s = rest;
                break;
            }
        }
        if let Some(rest) = s.strip_suffix("*/") {
            s = rest;
        }
        let s = s.trim().trim_start_matches('*');
        words.extend(s.split_whitespace());
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "// SPDX-License-Identifier: GPL-2.0\n\
/* sigsnoop: trace signals\n * sent by kill\n *\n * More.\n */\n\
#include \"vmlinux.h\"\n\
\n\
/* only signals sent by this process (0: any) */\n\
const volatile pid_t filtered_pid = 0;\n\
// only this signal\n\
// (0: any)\n\
const volatile int target_signal;\n\
const volatile bool failed_only = false; /* only failures */\n\
__u64 lost __attribute__((btf_decl_tag(\"x\")));\n\
int f(void) { return filtered_pid; }\n";

    #[test]
    fn comment_above_a_global() {
        assert_eq!(
            global_comment(SRC, "filtered_pid").as_deref(),
            Some("only signals sent by this process (0: any)")
        );
        assert_eq!(
            global_comment(SRC, "target_signal").as_deref(),
            Some("only this signal (0: any)")
        );
    }

    #[test]
    fn trailing_comment_wins() {
        assert_eq!(
            global_comment(SRC, "failed_only").as_deref(),
            Some("only failures")
        );
    }

    #[test]
    fn undocumented_or_missing() {
        assert_eq!(global_comment(SRC, "lost"), None);
        assert_eq!(global_comment(SRC, "nope"), None);
        // A use inside a function is not a declaration.
        assert_eq!(
            global_comment("x;\nint g(void) { return pid; }\n", "pid"),
            None
        );
    }

    #[test]
    fn description_is_a_leading_comment_only() {
        let late = "// SPDX-License-Identifier: GPL-2.0\n// Copyright (c) 2020 Someone\n#include <vmlinux.h>\n/* filters */\nint f(void)\n{\n\t/* inside a function */\n}\n";
        assert_eq!(description(late), None);
        let second = "// SPDX-License-Identifier: GPL-2.0\n\n/* mytool: what it does */\n#include <vmlinux.h>\n";
        assert_eq!(description(second).as_deref(), Some("mytool: what it does"));
    }

    #[test]
    fn description_skips_license() {
        assert_eq!(
            description(SRC).as_deref(),
            Some("sigsnoop: trace signals sent by kill")
        );
    }
}
