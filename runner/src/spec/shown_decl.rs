//! The sidecar's `formats`: how the members of a struct are shown, for a program whose
//! source one cannot edit (what `runner:format=` tags say in a source one can).
//!
//! ```json
//! "formats": {
//!   "event": {
//!     "ret": "errno",                       a format
//!     "sig": {"names": "signal"},           a format shown with --names only
//!     "ts": "hide",                         not shown
//!     "fname.depth": "hide",                a member of a nested struct
//!     "arg": {"union": "op",                a union: only the member `op` selects
//!             "cases": {"MOUNT": "mount", "UMOUNT": "umount", "7": "fsopen"}}
//!   }
//! }
//! ```
//!
//! Structs are named as C names them (`event` for `struct event`, or a typedef's name),
//! and the declarations apply wherever that struct appears: an event, a map's key or
//! value, a member of another struct. `spec::pack` checks every name against the object.

use std::collections::BTreeMap;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::spec::vocab::ValueFormat;

/// How one member is shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberDecl {
    pub format: Option<ValueFormat>,
    /// The format only with `--names`.
    pub on_request: bool,
    pub hide: bool,
    /// For a union: the member of the same struct whose value selects which of its
    /// members is shown.
    pub union: Option<String>,
    /// Discriminant value (an enumerator's name or a number) → union member; none: the
    /// enumerators of the discriminant whose names are those of union members, ignoring
    /// case (`MOUNT` selects `mount`).
    pub cases: BTreeMap<String, String>,
}

/// The object form, as written: unknown keys are reported by the sidecar's strict reader.
#[derive(Deserialize)]
struct Spelled {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    names: Option<String>,
    #[serde(default)]
    hide: bool,
    #[serde(default)]
    union: Option<String>,
    #[serde(default)]
    cases: BTreeMap<String, String>,
}

fn parse_format<E: de::Error>(text: &str) -> Result<ValueFormat, E> {
    ValueFormat::parse(text).map_err(|e| E::custom(e.to_string()))
}

impl MemberDecl {
    fn from_spelled<E: de::Error>(s: Spelled) -> Result<MemberDecl, E> {
        let mut decl = MemberDecl {
            hide: s.hide,
            union: s.union,
            cases: s.cases,
            ..MemberDecl::default()
        };
        match (s.format, s.names) {
            (Some(_), Some(_)) => return Err(E::custom("`format` or `names`, not both")),
            (Some(f), None) => decl.format = Some(parse_format(&f)?),
            (None, Some(f)) => {
                let format: ValueFormat = parse_format(&f)?;
                if !format.names() {
                    return Err(E::custom(format!(
                        "`{format}` shows no names, so it is shown always: use `format`"
                    )));
                }
                decl.format = Some(format);
                decl.on_request = true;
            }
            (None, None) => {}
        }
        if !decl.cases.is_empty() && decl.union.is_none() {
            return Err(E::custom("`cases` go with `union`"));
        }
        if decl == MemberDecl::default() {
            return Err(E::custom(
                "say how the member is shown: `format`, `names`, `hide` or `union`",
            ));
        }
        Ok(decl)
    }
}

struct DeclVisitor;

