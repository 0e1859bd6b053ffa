//! Payload edits with Qdrant's semantics: merge at a nested key, delete by dotted path.

use grape_types::Payload;
use serde_json::Value;

/// Merges `update` into `target` at the dotted path `key` (creating objects on the way), or at the top
/// level when `key` is `None`. Non-object values on the path are replaced by objects.
pub fn set_payload(target: &mut Payload, update: &Payload, key: Option<&str>) {
    let mut obj = target;
    if let Some(key) = key.filter(|k| !k.is_empty()) {
        for part in key.split('.') {
            let slot = obj.entry(part.to_string()).or_insert_with(|| Value::Object(Payload::new()));
            if !slot.is_object() {
                *slot = Value::Object(Payload::new());
            }
            obj = match slot {
                Value::Object(inner) => inner,
                _ => return,
            };
        }
    }
    for (k, v) in update {
        obj.insert(k.clone(), v.clone());
    }
}

/// Removes the value at a dotted path (`a.b.c`). Missing paths are ignored.
pub fn delete_key(target: &mut Payload, path: &str) {
    match path.split_once('.') {
        None => {
            target.remove(path);
        }
        Some((head, rest)) => match target.get_mut(head) {
            Some(Value::Object(inner)) => delete_key(inner, rest),
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        delete_key(inner, rest);
                    }
                }
            }
            _ => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Payload {
        match v {
            Value::Object(m) => m,
            _ => Payload::new(),
        }
    }

    #[test]
    fn merge_top_and_nested() {
        let mut p = obj(json!({"a": 1, "b": {"c": 2}}));
        set_payload(&mut p, &obj(json!({"a": 5, "z": true})), None);
        assert_eq!(Value::Object(p.clone()), json!({"a": 5, "b": {"c": 2}, "z": true}));
        set_payload(&mut p, &obj(json!({"d": 3})), Some("b"));
        assert_eq!(p["b"], json!({"c": 2, "d": 3}));
        set_payload(&mut p, &obj(json!({"x": 1})), Some("a.deep"));
        assert_eq!(p["a"], json!({"deep": {"x": 1}}));
    }

    #[test]
    fn delete_paths() {
        let mut p = obj(json!({"a": 1, "b": {"c": 2, "d": 3}, "arr": [{"k": 1, "j": 2}]}));
        delete_key(&mut p, "b.c");
        delete_key(&mut p, "arr.k");
        delete_key(&mut p, "missing.x");
        assert_eq!(Value::Object(p), json!({"a": 1, "b": {"d": 3}, "arr": [{"j": 2}]}));
    }
}
