//! What a node says, apart from how it is written: the structure, the text
//! and the type of every scalar, without positions, styles or comments. The
//! proof of the output compares documents as meanings, and the edits ask
//! whether an item already says what would be written.

use super::emit::{Value, NOT_STRINGS};
use super::tree::Step;
use super::tree::{Kind, Node};
use saphyr_parser::ScalarStyle;
use std::borrow::Cow;

/// A document as the check compares it: structure, text and type of every
/// scalar, without positions or styles that do not change what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Meaning<'a> {
    Map(Vec<(Meaning<'a>, Meaning<'a>)>),
    Seq(Vec<Meaning<'a>>),
    /// A string (quoted, block, or plain text no YAML reader takes for
    /// anything else), borrowed from the node it was read from.
    Str(Cow<'a, str>),
    /// A plain scalar that reads as a boolean, number or null.
    Typed(Cow<'a, str>),
    Alias,
    /// A collection not yet looked into: what `node` says. The proof keeps
    /// what no change and no edit touches this way, so it costs nothing to
    /// build or to compare (the same node is the same meaning).
    Node(Unread<'a>),
}

/// A node of a tree, for [`Meaning::Node`]: equal only to itself.
#[derive(Clone, Copy, Debug)]
pub struct Unread<'a>(pub &'a Node<'a>);

impl PartialEq for Unread<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Unread<'_> {}

impl<'a> Meaning<'a> {
    pub fn text(&self) -> Option<&str> {
        match self {
            Meaning::Str(s) | Meaning::Typed(s) => Some(s),
            _ => None,
        }
    }

    /// A collection's meaning one level deep: its entries or items, each
    /// still [`Meaning::Node`] when it is a collection.
    pub fn lazy(node: &'a Node<'a>) -> Meaning<'a> {
        match &node.kind {
            Kind::Map(_) | Kind::Seq(_) => Meaning::Node(Unread(node)),
            _ => of_node(node),
        }
    }

    /// Looks into a [`Meaning::Node`] (one level).
    pub fn expand(&mut self) {
        if let Meaning::Node(Unread(node)) = *self {
            *self = match &node.kind {
                Kind::Map(entries) => Meaning::Map(
                    entries
                        .iter()
                        .map(|(k, v)| (Meaning::lazy(k), Meaning::lazy(v)))
                        .collect(),
                ),
                Kind::Seq(items) => Meaning::Seq(items.iter().map(Meaning::lazy).collect()),
                _ => of_node(node),
            };
        }
    }

    /// This meaning, looked into (one level).
    pub fn opened(&mut self) -> &mut Self {
        self.expand();
        self
    }

    /// This meaning, looked into one level when it is a [`Meaning::Node`].
    pub fn expanded(&self) -> Cow<'_, Meaning<'a>> {
        match self {
            Meaning::Node(_) => {
                let mut open = self.clone();
                open.expand();
                Cow::Owned(open)
            }
            _ => Cow::Borrowed(self),
        }
    }

    /// The `name` of a mapping (a container, a volume).
    pub fn name(&self) -> Option<&str> {
        match self {
            Meaning::Node(Unread(node)) => node.get("name").and_then(Node::as_str),
            _ => self.get("name").and_then(Meaning::text),
        }
    }

    /// The value of `key`, looked into (one level).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Meaning<'a>> {
        self.expand();
        match self {
            Meaning::Map(entries) => {
                entries
                    .iter_mut()
                    .find(|(k, _)| k.text() == Some(key))
                    .map(|(_, v)| {
                        v.expand();
                        v
                    })
            }
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Meaning<'a>> {
        match self {
            Meaning::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.text() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Replaces `key`'s value where it stands, or adds it last: what the
    /// editor's `set_key` does.
    pub fn set_key(&mut self, key: &str, value: Meaning<'a>) -> Result<(), String> {
        self.expand();
        let Meaning::Map(entries) = self else {
            return Err(format!("cannot set {key}: not a mapping"));
        };
        match entries.iter_mut().find(|(k, _)| k.text() == Some(key)) {
            Some((_, v)) => *v = value,
            None => entries.push((Meaning::Str(Cow::Owned(key.to_string())), value)),
        }
        Ok(())
    }

    /// The list under `key` holds `item`: in place of the item named
    /// `replaces`, or else of the one named `name`; added first or last when
    /// there is neither; the list created when there is none (the edits'
    /// find-or-replace-or-create).
    pub fn ensure_item(
        &mut self,
        key: &str,
        name: &str,
        replaces: Option<&str>,
        item: Meaning<'a>,
        first: bool,
    ) -> Result<(), String> {
        match self.get_mut(key) {
            Some(Meaning::Seq(items)) => {
                let named = |n: &str| items.iter().position(|i| i.name() == Some(n));
                match replaces.and_then(named).or_else(|| named(name)) {
                    // An item that already says what is wanted stays as
                    // written, as the edit leaves it (`holds`).
                    Some(i) if holds_meaning(&items[i], &item) => {}
                    Some(i) => items[i] = item,
                    None if first => items.insert(0, item),
                    None => items.push(item),
                }
                Ok(())
            }
            _ => self.set_key(key, Meaning::Seq(vec![item])),
        }
    }
}

/// What `node` says; its text is borrowed from the source where the node's
/// is (so the meaning outlives the tree).
pub fn of_node<'a>(node: &Node<'a>) -> Meaning<'a> {
    let text = |t: &Cow<'a, str>| match t {
        Cow::Borrowed(b) => Cow::Borrowed(*b),
        Cow::Owned(o) => Cow::Owned(o.clone()),
    };
    match &node.kind {
        Kind::Map(entries) => Meaning::Map(
            entries
                .iter()
                .map(|(k, v)| (of_node(k), of_node(v)))
                .collect(),
        ),
        Kind::Seq(items) => Meaning::Seq(items.iter().map(of_node).collect()),
        Kind::Scalar(t, ScalarStyle::Plain) if reads_as_non_string(t) => Meaning::Typed(text(t)),
        Kind::Scalar(t, _) => Meaning::Str(text(t)),
        Kind::Alias(_) => Meaning::Alias,
    }
}

/// Whether the item `node` already says everything `value` says, so an edit
/// that wants `value` there leaves `node` as written. The API server hands
/// a re-invoked webhook the pod it already patched with its keys sorted,
/// its defaults filled in (`imagePullPolicy`, `terminationMessagePath`, …)
/// and items appended by other admission plugins (the ServiceAccount
/// plugin's token mount in every container, the installer too): all of it
/// says what was wanted, and none of it is to be undone.
///
/// So: a mapping holds a wanted mapping when it has every wanted key with a
/// value that holds the wanted one, in any order and beside keys of its
/// own; a list of mappings (mounts, volumes) holds the wanted items in
/// their order among others; any other value (a command, a scalar) must be
/// the same.
pub fn holds(node: &Node, value: &Value) -> bool {
    holds_meaning(&of_node(node), &of_value(value))
}

fn holds_meaning(have: &Meaning, want: &Meaning) -> bool {
    match (have, want) {
        (Meaning::Map(x), Meaning::Map(y)) => y.iter().all(|(k, v)| {
            x.iter()
                .find(|(k2, _)| same_meaning(k2, k))
                .is_some_and(|(_, v2)| holds_meaning(v2, v))
        }),
        (Meaning::Seq(x), Meaning::Seq(y))
            if !y.is_empty() && y.iter().all(|i| matches!(i, Meaning::Map(_))) =>
        {
            let mut among = x.iter();
            y.iter().all(|w| among.any(|h| holds_meaning(h, w)))
        }
        _ => same_meaning(have, want),
    }
}

fn same_meaning(a: &Meaning, b: &Meaning) -> bool {
    match (a, b) {
        (Meaning::Map(x), Meaning::Map(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .find(|(k2, _)| k2 == k)
                        .is_some_and(|(_, v2)| same_meaning(v, v2))
                })
        }
        (Meaning::Seq(x), Meaning::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_meaning(p, q))
        }
        _ => a == b,
    }
}

