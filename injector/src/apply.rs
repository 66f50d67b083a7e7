//! Turns what was planned into text edits: one function a kind of
//! [`Change`], each the mirror of what [`crate::verify`] expects that change
//! to have done. Edits are written at the indentation and in the style
//! already used where they land; every byte outside them stays as it was.
//!
//! One rule is decided here because it depends on where the text lands: a
//! pod whose edits would fall inside a node that an alias repeats elsewhere
//! is not changed at all (the edit would change both places), and its
//! outcome says so.

use crate::error::Error;
use crate::plan::objects::{command_alone, literal, pre_stop};
use crate::plan::{Change, ContainerRef, Item, Note, Outcome, Planned, PodPlan};
use crate::yaml::edits::{Edit, Editor};
use crate::yaml::emit::{map, string, Style, Value};
use crate::yaml::lines;
use crate::yaml::{meaning, tree::may_share, tree::shared_nodes, Node};

/// One document, planned and turned into edits.
pub struct Applied {
    pub edits: Vec<Edit>,
    /// The plans the edits carry out (a pod refused here is not among them).
    pub pods: Vec<PodPlan>,
    pub outcomes: Vec<Outcome>,
}

/// The edits that carry out `planned` on the document `root` of `src`.
pub fn document(src: &str, root: &Node, planned: Planned) -> Result<Applied, Error> {
    let Planned { mut outcomes, pods } = planned;
    if pods.is_empty() {
        return Ok(Applied {
            edits: Vec::new(),
            pods,
            outcomes,
        });
    }
    let mut editor = Editor::new(
        src,
        Style {
            indentless_seq: indentless(src, root),
        },
    );
    let shared = if may_share(src, root) {
        shared_nodes(root)
    } else {
        Vec::new()
    };
    let mut kept = Vec::with_capacity(pods.len());
    for plan in pods {
        let internal = |message: String| {
            Error::internal(Some(root.pos), format!("{}: {message}", plan.object))
        };
        let spec = root
            .at(&plan.spec)
            .ok_or_else(|| internal("the planned pod spec is not there".into()))?;
        let checkpoint = editor.checkpoint();
        pod(&mut editor, spec, &plan.changes).map_err(internal)?;
        // Text appended at the start of the line after a node still belongs
        // to it.
        let lands_in_shared = editor.since(checkpoint).iter().find_map(|e| {
            shared
                .iter()
                .find(|s| s.start <= e.start && e.start <= editor.line_after(s.end))
        });
        if let Some(s) = lands_in_shared {
            editor.rollback(checkpoint);
            outcomes[plan.outcome].notes = vec![Note::Skipped(format!(
                "not changed: an edit would land inside the node anchored at {} (&), which the alias at {} (*) repeats, so it would change both places; write the shared part out in full where this workload needs the hook",
                s.anchor, s.alias
            ))];
            continue;
        }
        kept.push(plan);
    }
    Ok(Applied {
        edits: editor.into_edits(),
        pods: kept,
        outcomes,
    })
}

/// The edits for one pod's changes, in the order planned (a list's items
/// come in one change, so its edit creates the list once where there is
/// none).
fn pod(editor: &mut Editor, spec: &Node, changes: &[Change]) -> Result<(), String> {
    for change in changes {
        match change {
            Change::PreStop { container, command } => {
                set_pre_stop(editor, find(spec, container)?, command);
            }
            Change::PreStopPrefix {
                container,
                items,
                replaced,
            } => {
                let c = find(spec, container)?;
                let list = c.path(&["lifecycle", "preStop", "exec", "command"]);
                splice_front(editor, list, *replaced, items)?;
            }
            Change::CommandPrefix {
                container,
                items,
                replaced,
            } => {
                let list = find(spec, container)?.get("command");
                splice_front(editor, list, *replaced, items)?;
            }
            Change::Mounts { container, items } => {
                let c = find(spec, container)?;
                ensure_items(editor, c, "volumeMounts", wanted(items), false);
            }
            Change::Volumes { items } => {
                ensure_items(editor, spec, "volumes", wanted(items), false);
            }
            Change::InitContainer(init) => {
                let one = std::slice::from_ref(init);
                ensure_items(editor, spec, "initContainers", wanted(one), true);
            }
            Change::Container { name, item } => {
                let stub = Wanted {
                    name,
                    replaces: None,
                    item,
                };
                ensure_items(editor, spec, "containers", vec![stub], false);
            }
            Change::ShareProcessNamespace => {
                editor.set_key(spec, "shareProcessNamespace", literal("true"));
            }
        }
    }
    Ok(())
}

