//! Decoding into a `serde_json::Value`: the defaults of globals in a package. A sink of
//! the one decoder, so a default reads exactly as the same bytes read in an event.

use serde_json::{Map, Number, Value};

use crate::spec::plan::{Plan, Sink};

/// Decode `bytes` with `plan` into a JSON value.
pub fn json_value(plan: &Plan, bytes: &[u8]) -> Value {
    let mut sink = ValueSink { stack: Vec::new() };
    plan.visit(bytes, &mut sink);
    sink.stack.pop().map_or(Value::Null, |(_, v)| v)
}

/// Builds a value bottom-up: each open list or record is a frame on the stack, with the
/// name its next field gets.
struct ValueSink {
    stack: Vec<(Option<String>, Value)>,
}

impl ValueSink {
    fn put(&mut self, v: Value) {
        match self.stack.last_mut() {
            Some((_, Value::Array(items))) => items.push(v),
            Some((name, Value::Object(fields))) => {
                fields.insert(name.take().unwrap_or_default(), v);
            }
            _ => self.stack.push((None, v)),
        }
    }

    fn close(&mut self) {
        if let Some((_, v)) = self.stack.pop() {
            self.put(v);
        }
    }
}

/// A 128-bit integer as JSON holds it: exactly when it fits 64 bits, else as a float.
fn wide(v: i128) -> Value {
    if let Ok(small) = i64::try_from(v) {
        Value::from(small)
    } else if let Ok(big) = u64::try_from(v) {
        Value::from(big)
    } else {
        Number::from_f64(v as f64).map_or(Value::Null, Value::Number)
    }
}

impl Sink for ValueSink {
    fn int(&mut self, v: i64) {
        self.put(Value::from(v))
    }
    fn uint(&mut self, v: u64) {
        self.put(Value::from(v))
    }
    fn int128(&mut self, v: i128) {
        self.put(wide(v))
    }
    fn uint128(&mut self, v: u128) {
        self.put(match i128::try_from(v) {
            Ok(v) => wide(v),
            Err(_) => Number::from_f64(v as f64).map_or(Value::Null, Value::Number),
        })
    }
    fn bool(&mut self, v: bool) {
        self.put(Value::Bool(v))
    }
    fn float(&mut self, v: f64) {
        self.put(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn text(&mut self, s: &[u8]) {
        self.put(Value::String(String::from_utf8_lossy(s).into_owned()))
    }
    fn bytes(&mut self, b: &[u8]) {
        self.put(Value::Array(b.iter().map(|&x| Value::from(x)).collect()))
    }
    fn enum_name(&mut self, name: &str) {
        self.put(Value::String(name.into()))
    }
    fn pointer(&mut self, v: u64) {
        self.put(Value::String(format!("{v:#x}")))
    }
    fn begin_list(&mut self) {
        self.stack.push((None, Value::Array(Vec::new())))
    }
    fn item(&mut self, _first: bool) {}
    fn end_list(&mut self) {
        self.close()
    }
    fn begin_record(&mut self) {
        self.stack.push((None, Value::Object(Map::new())))
    }
    fn field(&mut self, name: &str, _first: bool) {
        if let Some((next, _)) = self.stack.last_mut() {
            *next = Some(name.to_string());
        }
    }
    fn end_record(&mut self) {
        self.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::types::{Kind, Member, Type};

    #[test]
    fn nested_values() {
        let int = |size, signed| Type {
            c: "i".into(),
            kind: Kind::Int { size, signed },
        };
        let member = |name: &str, offset, ty| Member {
            name: name.into(),
            offset,
            bitfield: None,
            ty,
            shown: None,
        };
        let ty = Type {
            c: "struct s".into(),
            kind: Kind::Struct {
                size: 24,
                members: vec![
                    member("a", 0, int(4, true)),
                    member(
                        "b",
                        8,
                        Type {
                            c: "u16[2]".into(),
                            kind: Kind::Array {
                                len: 2,
                                elem: Box::new(int(2, false)),
                            },
                        },
                    ),
                    member("c", 16, int(8, false)),
                ],
            },
        };
        let mut bytes = vec![0u8; 24];
        bytes[..4].copy_from_slice(&(-3i32).to_le_bytes());
        bytes[8..10].copy_from_slice(&7u16.to_le_bytes());
        bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        let value = json_value(&Plan::compile(&ty).unwrap(), &bytes);
        assert_eq!(
            value,
            serde_json::json!({"a": -3, "b": [7, 0], "c": u64::MAX})
        );
    }
}