pub fn of_value(value: &Value) -> Meaning<'_> {
    match value {
        Value::Str(s) => Meaning::Str(Cow::Borrowed(s)),
        Value::Literal(s) => Meaning::Typed(Cow::Borrowed(s)),
        Value::Seq(items) => Meaning::Seq(items.iter().map(of_value).collect()),
        Value::Map(entries) => Meaning::Map(
            entries
                .iter()
                .map(|(k, v)| (Meaning::Str(Cow::Borrowed(k)), of_value(v)))
                .collect(),
        ),
    }
}

/// Whether a plain scalar is a boolean, null or number to a YAML 1.1 or 1.2
/// reader (go-yaml, which Kubernetes uses, reads both).
pub fn reads_as_non_string(text: &str) -> bool {
    // Without lowercasing a copy: this runs on every plain scalar read.
    if text.is_empty() || NOT_STRINGS.iter().any(|w| w.eq_ignore_ascii_case(text)) {
        return true;
    }
    let digits = text.trim_start_matches(['-', '+']);
    let after = |prefix: char| {
        digits
            .strip_prefix('0')
            .and_then(|d| d.strip_prefix([prefix, prefix.to_ascii_uppercase()]))
    };
    if let Some(hex) = after('x') {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit() || c == '_');
    }
    if let Some(oct) = after('o') {
        return !oct.is_empty() && oct.chars().all(|c| c.is_digit(8) || c == '_');
    }
    digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || "._eE+-:".contains(c))
}

