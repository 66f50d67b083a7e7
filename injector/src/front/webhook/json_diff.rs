//! The JSON Patch from a pod to the injected pod, written the way a person
//! reads it: what the injector adds is *added* (`add /spec/initContainers/0`),
//! what it changes is replaced where it is. A generic diff compares lists
//! index by index, so one init container put first would rewrite every item
//! after it; here list items are matched by their `name` (containers,
//! volumes, mounts all have one) or their value, and only insertions and
//! in-place changes are expected — what the injector does. Anything else
//! replaces the whole list, which is still right. The caller checks that the
//! patch, applied, gives exactly the injected pod.

use serde_json::{json, Value};

/// Operations (RFC 6902) that turn `before` into `after`.
pub fn diff(before: &Value, after: &Value) -> Value {
    let mut ops = Vec::new();
    walk(before, after, &mut String::new(), &mut ops);
    Value::Array(ops)
}

/// RFC 6901: `~` and `/` in a key are escaped.
fn push_key(path: &mut String, key: &str) {
    path.push('/');
    path.push_str(&key.replace('~', "~0").replace('/', "~1"));
}

fn walk(before: &Value, after: &Value, path: &mut String, ops: &mut Vec<Value>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for k in b.keys() {
                if !a.contains_key(k) {
                    let len = path.len();
                    push_key(path, k);
                    ops.push(json!({"op": "remove", "path": path}));
                    path.truncate(len);
                }
            }
            for (k, v) in a {
                let len = path.len();
                push_key(path, k);
                match b.get(k) {
                    Some(old) => walk(old, v, path, ops),
                    None => ops.push(json!({"op": "add", "path": path, "value": v})),
                }
                path.truncate(len);
            }
        }
        (Value::Array(b), Value::Array(a)) => match insertions(b, a) {
            Some(plan) => {
                for (j, step) in plan.into_iter().enumerate() {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&j.to_string());
                    match step {
                        Step::Same(i) => walk(&b[i], &a[j], path, ops),
                        Step::Added => ops.push(json!({"op": "add", "path": path, "value": a[j]})),
                    }
                    path.truncate(len);
                }
            }
            None => ops.push(json!({"op": "replace", "path": path, "value": after})),
        },
        _ => ops.push(json!({"op": "replace", "path": path, "value": after})),
    }
}

enum Step {
    /// This item of `after` is item `i` of `before` (perhaps changed).
    Same(usize),
    /// This item is new.
    Added,
}

fn identity(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str)
}

/// For each item of `after`: the item of `before` it is, or new — when both
/// are lists of named items and `after` is `before`'s items in order with
/// items inserted (and items changed in place). None otherwise: a list of
/// plain values (a command) is replaced whole, as it is one value.
fn insertions(before: &[Value], after: &[Value]) -> Option<Vec<Step>> {
    if !before.iter().chain(after).all(|v| identity(v).is_some()) {
        return None;
    }
    let mut steps = Vec::with_capacity(after.len());
    let mut i = 0;
    for a in after {
        let same = before.get(i).is_some_and(|b| identity(b) == identity(a));
        if same {
            steps.push(Step::Same(i));
            i += 1;
        } else {
            steps.push(Step::Added);
        }
    }
    // Every item of `before` must still be there.
    (i == before.len()).then_some(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(before: Value, after: Value, want: Value) {
        let patch = diff(&before, &after);
        assert_eq!(patch, want);
        let mut applied = before.clone();
        let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
        json_patch::patch(&mut applied, &patch).unwrap();
        assert_eq!(applied, after);
    }

    #[test]
    fn inserted_items_are_added_and_changed_ones_replaced_in_place() {
        check(
            json!({"spec": {"initContainers": [{"name": "a", "image": "x"}], "containers": [{"name": "app"}, {"name": "proxy", "args": ["p"]}]}}),
            json!({"spec": {"initContainers": [{"name": "gw", "image": "g"}, {"name": "a", "image": "x"}],
                            "containers": [{"name": "app"}, {"name": "proxy", "args": ["p"], "lifecycle": {"preStop": {"exec": {"command": ["w"]}}}}],
                            "volumes": [{"name": "v"}]}}),
            json!([
                {"op": "add", "path": "/spec/containers/1/lifecycle", "value": {"preStop": {"exec": {"command": ["w"]}}}},
                {"op": "add", "path": "/spec/initContainers/0", "value": {"name": "gw", "image": "g"}},
                {"op": "add", "path": "/spec/volumes", "value": [{"name": "v"}]},
            ]),
        );
    }

    #[test]
    fn keys_are_escaped_and_anything_else_replaces_the_list() {
        check(
            json!({"metadata": {"annotations": {"a/b~c": "1"}}, "l": [1, 2, 3], "n": [{"name": "a"}, {"name": "b"}]}),
            json!({"metadata": {"annotations": {"a/b~c": "2"}}, "l": [0, 1, 2, 3], "n": [{"name": "b"}, {"name": "a"}]}),
            json!([
                {"op": "replace", "path": "/l", "value": [0, 1, 2, 3]},
                {"op": "replace", "path": "/metadata/annotations/a~1b~0c", "value": "2"},
                {"op": "replace", "path": "/n", "value": [{"name": "b"}, {"name": "a"}]},
            ]),
        );
    }
}