impl<'de> Visitor<'de> for DeclVisitor {
    type Value = MemberDecl;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a format, \"hide\", or an object with `format`, `names`, `hide` or `union`")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<MemberDecl, E> {
        if text == "hide" {
            return Ok(MemberDecl {
                hide: true,
                ..MemberDecl::default()
            });
        }
        Ok(MemberDecl {
            format: Some(parse_format(text)?),
            ..MemberDecl::default()
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MemberDecl, A::Error> {
        let spelled = Spelled::deserialize(de::value::MapAccessDeserializer::new(map))?;
        MemberDecl::from_spelled(spelled)
    }
}

impl<'de> Deserialize<'de> for MemberDecl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MemberDecl, D::Error> {
        d.deserialize_any(DeclVisitor)
    }
}

impl Serialize for MemberDecl {
    /// The shortest spelling that says the same: `"errno"`, `"hide"`, or the object.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let only = |d: &MemberDecl| d == self;
        if let Some(f) = &self.format {
            if only(&MemberDecl {
                format: Some(f.clone()),
                ..MemberDecl::default()
            }) {
                return s.collect_str(f);
            }
        }
        if only(&MemberDecl {
            hide: true,
            ..MemberDecl::default()
        }) {
            return s.serialize_str("hide");
        }
        let mut map = s.serialize_map(None)?;
        match (&self.format, self.on_request) {
            (Some(f), true) => map.serialize_entry("names", &f.to_string())?,
            (Some(f), false) => map.serialize_entry("format", &f.to_string())?,
            (None, _) => {}
        }
        if self.hide {
            map.serialize_entry("hide", &true)?;
        }
        if let Some(by) = &self.union {
            map.serialize_entry("union", by)?;
        }
        if !self.cases.is_empty() {
            map.serialize_entry("cases", &self.cases)?;
        }
        map.end()
    }
}

/// In a package's declarations, a format this runner does not know (a newer runner's)
/// is presentation it can do without: drop it, and a member left declaring nothing, so
/// the rest still applies.
pub fn drop_unknown_formats(formats: &mut serde_json::Value) {
    use serde_json::Value;
    let known = |v: &Value| v.as_str().is_some_and(|f| ValueFormat::parse(f).is_ok());
    let Some(structs) = formats.as_object_mut() else {
        return;
    };
    for members in structs.values_mut().filter_map(Value::as_object_mut) {
        members.retain(|_, decl| match decl {
            Value::String(s) => s == "hide" || known(decl),
            Value::Object(o) => {
                o.retain(|k, v| !matches!(k.as_str(), "format" | "names") || known(v));
                !o.is_empty()
            }
            _ => true,
        });
    }
}

/// The keys of a member's object form, for the sidecar's error about an unknown one.
pub const MEMBER_KEYS: &[&str] = &["format", "names", "hide", "union", "cases"];

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MemberDecl, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn spellings_round_trip() {
        for text in [
            r#""errno""#,
            r#""hide""#,
            r#""duration:ns:ms""#,
            r#"{"names":"signal"}"#,
            r#"{"union":"op","cases":{"MOUNT":"mount"}}"#,
            r#"{"format":"hex","hide":true}"#,
        ] {
            let decl = parse(text).unwrap();
            assert_eq!(serde_json::to_string(&decl).unwrap(), text);
        }
        assert_eq!(
            parse(r#"{"format":"errno"}"#).unwrap(),
            parse(r#""errno""#).unwrap()
        );
    }

    #[test]
    fn a_newer_runners_format_is_dropped_from_a_package() {
        let mut formats = serde_json::json!({"event": {
            "ret": "errno", "ips": "ksym", "sig": {"names": "signal"},
            "x": {"format": "color", "hide": true}, "y": {"names": "color"}, "ts": "hide"}});
        drop_unknown_formats(&mut formats);
        assert_eq!(
            formats,
            serde_json::json!({"event": {"ret": "errno", "sig": {"names": "signal"},
                "x": {"hide": true}, "ts": "hide"}})
        );
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        assert!(parse(r#""erno""#)
            .unwrap_err()
            .starts_with("unknown format `erno`; valid ones: errno, signal"));
        assert!(parse(r#"{"names":"hex"}"#)
            .unwrap_err()
            .starts_with("`hex` shows no names"));
        assert!(parse(r#"{"format":"errno","names":"errno"}"#)
            .unwrap_err()
            .starts_with("`format` or `names`, not both"));
        assert!(parse(r#"{"cases":{"1":"a"}}"#)
            .unwrap_err()
            .starts_with("`cases` go with `union`"));
        assert!(parse("{}")
            .unwrap_err()
            .starts_with("say how the member is shown"));
        assert!(parse("3")
            .unwrap_err()
            .contains("a format, \"hide\", or an object"));
    }
}