pub fn at_path<'m, 'a>(root: &'m mut Meaning<'a>, path: &[Step]) -> Option<&'m mut Meaning<'a>> {
    root.expand();
    path.iter().try_fold(root, |node, seg| match (seg, node) {
        (Step::Key(k), node) => node.get_mut(k),
        (Step::Index(i), Meaning::Seq(items)) => items.get_mut(*i).map(Meaning::opened),
        _ => None,
    })
}

/// The first place where `want` and `got` differ, as a path.
pub fn first_difference(want: &Meaning, got: &Meaning, path: &mut String) -> Option<String> {
    if let (Meaning::Node(a), Meaning::Node(b)) = (want, got) {
        if a == b {
            return None;
        }
    }
    if matches!(want, Meaning::Node(_)) || matches!(got, Meaning::Node(_)) {
        return first_difference(&want.expanded(), &got.expanded(), path);
    }
    match (want, got) {
        (Meaning::Map(a), Meaning::Map(b)) => {
            for (i, ((ka, va), (kb, vb))) in a.iter().zip(b).enumerate() {
                if ka != kb {
                    return Some(format!("{path}: key {i} is {kb:?}, planned {ka:?}"));
                }
                let len = path.len();
                path.push('.');
                path.push_str(ka.text().unwrap_or("?"));
                if let Some(d) = first_difference(va, vb, path) {
                    return Some(d);
                }
                path.truncate(len);
            }
            let key = |e: &(Meaning, Meaning)| e.0.text().unwrap_or("?").to_string();
            match a.len().cmp(&b.len()) {
                std::cmp::Ordering::Equal => None,
                std::cmp::Ordering::Greater => Some(format!(
                    "{path}: the planned key {} is missing",
                    key(&a[b.len()])
                )),
                std::cmp::Ordering::Less => Some(format!(
                    "{path}: the key {} was not planned",
                    key(&b[a.len()])
                )),
            }
        }
        (Meaning::Seq(a), Meaning::Seq(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                if let Some(d) = first_difference(x, y, path) {
                    return Some(d);
                }
                path.truncate(len);
            }
            (a.len() != b.len()).then(|| format!("{path}: {} items, planned {}", b.len(), a.len()))
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: {b:?}, planned {a:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::reads_as_non_string as typed;
    use super::{first_difference, holds, of_node, Meaning};
    use crate::yaml::{
        emit::{map, string, Value},
        Documents,
    };

    /// What an edit leaves as written: an item that says everything wanted
    /// in another order, with defaults and appended items of its own (the
    /// API server's re-invocation); never one whose command or scalar
    /// differs, or that lacks a wanted key or item.
    #[test]
    fn an_item_holds_what_it_says_whatever_else_it_has() {
        let wanted = map(vec![
            ("name", string("graceful-wait-install")),
            (
                "args",
                Value::Seq(vec![string("install"), string("/install")]),
            ),
            (
                "volumeMounts",
                Value::Seq(vec![map(vec![
                    ("name", string("graceful-wait")),
                    ("mountPath", string("/install")),
                ])]),
            ),
        ]);
        let read = |t: &'static str| Documents::new(t).next().unwrap().unwrap().root.unwrap();
        let api_server = read(
            "{\"args\": [\"install\", \"/install\"], \"imagePullPolicy\": \"IfNotPresent\", \"name\": \"graceful-wait-install\", \
             \"volumeMounts\": [{\"mountPath\": \"/install\", \"name\": \"graceful-wait\"}, \
             {\"mountPath\": \"/var/run/secrets/kubernetes.io/serviceaccount\", \"name\": \"kube-api-access-x\", \"readOnly\": true}]}",
        );
        assert!(holds(&api_server, &wanted));
        for other in [
            // Another command: an extra argument is not a default.
            "{name: graceful-wait-install, args: [install, /install, -v], volumeMounts: [{name: graceful-wait, mountPath: /install}]}",
            // A wanted key missing.
            "{name: graceful-wait-install, volumeMounts: [{name: graceful-wait, mountPath: /install}]}",
            // The wanted mount missing, another in its place.
            "{name: graceful-wait-install, args: [install, /install], volumeMounts: [{name: other, mountPath: /install}]}",
            // The mount with another value.
            "{name: graceful-wait-install, args: [install, /install], volumeMounts: [{name: graceful-wait, mountPath: /elsewhere}]}",
        ] {
            assert!(!holds(&read(other), &wanted), "{other}");
        }
    }

    /// A meaning not yet looked into compares as what it says: equal to
    /// the same text read elsewhere, and where it differs the difference is
    /// found and named, as between meanings read whole.
    #[test]
    fn unread_nodes_compare_as_what_they_say() {
        let a = "spec:\n  containers:\n  - name: app\n    args: [a, b]\n  - name: proxy\n";
        let b = a.replace("[a, b]", "[a, c]");
        let root = |t: &'static str| Documents::new(t).next().unwrap().unwrap().root.unwrap();
        let b: &'static str = Box::leak(b.into_boxed_str());
        let (x, y, z) = (root(a), root(a), root(b));
        let diff = |p: &Meaning, q: &Meaning| first_difference(p, q, &mut String::new());
        assert_eq!(diff(&Meaning::lazy(&x), &Meaning::lazy(&y)), None);
        assert_eq!(diff(&Meaning::lazy(&x), &of_node(&y)), None);
        let lazy = diff(&Meaning::lazy(&x), &Meaning::lazy(&z));
        assert_eq!(lazy, diff(&of_node(&x), &of_node(&z)));
        assert!(lazy.unwrap().contains(".spec.containers[0].args[1]"));
        // Opened for a change, it still says the same.
        let mut opened = Meaning::lazy(&x);
        opened
            .get_mut("spec")
            .unwrap()
            .get_mut("containers")
            .unwrap();
        assert_eq!(diff(&opened, &of_node(&y)), None);
    }

    #[test]
    fn plain_scalars_that_are_not_strings() {
        for t in [
            "true", "No", "~", "", "20000", "-1", "0.5", "1e3", "1E3", "0x1F", "0X1f", "0O17",
            ".inf", ".NaN", "1:20",
        ] {
            assert!(typed(t), "{t:?}");
        }
        for t in [
            "tcp",
            "inf",
            "nan",
            "10m",
            "--port=1",
            "/graceful-wait",
            "v1",
            "e1",
            "1.2.3.4a",
        ] {
            assert!(!typed(t), "{t:?}");
        }
    }
}
