//! Reading a package's JSON strictly: bounded in size ([`MAX_PACKAGE_BYTES`]), read from
//! disk without reading past that bound, and with no key given twice in any object at any
//! depth (serde_json keeps the last one silently; a package with two `"size"`s means
//! something different to every reader). Nesting is bounded by serde_json (128 levels).

use std::io::Read as _;
use std::path::Path;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The largest package the runner reads: far above any BPF object (sigsnoop's package is
/// 30 KiB), far below what would strain memory.
pub const MAX_PACKAGE_BYTES: u64 = 64 << 20;

/// The bytes of the file at `path`, at most [`MAX_PACKAGE_BYTES`] of them; a larger file
/// (or an endless one, like `/dev/zero`) is an error, found after reading one byte more.
pub fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_PACKAGE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_PACKAGE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            too_large(),
        ));
    }
    Ok(bytes)
}

fn too_large() -> String {
    format!(
        "it is larger than {} MiB, the most a package may be",
        MAX_PACKAGE_BYTES >> 20
    )
}

/// Parse `text` as one JSON value, refusing a text over [`MAX_PACKAGE_BYTES`] and any
/// object with a duplicate key (the error says which key, and where).
pub fn parse(text: &[u8]) -> Result<Value, serde_json::Error> {
    if text.len() as u64 > MAX_PACKAGE_BYTES {
        return Err(de::Error::custom(too_large()));
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Deserializes a [`Value`], refusing duplicate keys.
#[derive(Clone, Copy)]
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let value = map.next_value_seed(Strict)?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_serde_json_reads_them() {
        let text = br#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        let strict = parse(text).unwrap();
        let plain: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(strict, plain);
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let err = parse(br#"{"a": 1, "a": 2}"#).unwrap_err().to_string();
        assert_eq!(err, "duplicate key `a` at line 1 column 12");
        let err = parse(b"{\"x\": [{\"y\": {\"z\": 1,\n \"z\": 1}}]}")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "duplicate key `z` at line 2 column 4");
        // The same key in two objects is fine.
        assert!(parse(br#"[{"a": 1}, {"a": 2}]"#).is_ok());
    }

    #[test]
    fn trailing_text_and_deep_nesting_are_refused() {
        assert!(parse(b"{} {}").is_err());
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse(deep.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("recursion limit"));
    }
}