/// The planned items as the edit wants them.
fn wanted(items: &[Item]) -> Vec<Wanted<'_>> {
    items
        .iter()
        .map(|i| Wanted {
            name: &i.name,
            replaces: i.replaces.as_deref(),
            item: &i.item,
        })
        .collect()
}

/// `items` in place of a list's first `replaced` items; the rest, which
/// the plan found there, stay as written.
fn splice_front(
    editor: &mut Editor,
    list: Option<&Node>,
    replaced: usize,
    items: &[String],
) -> Result<(), String> {
    let list = list
        .filter(|l| l.as_seq().is_some_and(|i| i.len() > replaced))
        .ok_or("the planned command is not a list holding the items to keep")?;
    let items: Vec<Value> = items.iter().map(|i| string(i.as_str())).collect();
    editor.splice_front(list, replaced, &items);
    Ok(())
}

/// The container a change is for: the plan found it, so it is there.
fn find<'n, 'a>(spec: &'n Node<'a>, at: &ContainerRef) -> Result<&'n Node<'a>, String> {
    spec.item_named(at.list, &at.name)
        .ok_or_else(|| format!("the planned container {} {} is not there", at.list, at.name))
}

fn set_pre_stop(editor: &mut Editor, container: &Node, command: &[String]) {
    // A preStop that holds its command alone keeps its text but the list.
    if let Some((exec, _)) = container
        .path(&["lifecycle", "preStop"])
        .and_then(command_alone)
    {
        let list = Value::Seq(command.iter().map(|w| string(w.as_str())).collect());
        editor.set_key(exec, "command", list);
        return;
    }
    match container.get("lifecycle") {
        Some(lifecycle) if lifecycle.as_map().is_some() => {
            editor.set_key(lifecycle, "preStop", pre_stop(command))
        }
        _ => editor.set_key(
            container,
            "lifecycle",
            map(vec![("preStop", pre_stop(command))]),
        ),
    }
}

/// An item a list must hold: named `name`, in place of the item named
/// `replaces` (what an earlier run wrote under other settings).
struct Wanted<'c> {
    name: &'c str,
    replaces: Option<&'c str>,
    item: &'c Value,
}

/// Find, replace or create: the list under `key` holds every wanted item.
/// An item named `replaces`, or else one named `name`, is replaced when it
/// differs; the others are added, first or last; the list is created, once,
/// when there is none. So a second run with new settings (a new image,
/// volume name or binary dir) gives what a fresh run would.
fn ensure_items(editor: &mut Editor, parent: &Node, key: &str, wanted: Vec<Wanted>, first: bool) {
    if wanted.is_empty() {
        return;
    }
    let Some(list) = parent.get(key).filter(|l| l.as_seq().is_some()) else {
        let items = wanted.into_iter().map(|w| w.item.clone()).collect();
        editor.set_key(parent, key, Value::Seq(items));
        return;
    };
    let items = list.as_seq().unwrap_or_default();
    let named = |n: &str| {
        items
            .iter()
            .position(|i| i.get("name").and_then(Node::as_str) == Some(n))
    };
    for w in wanted {
        match w.replaces.and_then(named).or_else(|| named(w.name)) {
            Some(i) if meaning::holds(&items[i], w.item) => {}
            Some(i) => editor.replace_item(list, i, w.item.clone()),
            None => editor.add_item(list, w.item.clone(), first),
        }
    }
}

/// Whether this document writes `key:\n- item` (the kubectl and istioctl
/// habit) rather than `key:\n  - item`: read off its first block sequence
/// that is a mapping value.
fn indentless(src: &str, root: &Node) -> bool {
    fn find(src: &str, node: &Node) -> Option<bool> {
        for (k, v) in node.as_map().unwrap_or_default() {
            if let Some(items) = v.as_seq().filter(|_| !v.flow) {
                if let Some(first) = items.first() {
                    let line_start = lines::start(src, first.start);
                    let dash = src[line_start..first.start].rfind('-')?;
                    let key_col = src[..k.start]
                        .rfind('\n')
                        .map_or(k.start, |i| k.start - i - 1);
                    return Some(dash <= key_col);
                }
            }
            if let Some(found) = find(src, v) {
                return Some(found);
            }
        }
        None
    }
    find(src, root).unwrap_or(true)
}
